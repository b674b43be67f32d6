"""The closed-form GP predictor and its matrix-function gradient."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from ntga import predict
from ntga.errors import ConfigError


def _psd(seed, n, rank=None):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(n, rank or n))
  return a @ a.T / (rank or n)


def _reference_mean(k_mn, k_nn, y, t, diag_reg):
  """float64 NT-convention formula with scipy's expm and solve."""
  n, k = y.shape
  reg = diag_reg * np.trace(k_nn) / n
  kr = k_nn + reg * np.eye(n)
  if np.isinf(t):
    return k_mn @ np.linalg.solve(kr, y)
  decay = np.eye(n) - scipy.linalg.expm(-t * kr / (n * k))
  return k_mn @ np.linalg.solve(kr, decay @ y)


@pytest.mark.parametrize("t", [1.0, 64.0, 4096.0, float("inf")])
def test_gp_mean_matches_reference(t):
  k_all = _psd(0, 14)
  k_nn, k_mn = k_all[:10, :10], k_all[10:, :10]
  y = np.eye(3)[np.arange(10) % 3]
  got = predict.gp_mean(jnp.asarray(k_mn, jnp.float32),
                        jnp.asarray(k_nn, jnp.float32),
                        jnp.asarray(y, jnp.float32), t, 1e-4)
  want = _reference_mean(k_mn, k_nn, y, t, 1e-4)
  np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3 * np.abs(want).max())


def test_padding_mask_gives_the_unpadded_result():
  k = _psd(1, 9)
  y = np.eye(2)[np.arange(9) % 2].astype(np.float32)
  want = predict.gp_weights(jnp.asarray(k[:7, :7], jnp.float32), y[:7], 64.0)
  junk = k.copy()
  junk[7:, :] = junk[:, 7:] = 5.0  # padding rows hold anything
  got = predict.gp_weights(jnp.asarray(junk, jnp.float32), y, 64.0,
                           mask=jnp.asarray([1.0] * 7 + [0.0] * 2))
  np.testing.assert_allclose(got[:7], want, rtol=1e-4, atol=1e-6)
  np.testing.assert_array_equal(got[7:], 0.0)


def _phi_np(k, s, reg):
  lam, u = np.linalg.eigh(k)
  lam = np.maximum(lam + reg, 0.5 * reg)
  return (u * (-np.expm1(-s * lam) / lam)) @ u.T


@pytest.mark.parametrize("kind", ["generic", "repeated", "low_rank"])
def test_phi_gradient_matches_finite_differences(kind):
  n, s, reg = 8, 0.7, 1e-3
  if kind == "generic":
    k = _psd(2, n)
  elif kind == "repeated":
    k = np.diag([2.0] * 4 + [0.5] * 4)  # two fourfold eigenvalues
  else:
    k = _psd(3, n, rank=2)  # six zero eigenvalues
  rng = np.random.default_rng(4)
  w = rng.normal(size=(n, n))
  e = rng.normal(size=(n, n))
  e = (e + e.T) / 2
  grad = jax.grad(lambda m: jnp.sum(
      predict.phi_matrix(m, jnp.float32(s), jnp.float32(reg)) * w))(
          jnp.asarray(k, jnp.float32))
  assert bool(jnp.all(jnp.isfinite(grad)))
  h = 1e-5
  fd = np.sum((_phi_np(k + h * e, s, reg) - _phi_np(k - h * e, s, reg)) * w) / (2 * h)
  np.testing.assert_allclose(np.sum(np.asarray(grad) * e), fd, rtol=2e-3)


def test_no_nan_gradient_through_kernel_with_duplicates(key):
  """Duplicate training images give coinciding eigenvalues: still finite."""
  from ntga import surrogates
  kfn = surrogates.get("fnn", 3)
  x = jax.random.uniform(key, (4, 5, 5, 1))
  x = jnp.concatenate([x, x, x[:1]])  # exact duplicates
  y = jax.nn.one_hot(jnp.arange(9) % 3, 3)
  tx = jax.random.uniform(jax.random.fold_in(key, 1), (6, 5, 5, 1))

  def loss(xb):
    logits = kfn(tx, xb) @ predict.gp_weights(kfn(xb, xb), y, 64.0)
    return jnp.mean(jax.nn.logsumexp(logits, -1))

  g = jax.jit(jax.grad(loss))(x)  # jitted: op by op the kernel is slow
  assert bool(jnp.all(jnp.isfinite(g)))
  assert float(jnp.abs(g).max()) > 0


