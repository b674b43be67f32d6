"""``load``: turn a dataset spec into a :class:`Dataset`."""

from __future__ import annotations

import os
import posixpath

from ntga.data._cifar import CIFAR_FILE_NAMES, cifar_kind, dir_reader, load_cifar_split
from ntga.data._digits import load_digits_split
from ntga.data._folder import (is_image_name, is_tar_name, load_folder_split, load_tree_split,
                               read_tar, tar_tree)
from ntga.data._idx import is_idx_dir, load_idx_split
from ntga.data._limit import apply_limit, check_limit
from ntga.data._npz import is_npz_dir, load_npz_dir_split, load_npz_file
from ntga.data._tfds import load_tfds_split
from ntga.data._types import Dataset
from ntga.errors import DataError

NAMED_SPECS = ("digits",)
TFDS_PREFIX = "tfds:"


def load(spec: str,
         split: str = "train",
         *,
         limit: int | None = None,
         data_dir: str | None = None,
         seed: int = 0,
         require_split: bool = False) -> Dataset:
  """Loads one split of an image-classification dataset.

  Specs:

  * ``"digits"``: scikit-learn's 8x8 digits, a fixed 75/25 stratified
    train/test split (1,347 / 450 images); fast, needs no files.
  * ``"tfds:NAME"``: a tensorflow-datasets dataset (``tfds:mnist``,
    ``tfds:cifar10``, ``tfds:svhn_cropped``, ...), prepared under ``data_dir``.
  * a directory of MNIST-style IDX files (``train-images-idx3-ubyte.gz``, ...;
    ``test`` reads the ``t10k-`` files).
  * a CIFAR-10/100 python-pickle directory (``cifar-10-batches-py``,
    ``cifar-100-python``) or its parent, or the original ``.tar.gz``.
  * an image folder ``ROOT/<split>/<class>/*.png|jpg`` or a one-split
    ``ROOT/<class>/*``, or a ``.tar``/``.tar.gz``/``.tgz`` of one.
  * a ``.npz`` file with ``x``, ``y`` (one split, returned for any split), or a
    directory holding ``<split>.npz`` (a poisoning run's output).

  Args:
    spec: what to load (above).
    split: which split, e.g. ``"train"`` or ``"test"``.
    limit: keep only this many examples: the first ``limit`` of
      :func:`stratified_order` (class-balanced, seeded), returned in source
      order with ``index`` holding their source positions. None, or at least
      the split size, keeps everything. Image folders and archives decode
      only the images kept (the labels come from the folder names).
    data_dir: for ``tfds:`` specs the tfds data directory (None: tfds's
      default); for relative path specs the directory they are relative to.
      Unused by ``digits``.
    seed: seed of the ``limit`` subset.
    require_split: refuse a source that holds one split only (an ``.npz``
      file, a flat image folder) instead of returning it for ``split``;
      for callers that need the split to be a separate one (a test split
      that is not the training data).

  Returns:
    The :class:`Dataset` (uint8 NHWC images, int64 labels).

  Raises:
    DataError: unknown spec or split, unreadable or inconsistent files, or
      (with ``require_split``) a one-split source.

  Example:
    >>> ds = load("digits", "train", limit=20)
    >>> ds.x.shape, ds.x.dtype.name, sorted(set(ds.y.tolist())) == list(range(10))
    ((20, 8, 8, 1), 'uint8', True)
  """
  check_limit(limit)
  if isinstance(spec, os.PathLike):
    spec = os.fspath(spec)
  if not isinstance(spec, str) or not spec:
    raise DataError(f"dataset spec must be a non-empty string, got {spec!r}")
  if not isinstance(split, str) or not split:
    raise DataError(f"{spec}: split must be a non-empty string, got {split!r}")
  # Image folders decode only the rows the limit keeps; the rest are cut here.
  return apply_limit(_load_split(spec, split, data_dir, require_split, limit, seed),
                     limit, seed)


def _spec_path(spec: str, data_dir: str | None) -> str:
  """The file-system path a path spec names (``~`` expanded, under data_dir)."""
  path = os.path.expanduser(spec)
  if data_dir is not None and not os.path.isabs(path):
    path = os.path.join(os.path.expanduser(data_dir), path)
  return path


def resolve_spec(spec: str | os.PathLike, data_dir: str | None = None) -> str:
  """The spec as a record should keep it: a path spec made absolute.

  ``digits`` and ``tfds:NAME`` are returned as they are; any other spec is
  the path :func:`load` reads (``~`` expanded, relative ones joined to
  ``data_dir``), made absolute with symbolic links resolved.

  Args:
    spec: a spec :func:`load` accepts.
    data_dir: as for :func:`load`.

  Returns:
    The spec or its absolute path.

  Example:
    >>> resolve_spec("digits"), resolve_spec("/data/../data/cifar") == "/data/cifar"
    ('digits', True)
  """
  spec = os.fspath(spec)
  if spec in NAMED_SPECS or spec.startswith(TFDS_PREFIX):
    return spec
  return os.path.realpath(_spec_path(spec, data_dir))


def _load_split(spec: str, split: str, data_dir: str | None, require_split: bool,
                limit: int | None, seed: int) -> Dataset:
  if spec in NAMED_SPECS:
    return load_digits_split(split)
  if spec.startswith(TFDS_PREFIX):
    name = spec[len(TFDS_PREFIX):]
    if not name:
      raise DataError(f"{spec}: missing dataset name after 'tfds:'")
    return load_tfds_split(name, split, data_dir)
  path = _spec_path(spec, data_dir)
  if os.path.isdir(path):
    return _load_dir(path, split, require_split, limit, seed)
  if os.path.isfile(path):
    if path.lower().endswith(".npz"):
      if require_split:
        raise DataError(f"{path}: an .npz file holds one split, not a separate {split!r} split")
      return load_npz_file(path)
    if is_tar_name(path):
      return _load_tar(path, split, require_split, limit, seed)
    raise DataError(f"{path}: not a dataset file (expected .npz, .tar, .tar.gz or .tgz)")
  raise DataError(f"{spec}: unknown dataset: not one of {', '.join(NAMED_SPECS)}, "
                  f"not 'tfds:NAME', and no such file or directory")


def _load_dir(path: str, split: str, require_split: bool, limit: int | None,
              seed: int) -> Dataset:
  if is_npz_dir(path):
    return load_npz_dir_split(path, split)
  if is_idx_dir(path):
    return load_idx_split(path, split)
  found = cifar_kind(path)
  if found is not None:
    root, kind = found
    return load_cifar_split(dir_reader(root), kind, split, root)
  return load_folder_split(path, split, require_split, limit, seed)


def _load_tar(path: str, split: str, require_split: bool, limit: int | None,
              seed: int) -> Dataset:
  files, dirs = read_tar(
      path, keep=lambda n: is_image_name(n) or posixpath.basename(n) in CIFAR_FILE_NAMES)
  images = [n for n in files if is_image_name(n)]
  if not images:
    for name in files:
      base, folder = posixpath.basename(name), posixpath.dirname(name)
      prefix = f"{folder}/" if folder else ""
      kind = ("cifar10" if base == "batches.meta" else
              "cifar100" if base == "meta" and (prefix + "train" in files or prefix + "test" in files)
              else None)
      if kind:
        return load_cifar_split(lambda n, p=prefix: files.get(p + n), kind, split, f"{path}:{folder}")
  return load_tree_split(tar_tree(path, {n: files[n] for n in images}, dirs), split, path,
                         require_split, limit, seed)
