"""phi(K) Y without an eigendecomposition: a Chebyshev expansion of phi.

``ntga.predict`` needs alpha = phi(K) Y for the NTK GP mean, with
phi(l) = (1 - exp(-s l)) / l (or 1 / l at t = inf), K the block's regularised
(n, n) kernel and Y its (n, k) one-hot labels, k << n. This module applies
phi(K) to Y with a Chebyshev series of phi on an interval [lo, hi] holding
the spectrum of K (Hammond, Vandergheynst & Gribonval, "Wavelets on graphs
via spectral graph theory", 2011, Sec. 6; Trefethen, "Approximation Theory
and Approximation Practice", 2013, ch. 3 and 8):

  phi(K) Y ~= sum_{j < N} c_j T_j(A) Y,    A = (2 K - (hi + lo) I) / (hi - lo),

with the three-term recurrence T_{j+1}(A) Y = 2 A T_j(A) Y - T_{j-1}(A) Y, so
each term costs one (n, n) x (n, k) product: O(N n^2 k) instead of eigh's
O(n^3).

* Interval: hi is min(largest absolute row sum, Frobenius norm) of K, both
  upper bounds on its eigenvalues (Gershgorin; ||K||_2 <= ||K||_F). For finite
  t phi is smooth through 0 (it tends to s), so lo = -1e-4 hi leaves room
  for round-off below zero; at t = inf phi = 1/l has a pole at 0 and
  lo = reg / 2, the floor the eigh path also puts on the regularised
  eigenvalues. ||T_j(A) Y|| <= ||Y|| while the spectrum lies inside; if the
  last term is longer than that, an eigenvalue lies outside and the result
  is NaN.
* Coefficients: phi sampled at ``2 * max_degree`` Chebyshev points, then a
  DCT; the points near lo are placed to float32's relative accuracy (see
  :func:`coefficients`). At t = inf they are in closed form
  (:func:`inverse_coefficients`).
* Degree: N is one past
  the last coefficient that matters for the value (|c_j| > tol * phi(hi),
  phi's smallest value on the interval, as |T_j| <= 1) or for the
  derivative (j^2 |c_j| > tol |phi'(hi)| (hi - lo) / 2, as |T_j'| <= j^2),
  unless it is below float32's noise floor of half an ulp of phi's largest
  value. So every eigen-component of phi(K) Y, and the divided differences
  the gradient is made of, are within about ``tol`` relative of their exact
  values, or at float32's limit. N is found inside the computation (a
  ``while_loop``), so it adapts to each block's spectrum: about
  sqrt(s * hi * log(1 / tol)) terms for finite t (13 for MNIST's fnn kernel
  at t = 64, 95 for CIFAR-10's at t = 4,096, at any block size, because
  hi grows like n and s = t / (n k) shrinks like 1/n), sqrt(hi / reg) at
  t = inf. If more than ``max_degree`` terms would be needed the result is
  NaN, never a silently worse approximation.
* Gradient: a custom VJP that differentiates the recurrence by hand (no
  autodiff through a loop, no eigenvectors, nothing divides by eigenvalue
  gaps, so repeated eigenvalues are harmless). For the cotangent G of the
  result, the adjoints W_j of V_j = T_j(A) Y follow Clenshaw's backward
  recurrence (Clenshaw, "A note on the summation of Chebyshev series", 1955)
  W_j = c_j G + 2 A W_{j+1} - W_{j+2}, and

    dL/dA = W_1 V_0^T + 2 sum_{j=1}^{N-2} W_{j+1} V_j^T,

  a sum of rank-k outer products accumulated ``_GROUP`` terms at a time as
  one (n, GROUP k) x (GROUP k, n) matmul. The V_j are not stored: the
  recurrence runs backwards from the last two (V_{j-1} = 2 A V_j - V_{j+1}),
  in the same (n, n) x (n, 2k) product that advances W, so memory stays
  O(n^2 + n k) whatever N. dL/ds comes from the series of d phi / ds =
  exp(-s l) on the same V_j. At t = inf the gradient is the exact one of
  K^{-1} Y, -(K^{-1} G)(K^{-1} Y)^T, with K^{-1} applied by the same series
  (:func:`_bwd_inverse`). dL/dK is the gradient with respect to a general
  (n, n) matrix at the symmetric K, not symmetrised: its symmetric part is
  what ``ntga.predict.phi_matrix`` returns (Daleckii-Krein; Higham,
  "Functions of Matrices", 2008, ch. 3), a kernel K(x) = K(x)^T gets the
  same gradient in x from either, and the transposed pass that symmetrising
  takes cost more than the whole backward recurrence at n = 2,048.

Example:

  >>> alpha = phi_apply(k + reg * jnp.eye(n), y, t / (n * 10), reg, False,
  ...                   1e-5, 1024)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.scipy.fft import dct

# Terms of the gradient's outer-product sum gathered per matmul.
_GROUP = 16
# Below this many ulps of phi's largest value the float32 coefficients are
# round-off (measured against float64 ones: at most 0.15 ulp past the
# leading terms, for s * hi from 10 to 3,000 and 2,048 points), and so is
# what they would add to a float32 sum of terms that large.
_NOISE_ULPS = 0.5
# For finite t the interval reaches this fraction of hi below zero.
_BELOW_ZERO = 1e-4


def _phi(lam: jax.Array, s: jax.Array, inverse: bool) -> jax.Array:
  """(1 - exp(-s l)) / l, smooth through l = 0; 1 / l if ``inverse``."""
  if inverse:
    return 1.0 / lam
  x = lam * s
  small = jnp.abs(x) < 1e-4
  safe = jnp.where(small, 1.0, lam)
  return jnp.where(small, s * (1.0 - 0.5 * x), -jnp.expm1(-x) / safe)


def interval(k: jax.Array, reg: jax.Array, inverse: bool
             ) -> tuple[jax.Array, jax.Array]:
  """An interval [lo, hi] holding the eigenvalues of ``k`` (see module doc).

  Args:
    k: (n, n) regularised kernel, K + reg I.
    reg: the regulariser added to it (> 0).
    inverse: t = inf (the interval must stay above zero).

  Returns:
    (lo, hi), scalars without gradient.

  Example:
    >>> lo, hi = interval(k_reg, reg, inverse=False)
  """
  k = jax.lax.stop_gradient(k)
  row = jnp.max(jnp.sum(jnp.abs(k), axis=1))
  fro = jnp.sqrt(jnp.sum(k * k))
  hi = jnp.minimum(row, fro) * (1.0 + 1e-4)
  reg = jax.lax.stop_gradient(reg)
  lo = 0.5 * reg if inverse else -_BELOW_ZERO * hi
  return lo, jnp.maximum(hi, lo + reg)


def coefficients(fn, lo: jax.Array, hi: jax.Array, points: int) -> jax.Array:
  """Chebyshev coefficients c_j of ``fn`` on [lo, hi] from ``points`` nodes.

  Args:
    fn: elementwise function of the eigenvalue.
    lo, hi: the interval.
    points: number of Chebyshev points (first kind); the coefficients of
      degree < points are returned.

  Returns:
    (points,) coefficients such that fn(l) ~= sum_j c_j T_j(x(l)),
    x(l) = (2 l - hi - lo) / (hi - lo).

  Example:
    >>> c = coefficients(jnp.exp, -1.0, 1.0, 32)  # c[j] ~ 2 I_j(1), c[0] ~ I_0(1)
  """
  m = jnp.arange(points, dtype=jnp.float32)
  # Node m sits at x_m = cos(theta_m), theta_m = pi (m + 1/2) / points, i.e.
  # at lo + (hi - lo) cos^2(theta_m / 2). cos(theta_m / 2) is computed as the
  # sine of its complement, so nodes near lo (where phi varies fastest, on
  # the scale 1/s) keep float32's relative accuracy: sampling at
  # lo + (hi - lo) (1 + x_m) / 2 misplaced them by ~eps * hi and cost 4 ulps
  # of phi's largest value in the coefficients at s * hi = 800 (now 0.07).
  half = jnp.sin(math.pi * (2 * points - 2 * m - 1) / (4 * points))
  lam = lo + (hi - lo) * (half * half)
  c = dct(fn(lam), type=2) / points
  return c.at[0].multiply(0.5)


def inverse_coefficients(lo: jax.Array, hi: jax.Array, count: int
                         ) -> jax.Array:
  """Chebyshev coefficients of 1 / l on [lo, hi] (0 < lo < hi), in closed form.

  With l = a + b x (a, b the interval's centre and half-width) and
  r = (a - sqrt(a^2 - b^2)) / b, 1 / l = sum_j c_j T_j(x) with
  c_0 = 1 / sqrt(a^2 - b^2) and c_j = 2 (-r)^j / sqrt(a^2 - b^2). Sampling
  1 / l instead would bury the coefficients that matter under float32
  round-off of its largest values, 1 / lo.

  Args:
    lo, hi: the interval.
    count: how many coefficients.

  Returns:
    (count,) coefficients.

  Example:
    >>> inverse_coefficients(1.0, 3.0, 4)  # 1 / (2 + x)
  """
  a, b = 0.5 * (hi + lo), 0.5 * (hi - lo)
  root = jnp.sqrt(lo * hi)  # sqrt(a^2 - b^2)
  r = b / (a + root)  # = (a - root) / b, without cancellation
  j = jnp.arange(count, dtype=jnp.float32)
  c = 2.0 * jnp.where(j % 2 == 0, 1.0, -1.0) * jnp.exp(j * jnp.log(r)) / root
  return c.at[0].multiply(0.5)


def degree(c: jax.Array, value: jax.Array, slope: jax.Array,
           floor: jax.Array) -> jax.Array:
  """Number of leading coefficients to keep.

  A coefficient c_j matters if |c_j| > value (its share of the series'
  value, |T_j| <= 1) or j^2 |c_j| > slope (its share of the derivative,
  |T_j'| <= j^2), unless it is below ``floor`` (round-off).

  Args:
    c: Chebyshev coefficients.
    value, slope, floor: the thresholds above.

  Returns:
    One past the last coefficient that matters, at least 2 (the
    recurrence's first step), as an int32 scalar.

  Example:
    >>> degree(jnp.asarray([1.0, 0.5, 1e-3, 1e-9]), 1e-6, 1e-6, 0.0)
    Array(3, dtype=int32)
  """
  j = jnp.arange(c.shape[0], dtype=c.dtype)
  bar = jnp.maximum(floor, jnp.minimum(value, slope / jnp.maximum(j, 1.0)**2))
  last = jnp.max(jnp.where(jnp.abs(c) > bar, jnp.arange(c.shape[0]), 0))
  return jnp.maximum(last + 1, 2).astype(jnp.int32)


def _dphi(lam: jax.Array, s: jax.Array) -> jax.Array:
  """d phi / d lambda for finite t."""
  x = lam * s
  small = jnp.abs(x) < 1e-4
  safe = jnp.where(small, 1.0, lam)
  big = (s * jnp.exp(-x) - _phi(lam, s, False)) / safe
  return jnp.where(small, -0.5 * s**2, big)


def _setup(k, s, reg, inverse, tol, max_degree):
  """Interval, affine map to [-1, 1], coefficients of phi and d phi / ds."""
  lo, hi = interval(k, reg, inverse)
  points = 2 * max_degree
  s = jax.lax.stop_gradient(s)
  phi = lambda lam: _phi(lam, s, inverse)
  if inverse:
    # The gradient does not differentiate the series (see _bwd_inverse), and
    # the closed-form coefficients carry no sampling noise.
    c = inverse_coefficients(lo, hi, points)
    d = jnp.zeros_like(c)
    n_terms = degree(c, tol * phi(hi), jnp.inf, 0.0)
  else:
    c = coefficients(phi, lo, hi, points)
    d = coefficients(lambda lam: jnp.exp(-s * lam), lo, hi, points)
    eps = jnp.finfo(c.dtype).eps
    # phi and |phi'| are smallest at hi; d/dx = (hi - lo) / 2 d/dl.
    slope = tol * jnp.abs(_dphi(hi, s)) * 0.5 * (hi - lo)
    n_terms = degree(c, tol * phi(hi), slope, _NOISE_ULPS * eps * phi(lo))
  scale = 2.0 / (hi - lo)
  shift = -(hi + lo) / (hi - lo)
  return c, d, n_terms, scale, shift


def terms(k: jax.Array, s: jax.Array, reg: jax.Array, inverse: bool,
          tol: float, max_degree: int) -> jax.Array:
  """The number of terms :func:`phi_apply` needs for ``k``.

  Args:
    k, s, reg, inverse, tol, max_degree: as for :func:`phi_apply`.

  Returns:
    An int32 scalar; where it exceeds ``max_degree``, :func:`phi_apply`
    returns NaN.

  Example:
    >>> terms(k_reg, s, reg, False, 1e-5, 1024)  # > 1024: phi_apply gives NaN
  """
  return _setup(k, s, reg, inverse, tol, max_degree)[2]


def _forward(k, y, c, n_terms, scale, shift):
  """sum_{j < n_terms} c_j T_j(A) y, and the last two T_j(A) y."""
  apply_a = lambda v: scale * (k @ v) + shift * v
  v1 = apply_a(y)
  f = c[0] * y + c[1] * v1

  def body(state):
    j, v_prev, v_cur, f = state
    v_next = 2.0 * apply_a(v_cur) - v_prev
    return j + 1, v_cur, v_next, f + c[j] * v_next

  _, v_prev, v_cur, f = jax.lax.while_loop(
      lambda state: state[0] < n_terms, body, (jnp.int32(2), y, v1, f))
  return f, v_prev, v_cur


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def phi_apply(k: jax.Array, y: jax.Array, s: jax.Array, reg: jax.Array,
              inverse: bool, tol: float, max_degree: int) -> jax.Array:
  """phi(K) Y by a Chebyshev series, phi(l) = (1 - e^{-s l}) / l or 1 / l.

  Args:
    k: (n, n) symmetric kernel with the regulariser already added
      (K + reg I); its eigenvalues must be >= reg / 2 up to round-off when
      ``inverse``.
    y: (n, k) right-hand sides.
    s: time scale t / (n k) (unused when ``inverse``).
    reg: the regulariser added to ``k`` (> 0); it sets the interval at
      t = inf and carries no gradient of its own (its effect is in ``k``).
    inverse: apply (K)^{-1} (t = inf) instead.
    tol: relative accuracy of phi on the spectrum (see the module doc).
    max_degree: the largest number of terms; beyond it the result is NaN.

  Returns:
    (n, k) approximation of phi(K) Y.

  Example:
    >>> alpha = phi_apply(k + reg * jnp.eye(n), y, t / (n * 10), reg, False,
    ...                   1e-5, 512)
  """
  return _fwd(k, y, s, reg, inverse, tol, max_degree)[0]


def _fwd(k, y, s, reg, inverse, tol, max_degree):
  c, d, needed, scale, shift = _setup(k, s, reg, inverse, tol, max_degree)
  n_terms = jnp.minimum(needed, max_degree)
  f, v_prev, v_last = _forward(k, y, c, n_terms, scale, shift)
  # |T_j(A) Y| <= |Y| while the spectrum lies in [lo, hi]; growth means an
  # eigenvalue outside it (round-off below reg / 2 at t = inf).
  inside = jnp.sum(v_last * v_last) <= 1.1 * jnp.sum(y * y) + 1e-30
  ok = (needed <= max_degree) & inside
  f = jnp.where(ok, f, jnp.nan)
  return f, (k, y, s, reg, c, d, n_terms, ok, scale, shift, v_prev, v_last, f)


def _bwd(inverse, tol, max_degree, res, g):
  del tol, max_degree
  if inverse:
    return _bwd_inverse(res, g)
  k, y, s, reg, c, d, n_terms, ok, scale, shift, v_prev, v_last, _ = res
  n, width = y.shape
  dot = lambda a, b: jnp.sum(a * b)

  def step(j, state):
    """Index j of the backward recurrences: W_j from W_{j+1}, W_{j+2}, and
    V_{j-1} from V_j, V_{j+1} (at j = 0, where V_1 = A V_0 has no factor 2,
    W_0 = dL/dY and the V_{-1} made is never used)."""
    w_near, w_far, v_j, v_next, ds = state
    both = k @ jnp.concatenate([w_near, v_j], axis=1)
    a_w = scale * both[:, :width] + shift * w_near
    a_v = scale * both[:, width:] + shift * v_j
    w_j = c[j] * g + jnp.where(j > 0, 2.0, 1.0) * a_w - w_far
    v_before = 2.0 * a_v - v_next
    return (w_j, w_near, v_before, v_j, ds + d[j] * dot(g, v_j))

  def group(state):
    """_GROUP steps (fewer at the end), their outer products as one matmul."""
    j0, dk, inner_state = state
    cols = jnp.zeros((2, _GROUP, n, width), g.dtype)

    def inner(carry):
      i, inner_state, cols = carry
      j = j0 - i
      # dL/dA gets fac_j W_{j+1} V_j^T: fac_j = 2, or 1 at j = 0.
      w_col = jnp.where(j > 0, 2.0, 1.0) * inner_state[0]
      cols = cols.at[:, i].set(jnp.stack([w_col, inner_state[2]]))
      return i + 1, step(j, inner_state), cols

    # The last group stops at j = 0; its unused columns stay zero.
    steps = jnp.minimum(_GROUP, j0 + 1)
    _, inner_state, cols = jax.lax.while_loop(
        lambda carry: carry[0] < steps, inner, (0, inner_state, cols))
    w_mat, v_mat = jnp.moveaxis(cols, 1, 2).reshape(2, n, _GROUP * width)
    return j0 - _GROUP, dk + w_mat @ v_mat.T, inner_state

  # Start at j = N - 2 with W_N = 0, W_{N-1} = c_{N-1} G, V_{N-2}, V_{N-1}.
  start = (c[n_terms - 1] * g, jnp.zeros_like(g), v_prev, v_last,
           d[n_terms - 1] * dot(g, v_last))
  init = (n_terms - 2, jnp.zeros((n, n), k.dtype), start)
  _, dk, (dy, _, _, _, ds) = jax.lax.while_loop(
      lambda state: state[0] >= 0, group, init)
  dk = jnp.where(ok, scale * dk, jnp.nan)
  return dk, dy, jnp.reshape(ds, jnp.shape(s)).astype(s.dtype), jnp.zeros_like(reg)


def _bwd_inverse(res, g):
  """t = inf: d(K^{-1} Y) = -K^{-1} dK K^{-1} Y, with the same series as K^{-1}.

  dL/dK = -Z_G Z^T with Z = p(K) Y (the forward result) and
  Z_G = p(K) G: one more application of the series and one rank-k product,
  accurate to the forward's tolerance (differentiating the polynomial of
  1 / l would cancel terms as large as the sum of its coefficients).
  """
  k, _, s, reg, c, _, n_terms, ok, scale, shift, _, _, z = res
  z_g = _forward(k, g, c, n_terms, scale, shift)[0]
  dk = -(z_g @ z.T)
  return (jnp.where(ok, dk, jnp.nan), z_g, jnp.zeros_like(s),
          jnp.zeros_like(reg))


phi_apply.defvjp(_fwd, _bwd)