# ---------------------------------------------------------------------------
# The eigh-free predictor (ntga._chebyshev) against the eigh oracle.


def _kernel(kind, n=24):
  if kind == "generic":
    return _psd(5, n)
  if kind == "repeated":  # two eigenvalues, each n/2 times
    return np.diag([2.0] * (n // 2) + [0.5] * (n // 2))
  return _psd(6, n, rank=3)  # n - 3 zero eigenvalues


@pytest.mark.parametrize("kind", ["generic", "repeated", "low_rank"])
@pytest.mark.parametrize("t", [64.0, 4096.0, float("inf")])
def test_chebyshev_matches_eigh_values_and_gradients(kind, t):
  """Weights within 1e-4 of the largest entry (at t = inf, within float32's
  reach for the conditioning) and dL/dK (symmetric part) within 1e-3."""
  k = jnp.asarray(_kernel(kind), jnp.float32)
  n = k.shape[0]
  y = jax.nn.one_hot(jnp.arange(n) % 3, 3)
  w = jax.random.normal(jax.random.key(0), (n, 3))
  # A regulariser large enough that 1/l at t = inf needs < 1024 terms.
  reg = 1e-2 if math.isinf(t) else 1e-4

  @functools.partial(jax.jit, static_argnums=1)
  def run(m, predictor):
    weights = lambda m: predict.gp_weights(m, y, t, reg, predictor=predictor)
    value, grad = jax.value_and_grad(lambda m: jnp.sum(weights(m) * w))(m)
    return weights(m), value, grad

  alpha, want, g_want = run(k, "eigh")
  beta, got, g_got = run(k, "chebyshev")
  # At t = inf the weights are (K + reg I)^-1 Y, which float32 gets to about
  # cond * eps for either predictor: ~1e-4 itself for the low-rank kernel
  # (cond ~ 1e3), so the tolerance follows the conditioning there.
  lam = np.linalg.eigvalsh(np.asarray(k, np.float64))
  cond = (lam.max() + reg) / (max(lam.min(), 0.0) + reg)
  eps = float(np.finfo(np.float32).eps)
  rel = max(1e-4, 4 * cond * eps) if math.isinf(t) else 1e-4
  np.testing.assert_allclose(beta, alpha, atol=rel * float(jnp.abs(alpha).max()))
  np.testing.assert_allclose(got, want, rtol=1e-3)
  assert bool(jnp.all(jnp.isfinite(g_got)))
  sym = 0.5 * (g_got + g_got.T)
  np.testing.assert_allclose(sym, g_want, atol=1e-3 * float(jnp.abs(g_want).max()))


def test_chebyshev_time_gradient_matches_eigh():
  """d/ds of phi(K) Y: the series of exp(-s l) on the same terms."""
  k = jnp.asarray(_psd(7, 16), jnp.float32)
  reg = jnp.float32(1e-3)
  y = jax.nn.one_hot(jnp.arange(16) % 2, 2)
  w = jax.random.normal(jax.random.key(1), (16, 2))
  from ntga import _chebyshev  # pylint: disable=g-import-not-at-top
  cheb = lambda s: jnp.sum(_chebyshev.phi_apply(
      k + reg * jnp.eye(16), y, s, reg, False, 1e-6, 256) * w)
  eigh = lambda s: jnp.sum((predict.phi_matrix(k, s, reg) @ y) * w)
  s = jnp.float32(0.9)
  np.testing.assert_allclose(jax.jit(jax.grad(cheb))(s),
                             jax.jit(jax.grad(eigh))(s), rtol=1e-4)


def test_chebyshev_padding_mask_and_vmap():
  """Masked padding rows give zero weight and the unpadded result; a vmapped
  batch of kernels (NTGA's jit(vmap) over blocks) equals one at a time."""
  k = _psd(8, 11)
  y = np.eye(2)[np.arange(11) % 2].astype(np.float32)
  weights = jax.jit(lambda m, yy, mask=None: predict.gp_weights(
      m, yy, 64.0, mask=mask, predictor="chebyshev"))
  want = weights(jnp.asarray(k[:9, :9], jnp.float32), y[:9])
  junk = k.copy()
  junk[9:, :] = junk[:, 9:] = 3.0
  mask = jnp.asarray([1.0] * 9 + [0.0] * 2)
  got = weights(jnp.asarray(junk, jnp.float32), y, mask)
  np.testing.assert_allclose(got[:9], want, rtol=1e-4, atol=1e-6)
  np.testing.assert_array_equal(got[9:], 0.0)
  # Two kernels whose spectra need different numbers of terms.
  ks = jnp.asarray(np.stack([k, 40.0 * k]), jnp.float32)
  loss = lambda m: jnp.sum(weights(m, y) ** 2)
  batched = jax.jit(jax.vmap(jax.value_and_grad(loss)))(ks)
  one = jax.jit(jax.value_and_grad(loss))
  for i in range(2):
    value, grad = one(ks[i])
    np.testing.assert_allclose(batched[0][i], value, rtol=1e-5)
    np.testing.assert_allclose(batched[1][i], grad, rtol=1e-4,
                               atol=1e-6 * float(jnp.abs(grad).max()))


def test_chebyshev_gives_nan_rather_than_too_few_terms():
  """A spectrum that needs more than max_degree terms is NaN, not wrong."""
  from ntga import _chebyshev  # pylint: disable=g-import-not-at-top
  k = jnp.asarray(_psd(9, 12), jnp.float32)
  reg = jnp.float32(1e-4)
  y = jnp.ones((12, 1))
  k_reg = k + reg * jnp.eye(12)
  apply = jax.jit(_chebyshev.phi_apply, static_argnums=(4, 5, 6))
  enough = apply(k_reg, y, jnp.float32(1.0), reg, False, 1e-5, 64)
  assert bool(jnp.all(jnp.isfinite(enough)))
  # t = inf on [reg / 2, |K|]: about sqrt(cond) = sqrt(2e4) x log(1 / tol).
  short = apply(k_reg, y, jnp.float32(0.0), reg, True, 1e-5, 64)
  assert bool(jnp.all(jnp.isnan(short)))
  g = jax.jit(jax.grad(lambda m: jnp.sum(apply(
      m, y, jnp.float32(0.0), reg, True, 1e-5, 64))))(k_reg)
  assert bool(jnp.all(jnp.isnan(g)))


def test_chebyshev_gradient_through_a_surrogate_kernel():
  """NTGA's loss gradient in pixels: cosine >= 0.9999 with the eigh path."""
  from ntga import data, surrogates  # pylint: disable=g-import-not-at-top
  ds = data.load("digits", "train", limit=160)
  x = jnp.asarray(ds.x.astype(np.float32) / 255)
  y = jax.nn.one_hot(ds.y, 10)
  kfn = surrogates.get("fnn", 10)
  xb, yb, xt, yt = x[:120], y[:120], x[120:], y[120:]

  def loss(a, predictor):
    alpha = predict.gp_weights(kfn(a, a), yb, 64.0, predictor=predictor)
    return -jnp.mean(jnp.sum(yt * jax.nn.log_softmax(kfn(xt, a) @ alpha), -1))

  g = {p: np.ravel(jax.jit(jax.grad(lambda a, p=p: loss(a, p)))(xb))
       for p in ("eigh", "chebyshev")}
  cos = g["eigh"] @ g["chebyshev"] / np.linalg.norm(g["eigh"]) / np.linalg.norm(
      g["chebyshev"])
  assert cos >= 0.9999, cos


def test_predictor_choice_and_validation():
  assert predict.resolve_predictor("auto", predict.CHEBYSHEV_FROM - 1, 64.0) == "eigh"
  assert predict.resolve_predictor("auto", predict.CHEBYSHEV_FROM, 64.0) == "chebyshev"
  assert predict.resolve_predictor("auto", 10**5, float("inf")) == "eigh"
  assert predict.resolve_predictor("chebyshev", 8, 64.0) == "chebyshev"
  assert predict.resolve_predictor("eigh", 10**5, 64.0) == "eigh"
  with pytest.raises(ConfigError, match="predictor must be one of"):
    predict.resolve_predictor("lanczos", 100, 64.0)
  with pytest.raises(ConfigError, match="predictor"):
    predict.gp_weights(jnp.eye(3), jnp.ones((3, 1)), 1.0, predictor="cg")
