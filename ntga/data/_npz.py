"""The project's own ``.npz`` datasets (``x``, ``y``, optional ``class_names``, ``index``, ``paths``).

A ``.npz`` file is one split and is returned for whatever split is asked. A
directory holding ``<split>.npz`` (a poisoning run's output folder, with
``train.npz`` beside ``manifest.json``) yields that file for the split.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from ntga.data._arrays import make_dataset
from ntga.data._types import Dataset
from ntga.errors import DataError


def is_npz_dir(path: str) -> bool:
  """Whether ``path`` is a directory holding at least one ``.npz`` file."""
  return os.path.isdir(path) and any(f.endswith(".npz") for f in os.listdir(path))


def load_npz_file(path: str) -> Dataset:
  """Loads a ``.npz`` dataset file.

  ``x`` may be (N, H, W, C) or (N, H, W) with whole values in 0..255; ``y``
  must be 1-D integers. Without ``class_names`` classes are named
  ``"0"..str(max(y))``; without ``index`` rows are numbered ``0..N-1``;
  ``paths`` (optional) names each row's source file (see
  :attr:`ntga.data.Dataset.paths`).

  Args:
    path: the file.

  Returns:
    The dataset.

  Example:
    >>> ds = load_npz_file("out/train.npz")  # doctest: +SKIP
  """
  try:
    with open(path, "rb") as fh:
      zipped = zipfile.is_zipfile(fh)
  except OSError as e:
    raise DataError(f"{path}: cannot read: {e.strerror}") from e
  if not zipped:  # np.load would go on to try it as .npy or pickle data
    raise DataError(f"{path}: not a readable .npz file: not a zip archive")
  try:
    with np.load(path, allow_pickle=False) as f:
      arrays = {k: f[k] for k in f.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise DataError(f"{path}: not a readable .npz file: {e}") from e
  for key in ("x", "y"):
    if key not in arrays:
      raise DataError(f"{path}: no {key!r} array (found: {', '.join(sorted(arrays)) or 'none'})")
  names = arrays.get("class_names")
  if names is not None:
    if names.ndim != 1 or names.dtype.kind not in "US":
      raise DataError(f"{path}: class_names must be a 1-D string array, got {names.dtype} {names.shape}")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
  return make_dataset(arrays["x"], arrays["y"], names, path, index=arrays.get("index"),
                      paths=arrays.get("paths"))


def load_npz_dir_split(root: str, split: str) -> Dataset:
  """Loads ``<root>/<split>.npz``.

  Args:
    root: a directory holding ``<split>.npz`` files.
    split: the split name.

  Returns:
    The dataset.
  """
  path = os.path.join(root, f"{split}.npz")
  if not os.path.isfile(path):
    have = sorted(f[:-4] for f in os.listdir(root) if f.endswith(".npz"))
    raise DataError(f"{root}: no {split}.npz for split {split!r} (found: {', '.join(have)})")
  return load_npz_file(path)
