"""MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST, ...) in one directory.

Split ``train`` reads ``train-images-idx3-ubyte[.gz]`` and
``train-labels-idx1-ubyte[.gz]``; split ``test`` reads the ``t10k-`` pair. The
dotted spelling (``train-images.idx3-ubyte``) is accepted too.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib

import numpy as np

from ntga.data._arrays import make_dataset
from ntga.data._types import Dataset
from ntga.errors import DataError

_PREFIX = {"train": "train", "test": "t10k"}
_IDX_NAME = re.compile(r"-(images|labels)[-.]idx[13]-ubyte(\.gz)?$")
_UBYTE = 0x08


def is_idx_dir(path: str) -> bool:
  """Whether ``path`` is a directory holding IDX files."""
  return os.path.isdir(path) and any(_IDX_NAME.search(f) for f in os.listdir(path))


def _find(root: str, prefix: str, kind: str, ndim: int) -> str:
  for sep in ("-", "."):
    for ext in (".gz", ""):
      name = os.path.join(root, f"{prefix}-{kind}{sep}idx{ndim}-ubyte{ext}")
      if os.path.isfile(name):
        return name
  raise DataError(f"{root}: no {prefix}-{kind}-idx{ndim}-ubyte[.gz] file for this split")


def read_idx(path: str, ndim: int) -> np.ndarray:
  """Reads one IDX file of unsigned bytes, validating its header.

  Args:
    path: the file, gzip-compressed if its name ends in ``.gz``.
    ndim: the expected number of dimensions (3 for images, 1 for labels).

  Returns:
    uint8 array of the shape the header declares.
  """
  try:
    if path.endswith(".gz"):
      with gzip.open(path, "rb") as f:
        raw = f.read()
    else:
      with open(path, "rb") as f:
        raw = f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f"{path}: cannot read: {e}") from e
  if len(raw) < 4 + 4 * ndim:
    raise DataError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
  if raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or raw[3] != ndim:
    raise DataError(f"{path}: bad IDX magic number 0x{raw[:4].hex()}, "
                    f"expected 0x0000{_UBYTE:02x}{ndim:02x} (unsigned bytes, {ndim}-D)")
  dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
  body = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
  if body.size != int(np.prod(dims)):
    raise DataError(f"{path}: header declares dims {dims} ({int(np.prod(dims))} bytes) "
                    f"but the file holds {body.size} data bytes")
  return body.reshape(dims)


def load_idx_split(root: str, split: str) -> Dataset:
  """Loads ``split`` from a directory of IDX files.

  Args:
    root: the directory.
    split: ``"train"`` or ``"test"``.

  Returns:
    uint8 (N, H, W, 1) images and int64 labels; classes named by index,
    ``"0"..str(max label)``.

  Example:
    >>> ds = load_idx_split("/data/mnist", "test")  # doctest: +SKIP
    >>> ds.x.shape
    (10000, 28, 28, 1)
  """
  if split not in _PREFIX:
    raise DataError(f"{root}: IDX directories have splits 'train' and 'test', not {split!r}")
  images_path = _find(root, _PREFIX[split], "images", 3)
  labels_path = _find(root, _PREFIX[split], "labels", 1)
  x = read_idx(images_path, 3)
  y = read_idx(labels_path, 1)
  if len(x) != len(y):
    raise DataError(f"{labels_path}: {len(y)} labels but {images_path} holds {len(x)} images")
  return make_dataset(x, y, None, images_path)
