"""Checks that turn loose arrays into a valid :class:`Dataset` (uint8, int64)."""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np

from ntga.data._types import Dataset
from ntga.errors import DataError


def as_images(x: np.ndarray, where: str) -> np.ndarray:
  """Validates pixel data and returns it as uint8 NHWC.

  (N, H, W) gains a trailing channel axis. Integer, boolean and float arrays
  are accepted when every value is a whole number in 0..255, so the cast to
  uint8 loses nothing; anything else is rejected.

  Args:
    x: the pixel array.
    where: file or spec named in error messages.

  Returns:
    uint8 array of shape (N, H, W, C).
  """
  x = np.asarray(x)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4:
    raise DataError(f"{where}: x must have shape (N, H, W, C) or (N, H, W), got {x.shape}")
  if x.dtype == np.uint8:
    return x
  if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating) or x.dtype == bool):
    raise DataError(f"{where}: x has dtype {x.dtype}; expected uint8 pixels 0..255")
  if x.size:
    if np.issubdtype(x.dtype, np.floating):
      if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
        raise DataError(f"{where}: x is {x.dtype} with non-integer values; expected uint8 pixels 0..255")
    lo, hi = x.min(), x.max()
    if lo < 0 or hi > 255:
      raise DataError(f"{where}: x has values in [{lo}, {hi}], outside the uint8 range 0..255")
  return x.astype(np.uint8)


def as_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
  """Validates labels: 1-D, integer dtype, non-negative, ``n`` of them.

  Args:
    y: the label array.
    n: the number of images they must match.
    where: file or spec named in error messages.

  Returns:
    int64 array of shape (n,).
  """
  y = np.asarray(y)
  if y.ndim != 1:
    raise DataError(f"{where}: y must be 1-D, got shape {y.shape}")
  if not np.issubdtype(y.dtype, np.integer):
    raise DataError(f"{where}: y must hold integer class indices, got dtype {y.dtype}")
  if len(y) != n:
    raise DataError(f"{where}: {len(y)} labels for {n} images")
  if len(y) and y.min() < 0:
    raise DataError(f"{where}: y has a negative label {y.min()}")
  return y.astype(np.int64)


def check_arrays(x, y, num_classes: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Validates the image / label arrays an attack receives (strict: no casts).

  Args:
    x: uint8 images (N, H, W, C), numpy or jax.
    y: integer labels (N,), numpy or jax, values >= 0.
    num_classes: if given, labels must also be below it.

  Returns:
    ``(x, y)`` as numpy uint8 and int64 arrays.

  Raises:
    DataError: wrong dtype, rank, length mismatch or a label out of range.

  Example:
    >>> x, y = check_arrays(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]))
  """
  x, y = np.asarray(x), np.asarray(y)
  if x.dtype != np.uint8 or x.ndim != 4:
    raise DataError(f"images must be uint8 of shape (N, H, W, C), got "
                    f"{x.dtype} {x.shape}")
  y = as_labels(y, len(x), "labels")
  if num_classes is not None and len(y) and int(y.max()) >= num_classes:
    raise DataError(f"labels must lie in [0, {num_classes}), got {int(y.max())}")
  return x, y


def default_class_names(y: np.ndarray) -> tuple[str, ...]:
  """``("0", "1", ..., str(max(y)))``; empty when there are no labels."""
  return tuple(str(i) for i in range(int(y.max()) + 1 if len(y) else 0))


def as_paths(paths, n: int, where: str) -> np.ndarray:
  """Validates per-row source paths: ``n`` distinct relative POSIX paths.

  A path may not be empty, absolute, or step out of its folder (``..``), so
  that a tree written from them (``ntga poison --png``) stays inside its
  output folder.

  Args:
    paths: 1-D strings, one per image.
    n: the number of images they must match.
    where: file or spec named in error messages.

  Returns:
    A str array of shape (n,).

  Example:
    >>> as_paths(["cat/1.png", "dog/1.png"], 2, "x").tolist()
    ['cat/1.png', 'dog/1.png']
  """
  arr = np.asarray(paths)
  if arr.shape != (n,) or arr.dtype.kind not in "US":
    raise DataError(f"{where}: paths must be {n} strings, got {arr.dtype} {arr.shape}")
  arr = arr.astype(str)
  for p in arr.tolist():
    parts = p.split("/")
    if p.startswith("/") or any(s in ("", ".", "..") for s in parts):
      raise DataError(f"{where}: path {p!r} is not a plain relative path like 'cat/0001.png'")
  counts = collections.Counter(arr.tolist())
  if len(counts) != n:
    dup = next(p for p, c in counts.items() if c > 1)
    raise DataError(f"{where}: path {dup!r} names more than one image")
  return arr


def make_dataset(x: np.ndarray,
                 y: np.ndarray,
                 class_names: Sequence[str] | None,
                 where: str,
                 index: np.ndarray | None = None,
                 paths: Sequence[str] | np.ndarray | None = None) -> Dataset:
  """Builds a validated :class:`Dataset`.

  Args:
    x: pixels (see :func:`as_images`).
    y: labels (see :func:`as_labels`).
    class_names: one name per class, or None for ``str(i)`` names.
    where: file or spec named in error messages.
    index: optional source positions (1-D integers, one per image).
    paths: optional source files, one per image (see :func:`as_paths`).

  Returns:
    The dataset.
  """
  x = as_images(x, where)
  y = as_labels(y, len(x), where)
  if len(x) == 0:
    raise DataError(f"{where}: the split holds no examples")
  if class_names is None:
    class_names = default_class_names(y)
  class_names = tuple(str(c) for c in class_names)
  if len(y) and int(y.max()) >= len(class_names):
    raise DataError(f"{where}: label {int(y.max())} but only {len(class_names)} class names")
  if index is not None:
    index = np.asarray(index)
    if index.shape != (len(x),) or not np.issubdtype(index.dtype, np.integer):
      raise DataError(f"{where}: index must be {len(x)} integers, got {index.dtype} {index.shape}")
    index = index.astype(np.int64)
  if paths is not None:
    paths = as_paths(paths, len(x), where)
  return Dataset(x=x, y=y, class_names=class_names, index=index, paths=paths)
