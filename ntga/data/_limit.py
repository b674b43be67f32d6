"""Seeded, class-stratified subsets: the order behind ``load(..., limit=N)``."""

from __future__ import annotations

import numpy as np

from ntga.data._types import Dataset
from ntga.errors import DataError


def stratified_order(y: np.ndarray, seed: int) -> np.ndarray:
  """A seeded order of a split in which every prefix is class-balanced.

  Classes are taken in ascending label order. One generator,
  ``np.random.default_rng(seed)``, permutes each class's positions in turn
  (class 0 first, then class 1, ...). The permuted classes are then interleaved
  round-robin: the first example of every class, then the second of every
  class, and so on; a class that runs out simply drops out of later rounds. Any
  prefix of the result is therefore as balanced as the class sizes allow.

  Args:
    y: 1-D integer labels of the split.
    seed: seed of the permutation within each class.

  Returns:
    int64 array, a permutation of ``arange(len(y))``.

  Example:
    >>> stratified_order(np.array([0, 0, 1, 1, 1]), seed=0)[:2]  # one per class
    array([0, 4])
  """
  y = np.asarray(y)
  if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
    raise DataError(f"stratified_order: labels must be a 1-D integer array, got {y.dtype} {y.shape}")
  rng = np.random.default_rng(seed)
  classes = np.unique(y)
  positions, ranks, class_pos = [], [], []
  for k, c in enumerate(classes):
    members = rng.permutation(np.flatnonzero(y == c))
    positions.append(members)
    ranks.append(np.arange(len(members)))
    class_pos.append(np.full(len(members), k))
  if not positions:
    return np.zeros(0, np.int64)
  positions = np.concatenate(positions)
  # Sort by rank within the class first, then by class: a round-robin interleave.
  order = np.lexsort((np.concatenate(class_pos), np.concatenate(ranks)))
  return positions[order].astype(np.int64)


def check_limit(limit: int | None) -> None:
  """Raises DataError unless ``limit`` is None or a positive integer."""
  if limit is None:
    return
  if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)):
    raise DataError(f"limit must be a positive integer or None, got {limit!r}")
  if limit <= 0:
    raise DataError(f"limit must be a positive integer, got {limit}")


def limit_positions(y: np.ndarray, limit: int | None, seed: int) -> np.ndarray | None:
  """The rows ``limit`` keeps, in source order: the first ``limit`` of
  :func:`stratified_order`, sorted; None when it keeps every row.

  Example:
    >>> limit_positions(np.array([0, 0, 1, 1, 1]), 2, seed=0)
    array([0, 4])
  """
  check_limit(limit)
  if limit is None or limit >= len(y):
    return None
  return np.sort(stratified_order(y, seed)[:limit])


def apply_limit(ds: Dataset, limit: int | None, seed: int) -> Dataset:
  """Keeps the first ``limit`` examples of :func:`stratified_order`.

  Args:
    ds: the whole split.
    limit: how many examples to keep; None or >= len(ds) keeps everything.
    seed: seed of :func:`stratified_order`.

  Returns:
    The subset, rows sorted by source position, ``index`` composed with
    ``ds.index`` so it still points into the source split, and ``paths`` (if
    any) subset alike.
  """
  keep = limit_positions(ds.y, limit, seed)
  if keep is None:
    return ds
  paths = None if ds.paths is None else ds.paths[keep]
  return Dataset(x=ds.x[keep], y=ds.y[keep], class_names=ds.class_names, index=ds.index[keep],
                 paths=paths)
