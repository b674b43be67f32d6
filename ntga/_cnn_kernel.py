"""The CNN surrogate's NTK in closed form, written for speed on CPU and GPU.

The paper's CNN surrogate (``ntga.surrogates``) is
2 x [Conv(5x5, stride 2, SAME) -> ReLU] -> Flatten -> 3 x Dense, in NT's
"ntk" parameterisation. Because Flatten follows the convolutions, only
per-pixel ("diagonal-spatial") covariances are needed. neural-tangents
computes them by forming the n1 x n2 x H x W input covariance and running a
1-channel convolution over it; this module computes the same numbers with
dense algebra instead:

* First conv layer: a pixel's covariance is an inner product of the two
  images' 5x5 patches, so all of them come from one batched matmul over
  patches (strided slices of the padded images, :func:`_patches`); the
  full-resolution input covariance is never formed.
* Later conv layers: averaging a covariance over each output pixel's window
  is a fixed linear map between pixel grids, applied as one matmul.
* ReLU: the arc-cosine kernel (Cho & Saul 2009) with a polynomial arccos
  (Abramowitz & Stegun 4.4.46, |error| < 2e-8) and a hand-written VJP
  (:func:`_relu`) that stays finite where the correlation is 1 (every
  diagonal entry), using d/dc J1(c) = J0(c), and saves two arrays per layer
  (J0 and the NNGP output) where automatic differentiation saved about
  eight: the kernel's time goes to writing and reading (pixels, n1, n2)
  arrays. Being a custom VJP, it
  differentiates in reverse mode only (``jax.grad``, ``jax.vjp``).
* An image paired with itself (the diagonal of K(x, x), padding copies,
  duplicate images) has correlation exactly 1 at every pixel and layer, and
  it is set to exactly 1, with zero derivative. Computed, it comes out
  1 +- a float32 rounding that depends on how the batch was cut into
  matmuls, and arccos's infinite slope at 1 turned that into ~1e-4 relative
  differences in value and gradient between a kernel built whole and one
  built in slabs (3.3e-4 in the gradient on an AMD EPYC). Identical images
  are found by exact keys of their bits (:func:`image_keys`).

``ntga.surrogates.get("cnn")`` is this kernel. The mean over pixels that
Flatten takes is written as a matmul: the plain ``jnp.mean`` was miscompiled
by XLA CPU under ``vmap(lax.map(...))`` (see :func:`_pixel_mean`).

Pixels are kept on the leading axis so the element-wise ReLU work runs over
contiguous memory. ``tests/test_kernels.py`` checks values and gradients
against neural-tangents' own kernel.

Where the time goes on CPU (``cnn_kernel_speed``, ``cnn_tile_sweep`` and
``ntga_block_sweep`` in benchmarks/RESULTS.md measure it): XLA writes each
layer's element-wise chain as several full (pixels, n1, n2) arrays, so a
whole tile is bound by memory traffic rather than by its matmuls, and the
first layer's arc-cosine with its variance cotangent (a sum over the other
side's images) is the largest single part of a colour tile's value and
gradient.
Cache-sized sub-tiles (``tile=``) pay off on greyscale images only. Tried
without gain: the window average as strided slices or as two separable
matmuls (slower than the one dense matmul), fewer materialised arrays in the
ReLU (per-image rsqrt factors), a fused per-chunk ``value_and_grad`` in NTGA
(``jax.grad`` of the checkpointed chunk scan already does one forward pass)
and bfloat16 matmuls (slower than float32 under XLA's CPU backend).

Example:

  >>> kfn = cnn_ntk_fn(w_var=1.76, b_var=0.18)
  >>> k = kfn(x1, x2)  # (n1, n2) NTK, x NHWC float32
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ntga import _tiles

# Abramowitz & Stegun 4.4.46: arccos(a) = sqrt(1 - a) * sum_k c_k a^k on [0, 1].
_ACOS = (1.5707963050, -0.2145988016, 0.0889789874, -0.0501743046,
         0.0308918810, -0.0170881256, 0.0066700901, -0.0012624911)
_EDGE = 1e-6  # floor of 1 - c^2 in the derivative of J0 (finite at c = 1)


def _out_and_pad(n: int, k: int, s: int) -> tuple[int, int]:
  """Output length and low-side padding of a SAME convolution (TF rule)."""
  out = -(-n // s)
  return out, max((out - 1) * s + k - n, 0) // 2


@functools.lru_cache(maxsize=None)
def window_average(h: int, w: int, k: int, s: int) -> np.ndarray:
  """(out_pixels, in_pixels) matrix averaging each SAME conv window.

  Padded positions count as zeros, and the divisor is always k * k, as in
  neural-tangents' "ntk" parameterisation.
  """
  ho, ph = _out_and_pad(h, k, s)
  wo, pw = _out_and_pad(w, k, s)
  m = np.zeros((ho * wo, h * w), np.float32)
  for a in range(ho):
    for b in range(wo):
      rows = range(max(a * s - ph, 0), min(a * s - ph + k, h))
      cols = range(max(b * s - pw, 0), min(b * s - pw + k, w))
      for i in rows:
        for j in cols:
          m[a * wo + b, i * w + j] = 1.0 / (k * k)
  return m


def _mix32(h: jax.Array) -> jax.Array:
  """MurmurHash3's 32-bit finaliser (Appleby): every input bit flips about
  half the output bits, so a sum of mixed words has no structured
  collisions."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


