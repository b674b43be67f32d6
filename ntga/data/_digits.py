"""The ``digits`` spec: scikit-learn's bundled 8x8 handwritten digits.

scikit-learn ships 1,797 images (values 0..16). They are mapped to uint8 by
``round(v * 255 / 16)`` (half to even) and split once, deterministically, into
train and test: within each class a permutation from
``np.random.default_rng(DIGITS_SPLIT_SEED)`` (classes in ascending order, one
generator) sends the first ``round(25% of the class)`` examples to ``test`` and
the rest to ``train``; each split keeps scikit-learn's order. That gives 1,347
training and 450 test images, 8x8x1, ten classes named "0".."9".
"""

from __future__ import annotations

import functools

import numpy as np

from ntga.data._arrays import make_dataset
from ntga.data._types import Dataset
from ntga.errors import DataError

DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.25


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  bunch = load_digits()
  x = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  return x, bunch.target.astype(np.int64)


def digits_split_positions(y: np.ndarray, split: str) -> np.ndarray:
  """Positions (into scikit-learn's order) of the fixed digits train/test split.

  Args:
    y: all 1,797 labels in scikit-learn's order.
    split: ``"train"`` or ``"test"``.

  Returns:
    Sorted int64 positions of that split.
  """
  rng = np.random.default_rng(DIGITS_SPLIT_SEED)
  test = []
  for c in np.unique(y):
    members = rng.permutation(np.flatnonzero(y == c))
    test.append(members[:int(round(DIGITS_TEST_FRACTION * len(members)))])
  is_test = np.zeros(len(y), bool)
  is_test[np.concatenate(test)] = True
  if split == "test":
    return np.flatnonzero(is_test).astype(np.int64)
  if split == "train":
    return np.flatnonzero(~is_test).astype(np.int64)
  raise DataError(f"digits: no split {split!r} (have 'train', 'test')")


def load_digits_split(split: str) -> Dataset:
  """Loads one split of the ``digits`` spec (see the module docstring).

  Args:
    split: ``"train"`` or ``"test"``.

  Returns:
    uint8 (N, 8, 8, 1) images, int64 labels, class names "0".."9".

  Example:
    >>> ds = load_digits_split("test")
    >>> ds.x.shape, ds.num_classes
    ((450, 8, 8, 1), 10)
  """
  x, y = _digits_arrays()
  keep = digits_split_positions(y, split)
  return make_dataset(x[keep], y[keep], tuple(str(i) for i in range(10)), "digits")
