"""Convolution whose gradient runs as matmuls: the CPU bottleneck of every victim.

XLA's CPU convolution is fast forward but slow backward: on 2 cores a 3x3,
64 -> 64 convolution at 32x32 runs its forward pass at ~50 GFLOP/s and
forward plus backward at ~9 GFLOP/s, most of it in the weight gradient. This
module keeps XLA's convolution for the forward value and computes the
gradient from the layer's patches, the same way ``ntga/_cnn_kernel.py``
computes the surrogate's kernel:

* weight gradient: ``patches(x)^T @ g``, one large matmul;
* input gradient: the transposed convolution, i.e. a forward convolution of
  ``g`` with the spatially flipped, in/out-swapped kernel.

Under differentiation the forward value is computed as ``patches @ W`` (the
patches are the residual the weight gradient needs anyway). Values and
gradients equal ``jax.lax.conv_general_dilated``'s up to float reassociation
(``tests/test_victims_fast.py``); the throughput it buys is recorded by the
``victim_speed`` benchmark. The fast path covers unit-stride, undilated,
ungrouped NHWC/HWIO convolutions with SAME, VALID or explicit padding; any
other call goes to ``jax.lax.conv_general_dilated`` unchanged.

Example:
  >>> from flax import nnx
  >>> layer = nnx.Conv(3, 8, (3, 3), conv_general_dilated=conv_general_dilated,
  ...                  rngs=nnx.Rngs(0))
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp

_DIMS = ("NHWC", "HWIO", "NHWC")


def _pads(padding, kernel: Sequence[int]) -> tuple[tuple[int, int], ...] | None:
  """Explicit (lo, hi) pads per spatial axis, or None if not a fast-path case."""
  if isinstance(padding, str):
    if padding.upper() == "VALID":
      return tuple((0, 0) for _ in kernel)
    if padding.upper() == "SAME":
      return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel)
    return None
  pads = tuple((int(lo), int(hi)) for lo, hi in padding)
  if any(lo < 0 or hi < 0 or lo > k - 1 or hi > k - 1
         for (lo, hi), k in zip(pads, kernel)):
    return None
  return pads


def _patches(x: jax.Array, kernel: tuple[int, int],
             pads: tuple[tuple[int, int], ...]) -> jax.Array:
  """(N, H', W', kh*kw*C) patches, ordered like ``w.reshape(kh*kw*C, O)``."""
  kh, kw = kernel
  xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  h = xp.shape[1] - kh + 1
  w = xp.shape[2] - kw + 1
  return jnp.concatenate([xp[:, i:i + h, j:j + w, :]
                          for i in range(kh) for j in range(kw)], axis=-1)


def _xla(x, w, pads):
  return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=_DIMS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x: jax.Array, w: jax.Array, pads) -> jax.Array:
  return _xla(x, w, pads)


def _conv_fwd(x, w, pads):
  kh, kw, ci, co = w.shape
  p = _patches(x, (kh, kw), pads)
  out = (p.reshape(-1, kh * kw * ci) @ w.reshape(-1, co)).reshape(*p.shape[:3], co)
  return out, (p, w)


def _conv_bwd(pads, res, g):
  p, w = res
  kh, kw, ci, co = w.shape
  dw = (p.reshape(-1, kh * kw * ci).T @ g.reshape(-1, co)).reshape(w.shape)
  flipped = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
  back = tuple((k - 1 - lo, k - 1 - hi) for (lo, hi), k in zip(pads, (kh, kw)))
  dx = _xla(g, flipped, back)
  return dx.astype(p.dtype), dw.astype(w.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)


def _is_nhwc(dimension_numbers, ndim: int) -> bool:
  """True for NHWC inputs and HWIO kernels, however the numbers are spelt."""
  if ndim != 4 or dimension_numbers is None:
    return False
  if isinstance(dimension_numbers, jax.lax.ConvDimensionNumbers):
    return tuple(map(tuple, dimension_numbers)) == ((0, 3, 1, 2), (3, 2, 0, 1),
                                                    (0, 3, 1, 2))
  return tuple(dimension_numbers) == _DIMS


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides,
                         padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision=None,
                         preferred_element_type=None, out_sharding=None
                         ) -> jax.Array:
  """Drop-in for ``jax.lax.conv_general_dilated`` with a matmul gradient.

  Args and Returns: as ``jax.lax.conv_general_dilated``. Unit-stride,
  undilated, ungrouped NHWC/HWIO calls take the fast path (see the module
  docstring); every other call is passed through.
  """
  pads = _pads(padding, tuple(rhs.shape[:2])) if rhs.ndim == 4 else None
  fast = (pads is not None and tuple(window_strides) == (1, 1)
          and lhs_dilation in (None, (1, 1)) and rhs_dilation in (None, (1, 1))
          and feature_group_count == 1 and batch_group_count == 1
          and precision is None and preferred_element_type is None
          and out_sharding is None and _is_nhwc(dimension_numbers, lhs.ndim))
  if not fast:
    return jax.lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count, precision=precision,
        preferred_element_type=preferred_element_type,
        **({} if out_sharding is None else {"out_sharding": out_sharding}))
  return _conv(lhs, rhs, pads)