@functools.lru_cache(maxsize=None)
def _salts(size: int) -> np.ndarray:
  """(2, size) fixed random words, one per pixel, for two independent keys."""
  return np.random.default_rng(0x5A17).integers(
      0, 2**32, (2, size), dtype=np.uint32)


def image_keys(x: jax.Array) -> jax.Array:
  """(n, 2) uint32 keys, equal for images with equal pixels (64 bits).

  Each pixel's float32 bits (-0.0 read as 0.0) are salted with its position,
  mixed (:func:`_mix32`) and summed modulo 2^32. Integer sums do not depend
  on the order of summation, so an image gets the same key whatever batch or
  slab it is in; two different images share both keys with probability
  about 2^-64.

  Example:
    >>> keys = image_keys(x)  # x (n, H, W, C) float32
    >>> same = jnp.all(keys[:, None] == keys[None, :], -1)
  """
  n = x.shape[0]
  flat = jnp.where(x == 0, 0.0, x).astype(jnp.float32).reshape(n, -1)
  bits = jax.lax.bitcast_convert_type(flat, jnp.uint32)
  salts = jnp.asarray(_salts(flat.shape[1]))
  words = _mix32(bits[:, None, :] ^ salts[None])
  return jnp.sum(words, axis=-1, dtype=jnp.uint32)


def _acos(c: jax.Array) -> jax.Array:
  a = jnp.abs(c)
  p = _ACOS[-1]
  for coef in _ACOS[-2::-1]:
    p = p * a + coef
  r = jnp.sqrt(1.0 - a) * p
  return jnp.where(c < 0, math.pi - r, r)


def _arccos_terms(c: jax.Array) -> tuple[jax.Array, jax.Array]:
  """J1(c) = sqrt(1 - c^2) + (pi - acos c) c and J0(c) = pi - acos c."""
  j0 = math.pi - _acos(c)
  return jnp.sqrt(1.0 - c * c) + j0 * c, j0


def _correlation(nngp, var1, var2, same):
  """(norm, raw, c): sqrt(var1 var2), nngp / norm, and the clipped
  correlation, exactly 1 for pairs of identical images."""
  norm = jnp.sqrt(var1 * var2)
  raw = nngp / norm
  return norm, raw, jnp.where(same[None], 1.0, jnp.clip(raw, -1.0, 1.0))


@jax.custom_vjp
def _relu(nngp, ntk, var1, var2, same):
  """ReLU's (NNGP, NTK) map; var1 (P, n1, 1), var2 (P, 1, n2).

  ``same`` (n1, n2) marks pairs of identical images, whose correlation is
  exactly 1 (a constant: no derivative). The VJP is written by hand
  (:func:`_relu_bwd`): it keeps J0 and the NNGP output from the forward
  pass and recomputes the rest, where automatic differentiation saved about
  eight arrays of the (pixels, n1, n2) shape per layer, and the kernel is
  bound by how many such arrays it writes and reads.
  """
  return _relu_fwd(nngp, ntk, var1, var2, same)[0]


