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
from typing import Callable

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


def pieces(x: jax.Array, size: int) -> jax.Array:
  """``x`` padded with copies of its first rows and cut into equal pieces.

  Args:
    x: (n, ...) array.
    size: the most rows one piece holds.

  Returns:
    An array of shape ``(pieces, rows) + x.shape[1:]`` with
    ``(pieces, rows) = slab_shape(len(x), size)``.
  """
  n_pieces, rows = slab_shape(x.shape[0], size)
  padded = jnp.concatenate([x, x[:n_pieces * rows - x.shape[0]]])
  return padded.reshape((n_pieces, rows) + x.shape[1:])


def tiled(kernel_fn: Callable[[jax.Array, jax.Array], jax.Array],
          x1: jax.Array, x2: jax.Array, *, rows: int, cols: int) -> jax.Array:
  """``kernel_fn(x1, x2)`` computed in tiles of at most rows x cols pairs.

  ``x2`` (and ``x1`` if it has more than ``rows`` images) is cut into equal
  :func:`pieces`, and ``lax.map`` computes one tile at a time, each under
  ``jax.checkpoint``, so only one tile's intermediates are alive, forward or
  backward. Padding is dropped.

  Args:
    kernel_fn: ``(a, b) -> (len(a), len(b))`` kernel.
    x1, x2: (n1, ...) and (n2, ...) inputs.
    rows, cols: the largest tile.

  Returns:
    The (n1, n2) kernel, equal to ``kernel_fn(x1, x2)``.

  Example:
    >>> k = tiled(kernel_fn, x_targets, x_block, rows=250, cols=512)
  """
  n1, n2 = x1.shape[0], x2.shape[0]
  if n1 <= rows and n2 <= cols:
    return kernel_fn(x1, x2)
  b = pieces(x2, cols)
  sub = jax.checkpoint(kernel_fn)

  def row(a):  # (len(a), n2): a against every piece of x2
    k = jax.lax.map(lambda bj: sub(a, bj), b)
    return jnp.moveaxis(k, 0, 1).reshape(a.shape[0], -1)[:, :n2]

  if n1 <= rows:
    return row(x1)
  return jax.lax.map(row, pieces(x1, rows)).reshape(-1, n2)[:n1]
