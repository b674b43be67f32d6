"""Closed-form NTK Gaussian-process mean predictor with a stable gradient.

An infinitely wide network trained by gradient flow on the MSE loss from
f_0 = 0 predicts, on target inputs X_m at time t (Lee et al., "Wide Neural
Networks of Any Depth Evolve as Linear Models Under Gradient Descent", 2019):

    f_t(X_m) = K_mn K_nn^{-1} (I - exp(-t K_nn / (n * k))) Y_n

where K is the NTK, n the number of training examples and k the number of
classes. The ``n * k`` normalisation is neural-tangents' time convention
(``nt.predict.gradient_descent_mse`` with learning rate 1 on the loss
``0.5 * ||f - y||^2 / (n * k)``), so ``t`` here equals the paper's t. As in NT,
``diag_reg`` is relative: K_nn + diag_reg * trace(K_nn) / n * I.

We own this predictor instead of calling ``nt.predict`` because NTGA
differentiates through it. The matrix function
phi(K) = K^{-1} (I - exp(-s K)) is evaluated from one ``eigh`` of K_nn, and its
vector-Jacobian product uses the Daleckii-Krein formula, whose divided
differences fall back to the derivative where eigenvalues (nearly) coincide.
Plain autodiff through ``eigh`` divides by eigenvalue gaps and returns NaN in
float32 for repeated eigenvalues (the reference code forced float64 instead).

``eigh`` costs O(n^3) (0.9 s at n = 2,048 and 6.7 s at 4,096 on a 2-core
CPU). For large blocks ``predictor="chebyshev"`` applies phi(K_nn) to the k
label columns with a Chebyshev series instead (``ntga._chebyshev``):
O(N n^2 k) for N terms, N adapted to the spectrum and the requested accuracy,
with a hand-written gradient of the recurrence. ``predictor="auto"`` (the
default) takes eigh below :data:`CHEBYSHEV_FROM` training examples or at
t = inf, the series otherwise; :func:`resolve_predictor` says which.

Example:

  >>> k_nn = kernel_fn(x_train, x_train); k_mn = kernel_fn(x_test, x_train)
  >>> logits = gp_mean(k_mn, k_nn, jax.nn.one_hot(y_train, 10), t=64.0)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from ntga import _chebyshev
from ntga.errors import ConfigError

#: Names of the ways to apply phi(K_nn) (see :func:`resolve_predictor`).
PREDICTORS = ("auto", "eigh", "chebyshev")
#: ``auto`` takes the Chebyshev series from this block size on (finite t).
#: Measured on the 2-core CPU (value and gradient of phi(K_nn) Y for fnn
#: kernels, both methods timed in turn in one process): at t = 64 (MNIST, 13
#: terms) the series is as fast as eigh at 64 examples and faster from 128
#: (0.9 vs 2.1 ms; 6 vs 190 ms at 512); at t = 4,096 (CIFAR-10, 95 terms)
#: eigh is faster at 64, they are level at 128-256 and the series wins from
#: 512 (42 vs 580 ms). ``ntga_predictor_sweep`` measures whole PGD steps.
CHEBYSHEV_FROM = 256
#: Relative accuracy of phi on the spectrum that the series keeps.
CHEBYSHEV_TOL = 1e-5
#: The series' largest number of terms; a block that needs more gets NaN
#: (``ntga.pgd.poison`` then stops with an error naming the predictor).
CHEBYSHEV_MAX_DEGREE = 1024

# Eigenvalue pairs closer than this (relative to their size) use the derivative
# instead of the divided difference: in float32 the difference quotient loses
# about eps_32 * |lambda| / gap of its accuracy.
_CLOSE_RTOL = 1e-3
# ... and so do pairs closer than this many float eps of the largest eigenvalue.
_CLOSE_ATOL_EPS = 64.0


def _phi(lam: jax.Array, s: jax.Array, inverse: bool) -> jax.Array:
  """phi(lambda) = (1 - exp(-s lambda)) / lambda, or 1/lambda if inverse."""
  if inverse:
    return 1.0 / lam
  x = lam * s
  small = x < 1e-4
  safe = jnp.where(small, 1.0, lam)
  return jnp.where(small, s * (1.0 - 0.5 * x), -jnp.expm1(-x) / safe)


def _dphi(lam: jax.Array, s: jax.Array, inverse: bool) -> jax.Array:
  """Derivative of :func:`_phi` with respect to lambda."""
  if inverse:
    return -1.0 / lam**2
  x = lam * s
  small = x < 1e-4
  safe = jnp.where(small, 1.0, lam)
  big = (s * jnp.exp(-x) - _phi(lam, s, False)) / safe
  return jnp.where(small, -0.5 * s**2 + s**3 * lam / 3.0, big)


def _shift(lam: jax.Array, reg: jax.Array) -> jax.Array:
  """Eigenvalues of K + reg I, floored at reg / 2 against round-off."""
  return jnp.maximum(lam + reg, 0.5 * reg)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def phi_matrix(k: jax.Array, s: jax.Array, reg: jax.Array,
               inverse: bool = False) -> jax.Array:
  """Returns phi(K + reg I) for symmetric PSD ``k``, phi(l) = (1-e^{-s l})/l.

  The regulariser is added to the eigenvalues of ``k``; eigenvalues that
  round-off pushed so far below zero that the sum drops under ``reg / 2`` are
  floored there (with zero slope), so phi never sees a non-positive value.

  Args:
    k: (n, n) symmetric positive semi-definite matrix.
    s: time scale ``t / (n * k)`` (ignored when ``inverse``).
    reg: absolute diagonal regulariser (> 0).
    inverse: if True compute (K + reg I)^{-1}, the t = inf limit.

  Returns:
    The (n, n) symmetric matrix phi(K + reg I).

  Example:
    >>> phi = phi_matrix(k_nn, 64.0 / (n * 10), 1e-4 * jnp.trace(k_nn) / n)
  """
  return _phi_fwd(k, s, reg, inverse)[0]


def _phi_fwd(k, s, reg, inverse):
  lam, u = jnp.linalg.eigh(k)
  lam_used = _shift(lam, reg)
  out = (u * _phi(lam_used, s, inverse)[None, :]) @ u.T
  return out, (lam, u, s, reg)


def _phi_bwd(inverse, res, g):
  lam, u, s, reg = res
  lam_used = _shift(lam, reg)
  f = _phi(lam_used, s, inverse)
  deriv = _dphi(lam_used, s, inverse)
  # Divided differences f[l_i, l_j], with the derivative on (near-)ties.
  li, lj = lam_used[:, None], lam_used[None, :]
  gap = li - lj
  # Gaps below float precision of eigh (~eps * max|lambda|) carry no
  # information: treat them as ties too.
  atol = _CLOSE_ATOL_EPS * jnp.finfo(lam.dtype).eps * jnp.max(jnp.abs(lam_used))
  close = jnp.abs(gap) <= jnp.maximum(
      _CLOSE_RTOL * jnp.maximum(jnp.abs(li), jnp.abs(lj)), atol)
  dmid = _dphi(0.5 * (li + lj), s, inverse)
  quotient = (f[:, None] - f[None, :]) / jnp.where(close, 1.0, gap)
  divdiff = jnp.where(close, dmid, quotient)
  divdiff = divdiff.at[jnp.diag_indices_from(divdiff)].set(deriv)
  # The floor has zero slope.
  active = (lam + reg > 0.5 * reg).astype(divdiff.dtype)
  divdiff = divdiff * jnp.maximum(active[:, None], active[None, :])
  g_rot = u.T @ (0.5 * (g + g.T)) @ u
  dk = u @ (divdiff * g_rot) @ u.T
  g_diag = jnp.diagonal(g_rot)
  dreg = jnp.sum(deriv * g_diag)
  ds = (jnp.zeros_like(s) if inverse
        else jnp.sum(jnp.exp(-s * lam_used) * g_diag))
  return dk, ds, dreg


phi_matrix.defvjp(_phi_fwd, _phi_bwd)


def resolve_predictor(predictor: str, n: int, t: float) -> str:
  """The method ``predictor`` stands for at block size ``n`` and time ``t``.

  Args:
    predictor: one of :data:`PREDICTORS`.
    n: number of training examples (rows of K_nn).
    t: GP time; ``inf`` for kernel regression.

  Returns:
    ``"eigh"`` or ``"chebyshev"``: ``auto`` is eigh below
    :data:`CHEBYSHEV_FROM` examples or at t = inf (where the series needs
    about sqrt(cond(K_nn)) terms), the Chebyshev series otherwise.

  Raises:
    ConfigError: an unknown name.

  Example:
    >>> resolve_predictor("auto", 128, 64.0), resolve_predictor("auto", 8192, 64.0)
    ('eigh', 'chebyshev')
  """
  if predictor not in PREDICTORS:
    raise ConfigError(f"predictor must be one of {', '.join(PREDICTORS)}; "
                      f"got {predictor!r}")
  if predictor != "auto":
    return predictor
  return ("chebyshev" if n >= CHEBYSHEV_FROM and not math.isinf(t)
          else "eigh")


def gp_weights(k_nn: jax.Array, y_n: jax.Array, t: float,
               diag_reg: float = 1e-4, mask: jax.Array | None = None,
               predictor: str = "auto") -> jax.Array:
  """Returns alpha = phi_t(K_nn) Y_n so that f_t(X_m) = K_mn alpha.

  Args:
    k_nn: (n, n) train-train NTK.
    y_n: (n, k) regression targets (one-hot labels).
    t: training time in NT's convention; ``float('inf')`` for the end of
      training (kernel regression).
    diag_reg: relative diagonal regulariser.
    mask: optional (n,) array of 1 for real rows and 0 for padding rows.
      Padding rows are decoupled from the rest and get zero weight, so the
      result equals the unpadded computation on the real rows.
    predictor: ``"eigh"`` (exact, :func:`phi_matrix`), ``"chebyshev"``
      (``ntga._chebyshev.phi_apply`` to :data:`CHEBYSHEV_TOL`, NaN if that
      needs more than :data:`CHEBYSHEV_MAX_DEGREE` terms) or ``"auto"``
      (:func:`resolve_predictor`).

  Returns:
    (n, k) weights; rows of padding are zero.

  Raises:
    ConfigError: an unknown predictor.

  Example:
    >>> alpha = gp_weights(k_nn, jax.nn.one_hot(y, 10), t=64.0)
    >>> logits = k_mn @ alpha
  """
  method = resolve_predictor(predictor, k_nn.shape[0], t)
  k_real, reg, s, mask = _prepare(k_nn, y_n.shape[-1], t, diag_reg, mask)
  inverse = math.isinf(t)
  y_real = y_n * mask[:, None]
  if method == "chebyshev":
    k_reg = k_real + reg * jnp.eye(k_nn.shape[0], dtype=k_nn.dtype)
    return _chebyshev.phi_apply(k_reg, y_real, s, reg, inverse,
                                CHEBYSHEV_TOL, CHEBYSHEV_MAX_DEGREE)
  return phi_matrix(k_real, s, reg, inverse) @ y_real


def _prepare(k_nn, num_classes, t, diag_reg, mask):
  """Padding rows decoupled, the absolute regulariser and s = t / (n k)."""
  if mask is None:
    mask = jnp.ones(k_nn.shape[0], k_nn.dtype)
  mask = mask.astype(k_nn.dtype)
  n_real = jnp.sum(mask)
  pair = mask[:, None] * mask[None, :]
  mean_diag = jnp.sum(jnp.diagonal(k_nn) * mask) / n_real
  k_real = k_nn * pair + jnp.diag((1.0 - mask) * mean_diag)
  reg = diag_reg * mean_diag
  s = (jnp.asarray(0.0 if math.isinf(t) else t, k_nn.dtype)
       / (n_real * num_classes))
  return k_real, reg, s, mask


def chebyshev_terms(k_nn: jax.Array, num_classes: int, t: float,
                    diag_reg: float = 1e-4, mask: jax.Array | None = None
                    ) -> jax.Array:
  """How many terms ``predictor="chebyshev"`` takes for this kernel.

  Args:
    k_nn, t, diag_reg, mask: as for :func:`gp_weights`.
    num_classes: the label columns k (s = t / (n k)).

  Returns:
    An int32 scalar; above :data:`CHEBYSHEV_MAX_DEGREE` the series gives NaN.

  Example:
    >>> int(chebyshev_terms(k_nn, 10, 64.0))  # MNIST fnn blocks: 13
  """
  k_real, reg, s, _ = _prepare(k_nn, num_classes, t, diag_reg, mask)
  k_reg = k_real + reg * jnp.eye(k_nn.shape[0], dtype=k_nn.dtype)
  return _chebyshev.terms(k_reg, s, reg, math.isinf(t), CHEBYSHEV_TOL,
                          CHEBYSHEV_MAX_DEGREE)


def gp_mean(k_mn: jax.Array, k_nn: jax.Array, y_n: jax.Array, t: float,
            diag_reg: float = 1e-4, predictor: str = "auto") -> jax.Array:
  """NTK GP mean prediction f_t(X_m) on target inputs (from f_0 = 0).

  Args:
    k_mn: (m, n) target-train NTK.
    k_nn: (n, n) train-train NTK.
    y_n: (n, k) one-hot training targets.
    t: time (NT's convention); ``float('inf')`` for kernel regression.
    diag_reg: relative diagonal regulariser (paper: 1e-4).
    predictor: how phi(K_nn) is applied (see :func:`gp_weights`).

  Returns:
    (m, k) predicted outputs (used as logits by NTGA).

  Example:
    >>> logits = gp_mean(k_mn, k_nn, jax.nn.one_hot(y, 10), t=64.0)
  """
  return k_mn @ gp_weights(k_nn, y_n, t, diag_reg, predictor=predictor)