def _relu_fwd(nngp, ntk, var1, var2, same):
  norm, _, c = _correlation(nngp, var1, var2, same)
  j1, j0 = _arccos_terms(c)
  out = (norm * j1 / (2 * math.pi), ntk * j0 / (2 * math.pi))
  return out, (nngp, ntk, j0, out[0], var1, var2, same)


def _relu_bwd(res, cotangents):
  """With norm = sqrt(v1 v2), c = clip(nngp / norm) and the outputs
  out1 = norm J1(c) / 2pi, ntk J0(c) / 2pi: dJ1/dc = J0, and dJ0/dc =
  (1 - c^2)^(-1/2), floored at 1 - c^2 = _EDGE so it stays finite at c = 1.

  The variances' cotangents sum, over the other side's images, the
  cotangent of norm times d norm / d v = norm / (2 v): with
  dnorm = g1 J1 / 2pi - dc c / norm that is 0.5 (g1 out1 - dc nngp / norm),
  written from the saved output and the nngp cotangent, so that the two
  sums do not recompute the arc-cosine terms (no measurable change in
  ``cnn_tile_sweep`` on a quiet machine; ~6-8% faster beside another job).
  """
  nngp, ntk, j0, out1, var1, var2, same = res
  g1, g2 = cotangents
  norm, raw, c = _correlation(nngp, var1, var2, same)
  live = jnp.logical_and(jnp.logical_not(same[None]), jnp.abs(raw) <= 1.0)
  one_minus = 1.0 - c * c
  dc = (g1 * norm * j0 + g2 * ntk * jax.lax.rsqrt(jnp.maximum(one_minus, _EDGE))
        ) / (2 * math.pi)
  d_nngp = jnp.where(live, dc, 0.0) / norm
  half = 0.5 * (g1 * out1 - d_nngp * nngp)  # cotangent of norm x norm / 2
  dv1 = jnp.sum(half, axis=2, keepdims=True) / var1
  dv2 = jnp.sum(half, axis=1, keepdims=True) / var2
  return d_nngp, g2 * j0 / (2 * math.pi), dv1, dv2, None


_relu.defvjp(_relu_fwd, _relu_bwd)


def _pixel_mean(a: jax.Array) -> jax.Array:
  """Mean over the leading (pixel) axis, computed as a matrix product.

  ``jnp.mean(a, 0)`` here was miscompiled by XLA CPU (jax 0.10.2) when the
  kernel ran inside ``vmap(lax.map(...))``, as NTGA's slab-wise K_nn does:
  the dense layers that follow returned values of ~1e36 (tests/test_kernels.py
  keeps a check). A dot with a 1/P vector computes the same mean.
  """
  p = a.shape[0]
  w = jnp.full((p,), 1.0 / p, a.dtype)
  return (w @ a.reshape(p, -1)).reshape(a.shape[1:])


def _patches(x: jax.Array, k: int, s: int) -> jax.Array:
  """(pixels, n, C*k*k) patches of NHWC images for a SAME conv.

  Built from the k*k strided slices of the zero-padded images, one per
  filter tap, in the feature order of ``lax.conv_general_dilated_patches``
  (channel, then tap row, then tap column). The values are the same; the
  point is the gradient: XLA's CPU backend differentiates
  ``conv_general_dilated_patches`` into a transposed convolution, far slower
  than its forward pass and a large share of the whole kernel's backward,
  where the slices' gradient is k*k padded adds.
  """
  n, h, w, c = x.shape
  ho, ph = _out_and_pad(h, k, s)
  wo, pw = _out_and_pad(w, k, s)
  xp = jnp.pad(x, ((0, 0), (ph, max((ho - 1) * s + k - h - ph, 0)),
                   (pw, max((wo - 1) * s + k - w - pw, 0)), (0, 0)))
  taps = [xp[:, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s, :]
          for i in range(k) for j in range(k)]
  p = jnp.stack(taps, axis=-1).reshape(n, ho * wo, c * k * k)
  return jnp.moveaxis(p, 1, 0)


