"""The Dataset container returned by :func:`ntga.data.load`."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Dataset:
  """An image-classification split.

  Attributes:
    x: uint8 images, shape (N, H, W, C).
    y: int64 class indices, shape (N,).
    class_names: one name per class; ``len(class_names)`` is the class count.
    index: int64, shape (N,): each row's position in the source split, so rows
      map back to source files (``arange(N)`` unless a subset was taken).
    paths: for inputs made of files (image folders and archives, and ``.npz``
      files that carry a ``paths`` array, such as a poisoning run's
      ``train.npz``): a str array, shape (N,), of each row's source file
      relative to the split's class folders, POSIX style
      (``"automobile/0000.png"``); None for inputs without per-image files
      (digits, tfds, IDX, CIFAR pickles, plain arrays).

  Example:
    >>> ds = Dataset(np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 1]), ("a", "b"))
    >>> ds.index.tolist(), ds.paths
    ([0, 1], None)
  """

  x: np.ndarray
  y: np.ndarray
  class_names: tuple[str, ...]
  index: np.ndarray | None = None
  paths: np.ndarray | None = None

  def __post_init__(self):
    if self.index is None:
      object.__setattr__(self, "index", np.arange(len(self.x), dtype=np.int64))
    if self.paths is not None:
      object.__setattr__(self, "paths", np.asarray(self.paths, dtype=str))

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def __len__(self) -> int:
    return len(self.x)
