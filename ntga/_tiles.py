"""Kernels built in tiles: cutting image batches into equal pieces.

Both :mod:`ntga.pgd` (a block's K_nn in square tiles, K_mn in column tiles,
:func:`tiled`) and :mod:`ntga._cnn_kernel` (cache-sized sub-tiles of one
kernel call, :func:`tiled`) cut their image batches the same way: into the
fewest pieces of at most ``size`` images, all of one length, the last one
padded with copies of the first images (their kernel entries are dropped
afterwards).

Example:
  >>> slab_shape(10, 4)
  (3, 4)
  >>> pieces(jnp.arange(10), 4).shape
  (3, 4)
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp


def slab_shape(n: int, size: int) -> tuple[int, int]:
  """(number of pieces, images per piece) for ``n`` images cut by ``size``.

  Args:
    n: number of images.
    size: the most images one piece holds.

  Returns:
    ``(ceil(n / size), ceil(n / pieces))``: the fewest pieces, as even as
    whole images allow.
  """
  n_pieces = math.ceil(n / size)
  return n_pieces, math.ceil(n / n_pieces)


def pieces(x: jax.Array, size: int, axis: int = 0) -> jax.Array:
  """``x`` padded with copies of its first entries along ``axis`` and cut into
  equal pieces, stacked on a new leading axis.

  Args:
    x: array whose ``axis`` counts images.
    size: the most images one piece holds.
    axis: the image axis of ``x``.

  Returns:
    An array of shape ``(pieces,) + x.shape`` with ``x.shape[axis]``
    replaced by ``rows``, where ``(pieces, rows) = slab_shape(x.shape[axis],
    size)``.
  """
  n = x.shape[axis]
  n_pieces, rows = slab_shape(n, size)
  extra = jax.lax.slice_in_dim(x, 0, n_pieces * rows - n, axis=axis)
  padded = jnp.concatenate([x, extra], axis=axis)
  split = padded.reshape(x.shape[:axis] + (n_pieces, rows) + x.shape[axis + 1:])
  return jnp.moveaxis(split, axis, 0)


def tiled(kernel_fn: Callable[[Any, Any], jax.Array], x1: Any, x2: Any, *,
          rows: int, cols: int, axis: int = 0) -> jax.Array:
  """``kernel_fn(x1, x2)`` computed in tiles of at most rows x cols pairs.

  ``x2`` (and ``x1`` if it has more than ``rows`` images) is cut into equal
  :func:`pieces`, and ``lax.map`` computes one tile at a time, each under
  ``jax.checkpoint``, so only one tile's intermediates are alive, forward or
  backward. Padding is dropped.

  Args:
    kernel_fn: ``(a, b) -> (len(a), len(b))`` kernel.
    x1, x2: the two sides' images, or pytrees of per-image arrays (features
      computed once for all tiles, as the cnn kernel does), each with its
      images on ``axis``.
    rows, cols: the largest tile.
    axis: the image axis of every array in ``x1`` and ``x2``.

  Returns:
    The (n1, n2) kernel, equal to ``kernel_fn(x1, x2)``.

  Example:
    >>> k = tiled(kernel_fn, x_targets, x_block, rows=250, cols=512)
  """
  count = lambda x: jax.tree_util.tree_leaves(x)[0].shape[axis]  # noqa: E731
  cut = lambda x, size: jax.tree_util.tree_map(  # noqa: E731
      lambda leaf: pieces(leaf, size, axis), x)
  n1, n2 = count(x1), count(x2)
  if n1 <= rows and n2 <= cols:
    return kernel_fn(x1, x2)
  b = cut(x2, cols)
  sub = jax.checkpoint(kernel_fn)

  def row(a):  # (images of a, n2): a against every piece of x2
    k = jax.lax.map(lambda bj: sub(a, bj), b)
    return jnp.moveaxis(k, 0, 1).reshape(count(a), -1)[:, :n2]

  if n1 <= rows:
    return row(x1)
  return jax.lax.map(row, cut(x1, rows)).reshape(-1, n2)[:n1]
