"""Cutting a batch of images into equal pieces, for kernels built in tiles.

Both :mod:`ntga.pgd` (a block's K_nn in square tiles, K_mn in column tiles) and
:mod:`ntga._cnn_kernel` (cache-sized sub-tiles of one kernel call) cut their
image batches the same way: into the fewest pieces of at most ``size``
images, all of one length, the last one padded with copies of the first
images (their kernel entries are dropped afterwards).

Example:
  >>> slab_shape(10, 4)
  (3, 4)
  >>> pieces(jnp.arange(10), 4).shape
  (3, 4)
"""

from __future__ import annotations

import math

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