def cnn_ntk_fn(*, w_var: float, b_var: float, filter_size: int = 5,
               stride: int = 2, conv_depth: int = 2, dense_depth: int = 3,
               tile: tuple[int, int] | None = None
               ) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """The NTK of conv_depth x [Conv -> ReLU] -> Flatten -> dense_depth x Dense.

  Args:
    w_var, b_var: weight and bias variances (W_std^2, b_std^2) of every layer.
    filter_size, stride: square SAME convolutions.
    conv_depth: number of Conv -> ReLU blocks (>= 1).
    dense_depth: number of Dense layers after Flatten (widths do not matter).
    tile: ``(rows, cols)``: compute the kernel in sub-tiles of at most this
      many image pairs, one after the other, each rematerialised in the
      backward pass (:func:`ntga._tiles.tiled`). The per-pixel arrays of one
      sub-tile then stay in cache; the per-image work (patches, their
      variances, the image keys: :func:`_features`) is done once for all
      sub-tiles. The values are the same. None: in one piece.

  Returns:
    ``kernel_fn(x1, x2) -> (n1, n2)`` for NHWC float arrays.

  Example:
    >>> kfn = cnn_ntk_fn(w_var=1.76, b_var=0.18, tile=(50, 64))
  """
  k, s = filter_size, stride

  def kernel_fn(x1: jax.Array, x2: jax.Array) -> jax.Array:
    h, w = (_out_and_pad(n, k, s)[0] for n in x1.shape[1:3])
    pairs = functools.partial(_pair_kernel, grid=(h, w), w_var=w_var,
                              b_var=b_var, filter_size=k, stride=s,
                              conv_depth=conv_depth, dense_depth=dense_depth)
    f1, f2 = (_features(x, k, s, w_var, b_var) for x in (x1, x2))
    if tile is None:
      return pairs(f1, f2)
    return _tiles.tiled(pairs, f1, f2, rows=tile[0], cols=tile[1], axis=1)

  return kernel_fn


def _features(x: jax.Array, k: int, s: int, w_var: float, b_var: float
              ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Per-image inputs of the kernel, each with its images on axis 1.

  Returns:
    ``(patches, var, keys)``: the (pixels, n, C*k*k) first-layer patches
    (:func:`_patches`), each pixel's first-layer variance (pixels, n), and
    the (2, n) :func:`image_keys`.
  """
  p = _patches(x, k, s)
  var = jnp.sum(p * p, -1) * (w_var / p.shape[-1]) + b_var
  return p, var, image_keys(x).T


def _pair_kernel(f1, f2, *, grid, w_var, b_var, filter_size, stride,
                 conv_depth, dense_depth) -> jax.Array:
  """The (n1, n2) NTK from both sides' :func:`_features`; ``grid`` is the
  first conv layer's output (height, width)."""
  (p1, var1, keys1), (p2, var2, keys2) = f1, f2
  k, s = filter_size, stride
  same = jnp.all(keys1[:, :, None] == keys2[:, None, :], axis=0)
  scale = w_var / p1.shape[-1]  # patch inner product / (k*k*C)
  nngp = jnp.einsum("pik,pjk->pij", p1, p2) * scale + b_var
  ntk = nngp
  h, w = grid
  for layer in range(conv_depth):
    if layer:
      avg = jnp.asarray(window_average(h, w, k, s))
      h, w = _out_and_pad(h, k, s)[0], _out_and_pad(w, k, s)[0]
      shape = (avg.shape[0],) + nngp.shape[1:]
      pix = nngp.shape[0]
      nngp = w_var * (avg @ nngp.reshape(pix, -1)).reshape(shape) + b_var
      ntk = w_var * (avg @ ntk.reshape(pix, -1)).reshape(shape) + nngp
      var1, var2 = w_var * (avg @ var1) + b_var, w_var * (avg @ var2) + b_var
    nngp, ntk = _relu(nngp, ntk, var1[:, :, None], var2[:, None, :], same)
    var1, var2 = var1 / 2, var2 / 2
  # Flatten: the mean over pixels, as a matmul (see the module docstring).
  nngp, ntk = _pixel_mean(nngp), _pixel_mean(ntk)
  for _ in range(dense_depth):
    nngp = w_var * nngp + b_var
    ntk = w_var * ntk + nngp
  return ntk
