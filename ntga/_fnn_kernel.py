"""The fully connected surrogate's NTK, fused for speed on CPU and GPU.

The paper's FNN surrogate (``ntga.surrogates``) is depth x [Dense -> Erf] on
flattened images, in NT's "ntk" parameterisation. For a pair of images
(x, y) of dimension d, neural-tangents computes, starting from
s = x.y / d, q_x = |x|^2 / d, q_y = |y|^2 / d and NTK t = 0, per layer:

* Dense: s <- w s + b, q <- w q + b (each image), t <- s + w t;
* Erf (Williams 1997): with p = 1 + 2 q,
  s <- (2 / pi) arcsin(2 s / sqrt(p_x p_y)),
  t <- t (4 / pi) / sqrt(p_x p_y - 4 s^2) (the derivative kernel),
  and q <- (2 / pi) arcsin(2 q / p) for each image.

This module computes the same numbers in a different order:

* Everything that depends on one image (q and v = 1 / sqrt(p) at every
  layer) is a vector computed once per row, so the normaliser of each pair is
  the product v_x v_y of two vectors: multiplies only.
* With r = 2 s v_x v_y, the Erf step is s <- (2 / pi) arcsin(r) and
  t <- t (4 / pi) v_x v_y g with g = 1 / sqrt(1 - r^2), arcsin's derivative.
  Per pair and layer the only transcendental work is one arcsin and one
  reciprocal square root. The arcsin is a polynomial (:func:`_asin`): XLA
  CPU's own took ~25 ns per float32, more than all the rest of a layer.
* The pairwise chain has a hand-written reverse-mode derivative
  (``jax.custom_vjp``) that reuses each layer's r, g and t, so the backward
  pass does no transcendental work at all. Its cotangents flow back to the
  inputs through the first layer's matmul (one matmul per argument) and the
  per-image vectors (row and column sums).
* The forward layers run as a ``lax.scan``: as an unrolled Python loop, XLA
  CPU fused each layer's values into every later consumer and recomputed them
  there, arcsin included. The backward pass, which has no such expensive
  work, is faster unrolled than as a scan (no slicing of the saved values).
  Both were chosen by timing on XLA CPU (jax 0.10).

Pairs of identical images need no special care here, unlike the ReLU CNN
(``ntga._cnn_kernel``): an image's correlation with itself at every Erf
layer is r = 2 q / (1 + 2 q) < 1 (at most 0.8 for images in [0, 1], where
q < 2), far from arcsin's singular slope at 1, so float32 rounding is not
amplified and a kernel built whole equals one built in slabs to rounding.
r is clipped to [-1, 1] and 1 - r^2 floored at a tiny value so that inputs
of enormous norm give large but finite numbers rather than inf or NaN.

``ntga.surrogates.get("fnn")`` is this kernel; ``tests/test_kernels.py``
checks its values and gradients against neural-tangents' own.

Example:

  >>> kfn = fnn_ntk_fn(w_var=1.76, b_var=0.18, depth=5)
  >>> k = kfn(x1, x2)  # (n1, n2) NTK; x1, x2 (n, ...) float32, flattened
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

_TINY = 1e-12  # floor of 1 - r^2: keeps 1 / sqrt(1 - r^2) finite at r = 1
# asin(y) = y + y^3 Q(y^2) on [0, 1/2]: Q's coefficients, fitted for this
# module by weighted least squares to float64 arcsin (|error| < 2.5 float32
# ulp on [-1, 1] with the reduction in :func:`_asin`).
_ASIN_Q = (0.16666743159294128, 0.07496148347854614, 0.04533234238624573,
           0.024961194023489952, 0.04071664437651634)


def _outer(v1: jax.Array, v2: jax.Array) -> jax.Array:
  return v1[:, None] * v2[None, :]


def _asin(x: jax.Array) -> jax.Array:
  """float32 arcsin on [-1, 1] by a polynomial (XLA's asin is slow on CPU).

  For |x| > 1/2 it uses asin(a) = pi/2 - 2 asin(sqrt((1 - a) / 2)), so one
  polynomial on [0, 1/2] covers the whole range. XLA CPU evaluated
  ``jnp.arcsin`` at ~25 ns per float32, slower than the rest of a kernel
  layer together; this costs one sqrt and a few multiply-adds.

  Example:
    >>> _asin(jnp.array([0.0, 0.5, 1.0]))  # [0, pi/6, pi/2]
  """
  a = jnp.abs(x)
  big = a > 0.5
  z = jnp.where(big, 0.5 * (1.0 - a), a * a)
  y = jnp.where(big, jnp.sqrt(z), a)
  q = _ASIN_Q[-1]
  for coef in _ASIN_Q[-2::-1]:
    q = q * z + coef
  p = y + y * z * q
  p = jnp.where(big, math.pi / 2 - 2.0 * p, p)
  return jnp.where(x < 0, -p, p)


def _row_chain(q: jax.Array, w_var: float, b_var: float, depth: int
               ) -> jax.Array:
  """(depth, n) vectors v = 1 / sqrt(1 + 2 q) at each Erf layer's input.

  Args:
    q: (n,) squared norms of the inputs divided by their dimension.

  Returns:
    Row l holds v for the variance q after layer l's Dense.
  """
  vs = []
  for _ in range(depth):
    q = w_var * q + b_var
    v = jax.lax.rsqrt(1.0 + 2.0 * q)
    vs.append(v)
    # (2/pi) asin(2q / (1 + 2q)), written as NT does: its derivative stays
    # finite for any q (asin's is infinite once 2q / (1 + 2q) rounds to 1).
    q = (2 / math.pi) * jnp.arctan2(q, jnp.sqrt(q + 0.25))
  return jnp.stack(vs)


def _pair_chain_fn(w_var: float, b_var: float, depth: int):
  """The pairwise recursion ``(s0, v1, v2) -> ntk`` with its custom VJP.

  s0 is the (n1, n2) input covariance, v1 (depth, n1) and v2 (depth, n2) the
  per-image vectors of :func:`_row_chain`.
  """

  def layer(carry, vs):
    s, t = carry
    vv = _outer(*vs)
    s = w_var * s + b_var
    t = s + w_var * t
    r = jnp.clip(2.0 * s * vv, -1.0, 1.0)
    g = jax.lax.rsqrt(jnp.maximum(1.0 - r * r, _TINY))
    s = (2 / math.pi) * _asin(r)
    t = (4 / math.pi) * t * vv * g
    return (s, t), jnp.stack([r, g, t])

  def forward(s0, v1, v2):
    # A loop, not unrolled Python (see the module docstring). The saved values
    # go into one stacked array: three would each be zero-filled and copied.
    (_, t), saved = jax.lax.scan(layer, (s0, jnp.zeros_like(s0)), (v1, v2))
    return t, saved

  def layer_vjp(s_bar, t_bar, r, g, t, v1, v2):
    # With V = v1 v2^T and primes for the layer's outputs:
    #   s~ = w s + b, t~ = s~ + w t, r = 2 s~ V, g = (1 - r^2)^(-1/2),
    #   s' = (2/pi) asin r, t' = (4/pi) t~ V g; dg/dr = r g^3.
    vv = _outer(v1, v2)
    r_bar = g * ((2 / math.pi) * s_bar + t_bar * t * r * g)
    vv_bar = t_bar * t + r_bar * r  # cotangent of V, times V
    tt_bar = (4 / math.pi) * t_bar * vv * g
    s_bar = w_var * (2.0 * vv * r_bar + tt_bar)
    t_bar = w_var * tt_bar
    # Row and column sums as matrix-vector products (faster on XLA CPU).
    dv1 = (vv_bar @ jnp.ones(vv_bar.shape[1], vv_bar.dtype)) / v1
    dv2 = (jnp.ones(vv_bar.shape[0], vv_bar.dtype) @ vv_bar) / v2
    return s_bar, t_bar, dv1, dv2

  @jax.custom_vjp
  def pair_chain(s0, v1, v2):
    return forward(s0, v1, v2)[0]

  def fwd(s0, v1, v2):
    t, saved = forward(s0, v1, v2)
    return t, (saved, v1, v2)

  def bwd(res, t_bar):
    saved, v1, v2 = res  # (depth, 3, n1, n2): r, g, t per layer
    s_bar = jnp.zeros_like(t_bar)
    dv1, dv2 = [], []
    for layer in reversed(range(depth)):
      r, g, t = saved[layer]
      s_bar, t_bar, d1, d2 = layer_vjp(s_bar, t_bar, r, g, t, v1[layer],
                                       v2[layer])
      dv1.append(d1)
      dv2.append(d2)
    return s_bar, jnp.stack(dv1[::-1]), jnp.stack(dv2[::-1])

  pair_chain.defvjp(fwd, bwd)
  return pair_chain


def fnn_ntk_fn(w_var: float = 1.76, b_var: float = 0.18, depth: int = 5
               ) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """The NTK of depth x [Dense -> Erf] ("ntk" parameterisation, no readout).

  Equal to neural-tangents' ``stax.serial(*[Dense(_, W_std, b_std), Erf()] *
  depth)`` kernel with ``get="ntk"``, with W_std^2 = w_var, b_std^2 = b_var.

  Args:
    w_var: weight variance of every Dense layer.
    b_var: bias variance of every Dense layer.
    depth: number of Dense -> Erf blocks (>= 1).

  Returns:
    ``kernel_fn(x1, x2) -> (n1, n2)`` for float arrays with a leading batch
    axis; the other axes are flattened. Differentiable in both arguments
    in reverse mode (``jax.grad``, ``jax.vjp``); it has a custom VJP, so
    forward mode (``jax.jvp``, ``jax.jacfwd``) is not available.

  Example:
    >>> kfn = fnn_ntk_fn()
    >>> kfn(jnp.ones((2, 28, 28, 1)), jnp.zeros((3, 28, 28, 1))).shape
    (2, 3)
  """
  pair_chain = _pair_chain_fn(w_var, b_var, depth)

  def kernel_fn(x1: jax.Array, x2: jax.Array) -> jax.Array:
    f1 = x1.reshape(x1.shape[0], -1)
    f2 = x2.reshape(x2.shape[0], -1)
    d = f1.shape[1]
    s0 = (f1 @ f2.T) / d
    v1 = _row_chain(jnp.sum(f1 * f1, axis=1) / d, w_var, b_var, depth)
    v2 = _row_chain(jnp.sum(f2 * f2, axis=1) / d, w_var, b_var, depth)
    return pair_chain(s0, v1, v2)

  return kernel_fn
