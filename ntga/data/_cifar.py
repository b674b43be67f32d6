"""CIFAR-10 / CIFAR-100 in their original python-pickle layout.

``cifar-10-batches-py/`` holds ``data_batch_1`` .. ``data_batch_5``,
``test_batch`` and ``batches.meta``; ``cifar-100-python/`` holds ``train``,
``test`` and ``meta`` (fine labels are used). The pickles were written by
Python 2, so their dict keys are bytes; they are read with
``encoding="bytes"`` and through an unpickler that only admits the few globals
numpy arrays need, so a hostile pickle cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable

import numpy as np

from ntga.data._arrays import make_dataset
from ntga.data._types import Dataset
from ntga.errors import DataError

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"

_SPLIT_FILES = {
    "cifar10": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
    "cifar100": {"train": ["train"], "test": ["test"]},
}
_META = {"cifar10": ("batches.meta", "label_names", "labels"),
         "cifar100": ("meta", "fine_label_names", "fine_labels")}

# Globals a pickled numpy array (any protocol, numpy 1.x or 2.x) refers to.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}

CIFAR_FILE_NAMES = frozenset({"batches.meta", "meta", "train", "test", "test_batch"}
                             | {f"data_batch_{i}" for i in range(1, 6)})


class _ArrayUnpickler(pickle.Unpickler):
  """An unpickler that refuses every global except numpy's array plumbing."""

  def __init__(self, file, where: str):
    super().__init__(file, encoding="bytes")
    self._where = where

  def find_class(self, module, name):
    if (module, name) not in _ALLOWED_GLOBALS:
      raise DataError(f"{self._where}: refusing to unpickle {module}.{name} (not a CIFAR pickle)")
    return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict:
  try:
    obj = _ArrayUnpickler(io.BytesIO(raw), where).load()
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
    if isinstance(e, DataError):
      raise
    raise DataError(f"{where}: not a readable pickle: {e}") from e
  if not isinstance(obj, dict):
    raise DataError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
  return obj


def _get(d: dict, key: str, where: str):
  for k in (key.encode(), key):
    if k in d:
      return d[k]
  raise DataError(f"{where}: no {key!r} entry")


def cifar_kind(path: str) -> tuple[str, str] | None:
  """Recognises a CIFAR pickle directory, given it or its parent.

  Args:
    path: a directory.

  Returns:
    ``(directory holding the pickles, "cifar10" | "cifar100")``, or None.
  """
  if not os.path.isdir(path):
    return None
  if os.path.isfile(os.path.join(path, "batches.meta")):
    return path, "cifar10"
  if all(os.path.isfile(os.path.join(path, f)) for f in ("meta", "train")) or all(
      os.path.isfile(os.path.join(path, f)) for f in ("meta", "test")):
    return path, "cifar100"
  for sub in (CIFAR10_DIR, CIFAR100_DIR):
    if os.path.isdir(os.path.join(path, sub)):
      return cifar_kind(os.path.join(path, sub))
  return None


def load_cifar_split(read: Callable[[str], bytes | None], kind: str, split: str,
                     where: str) -> Dataset:
  """Loads one split of a CIFAR-10/100 pickle set.

  Args:
    read: maps a file name in the CIFAR folder to its bytes (None if missing),
      so the same code reads a directory or a tar archive.
    kind: ``"cifar10"`` or ``"cifar100"``.
    split: ``"train"`` or ``"test"``.
    where: the folder or archive, named in error messages.

  Returns:
    uint8 (N, 32, 32, 3) images, int64 labels, the label names from the meta file.

  Example:
    >>> ds = load_cifar_split(dir_reader("/data/cifar-10-batches-py"),
    ...                       "cifar10", "test", "cifar")  # doctest: +SKIP
  """
  if split not in _SPLIT_FILES[kind]:
    raise DataError(f"{where}: {kind} has splits 'train' and 'test', not {split!r}")
  meta_name, names_key, labels_key = _META[kind]
  raw = read(meta_name)
  if raw is None:
    raise DataError(f"{where}: missing {meta_name}")
  names = [n.decode() if isinstance(n, bytes) else str(n)
           for n in _get(_unpickle(raw, f"{where}/{meta_name}"), names_key, f"{where}/{meta_name}")]
  xs, ys = [], []
  for fname in _SPLIT_FILES[kind][split]:
    file_where = f"{where}/{fname}"
    raw = read(fname)
    if raw is None:
      raise DataError(f"{file_where}: missing (needed for split {split!r})")
    batch = _unpickle(raw, file_where)
    data = np.asarray(_get(batch, "data", file_where))
    labels = np.asarray(_get(batch, labels_key, file_where))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
      raise DataError(f"{file_where}: data has shape {data.shape}, expected (N, 3072)")
    if len(labels) != len(data):
      raise DataError(f"{file_where}: {len(labels)} labels for {len(data)} images")
    xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    ys.append(labels)
  return make_dataset(np.concatenate(xs), np.concatenate(ys), names, where)


def dir_reader(root: str) -> Callable[[str], bytes | None]:
  """A ``read`` function for :func:`load_cifar_split` over a directory."""

  def read(name: str) -> bytes | None:
    path = os.path.join(root, name)
    if not os.path.isfile(path):
      return None
    try:
      with open(path, "rb") as f:
        return f.read()
    except OSError as e:
      raise DataError(f"{path}: cannot read: {e}") from e

  return read
