"""The closed-form GP predictor and its matrix-function gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from ntga import predict


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

  g = jax.grad(loss)(x)
  assert bool(jnp.all(jnp.isfinite(g)))
  assert float(jnp.abs(g).max()) > 0
