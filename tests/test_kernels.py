"""neural-tangents kernels (through ntga._compat) against independent references.

Dense erf / ReLU networks are checked against the closed-form NNGP/NTK
recursions (arc-cosine kernel for ReLU, Williams' arcsine kernel for erf); the
paper's CNN surrogate against a Monte-Carlo estimate from wide finite networks.
If a JAX release breaks neural-tangents in a new way, these fail loudly.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntga import _cnn_kernel, surrogates
from ntga._compat import stax


def _dense(nngp, ntk, w_var, b_var):
  nngp = w_var * nngp + b_var
  return nngp, ntk * w_var + nngp


def _relu(nngp, ntk):
  d = np.sqrt(np.outer(np.diag(nngp), np.diag(nngp)))
  cos = np.clip(nngp / d, -1.0, 1.0)
  theta = np.arccos(cos)
  new = d / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * cos)
  return new, ntk * (np.pi - theta) / (2 * np.pi)


def _erf(nngp, ntk):
  q = 1.0 + 2.0 * np.diag(nngp)
  dq = np.outer(q, q)
  new = 2.0 / np.pi * np.arcsin(2.0 * nngp / np.sqrt(dq))
  deriv = 4.0 / np.pi / np.sqrt(dq - 4.0 * nngp**2)
  return new, ntk * deriv


def _closed_form(x, depth, nonlin, w_var, b_var, readout=False):
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  nngp = x @ x.T / x.shape[1]
  ntk = np.zeros_like(nngp)
  for _ in range(depth):
    nngp, ntk = _dense(nngp, ntk, w_var, b_var)
    nngp, ntk = nonlin(nngp, ntk)
  if readout:
    nngp, ntk = _dense(nngp, ntk, w_var, b_var)
  return nngp, ntk


@pytest.fixture
def images(key):
  return jax.random.uniform(key, (7, 6, 6, 1))


def test_fnn_surrogate_matches_erf_recursion(images):
  nngp, ntk = _closed_form(images, 5, _erf, 1.76, 0.18)
  got = surrogates.get("fnn", 10)(images, images)
  np.testing.assert_allclose(got, ntk, rtol=2e-4, atol=1e-5)
  _, _, kfn = surrogates.fnn_layers()
  flat = images.reshape(7, -1)
  np.testing.assert_allclose(kfn(flat, flat, "nngp"), nngp, rtol=2e-4,
                             atol=1e-5)


def test_relu_dense_matches_arccos_recursion(images):
  w, b = 1.5, 0.1
  _, _, kfn = stax.serial(stax.Dense(64, w**0.5, b**0.5), stax.Relu(),
                          stax.Dense(64, w**0.5, b**0.5), stax.Relu(),
                          stax.Dense(3, w**0.5, b**0.5))
  flat = images.reshape(7, -1)
  nngp, ntk = _closed_form(images, 2, _relu, w, b, readout=True)
  k = kfn(flat, flat, ("nngp", "ntk"))
  np.testing.assert_allclose(k.nngp, nngp, rtol=2e-4, atol=1e-5)
  np.testing.assert_allclose(k.ntk, ntk, rtol=2e-4, atol=1e-5)


def test_cnn_surrogate_matches_monte_carlo(key):
  """The paper's CNN NTK vs. the mean empirical NTK of wide finite CNNs."""
  x = jax.random.uniform(jax.random.fold_in(key, 1), (3, 8, 8, 1))
  init_fn, apply_fn, kfn = surrogates.cnn_layers(num_classes=1, channels=192)
  exact = np.asarray(jax.jit(lambda a: kfn(a, a, "ntk"))(x))

  @jax.jit  # compiled once, reused for every sampled network
  def empirical_ntk(params):
    jac = jax.jacrev(lambda p: apply_fn(p, x)[:, 0])(params)
    leaves = [j.reshape(3, -1) for j in jax.tree.leaves(jac)]
    return sum(j @ j.T for j in leaves)

  samples = []
  for i in range(6):
    _, params = init_fn(jax.random.fold_in(key, 100 + i), x.shape)
    samples.append(np.asarray(empirical_ntk(params)))
  mc = np.mean(samples, axis=0)
  rel = np.abs(mc - exact) / np.abs(exact).max()
  assert rel.max() < 0.08, (mc, exact)


@pytest.mark.parametrize("name", ["cnn", "fnn"])
def test_kernels_are_differentiable_and_jittable(images, name):
  kfn = jax.jit(surrogates.get(name, 10))
  g = jax.grad(lambda a: kfn(a, images[:3]).sum())(images)
  assert g.shape == images.shape
  assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0


def test_compat_does_not_import_tensorflow():
  code = ("import sys, ntga._compat; "
          "print(any(m == 'tensorflow' or m.startswith('tensorflow.') "
          "for m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True)
  assert out.stdout.strip() == "False"


@pytest.mark.parametrize("shape", [(28, 28, 1), (9, 7, 3)])
def test_fast_cnn_kernel_matches_neural_tangents(key, shape):
  """ntga._cnn_kernel vs NT's own stax kernel."""
  k1, k2 = jax.random.split(key)
  x1 = jax.random.uniform(k1, (5,) + shape)
  x2 = jax.random.uniform(k2, (4,) + shape)
  _, _, nt_kfn = surrogates.cnn_layers(num_classes=10)
  nt = lambda u, v: nt_kfn(u, v, "ntk")
  from ntga._cnn_kernel import cnn_ntk_fn  # pylint: disable=g-import-not-at-top
  fast = jax.jit(cnn_ntk_fn(w_var=1.76, b_var=0.18))
  # Each case: the kernel's arguments given x1, and how NT's reference runs.
  # NT's kernel op by op is slow, so off the diagonal it is jitted; through
  # the diagonal it stays op by op, as there XLA's fusions change its float32
  # rounding, which arccos amplifies (~1e-5 in value, ~2.5e-4 in gradient).
  cases = [(lambda a: (a, x2), jax.jit), (lambda a: (a, a), lambda f: f)]
  for args, run in cases:
    # 5e-4: on the diagonal (correlation 1) arccos amplifies float32 rounding.
    np.testing.assert_allclose(fast(*args(x1)), run(nt)(*args(x1)), rtol=5e-4)
  # Gradients, including through the diagonal (correlation exactly 1).
  for args, run in cases:
    want = run(jax.grad(lambda a, args=args: nt(*args(a)).sum()))(x1)
    got = jax.grad(lambda a, args=args: fast(*args(a)).sum())(x1)
    assert bool(jnp.all(jnp.isfinite(got)))
    np.testing.assert_allclose(got, want, atol=1e-4 * float(jnp.abs(want).max()))


@pytest.mark.parametrize("tile", [(3, 4), (7, 2), (1, 10)])
def test_cnn_kernel_in_sub_tiles_equals_whole(key, tile):
  """cnn_ntk_fn(tile=...) cuts the pairs into sub-tiles (padded with copies,
  dropped afterwards): same values and gradients as the kernel in one piece,
  with a duplicate image straddling two sub-tiles and K(x, x) through it."""
  from ntga._cnn_kernel import cnn_ntk_fn  # pylint: disable=g-import-not-at-top
  k1, k2 = jax.random.split(key)
  x1 = jax.random.uniform(k1, (7, 10, 10, 3))
  x2 = jax.random.uniform(k2, (10, 10, 10, 3)).at[5].set(x1[1])
  whole = jax.jit(cnn_ntk_fn(w_var=1.76, b_var=0.18))
  cut = jax.jit(cnn_ntk_fn(w_var=1.76, b_var=0.18, tile=tile))
  for args in (lambda a: (x1, a), lambda a: (a, a)):
    np.testing.assert_allclose(cut(*args(x2)), whole(*args(x2)), rtol=1e-6)
    want = jax.grad(lambda a, args=args: whole(*args(a)).sum())(x2)
    got = jax.grad(lambda a, args=args: cut(*args(a)).sum())(x2)
    np.testing.assert_allclose(got, want, atol=1e-6 * float(jnp.abs(want).max()))


def test_window_average_rows_cover_each_window():
  """SAME 5x5 stride-2 windows on 14x14: 7x7 outputs, 25 taps inside."""
  from ntga._cnn_kernel import window_average  # pylint: disable=g-import-not-at-top
  m = window_average(14, 14, 5, 2)
  assert m.shape == (49, 196)
  taps = (m > 0).sum(1).reshape(7, 7)
  assert taps[3, 3] == 25 and taps[0, 0] == 16 and taps[6, 6] == 9
  np.testing.assert_allclose(m[m > 0], 1 / 25)


def test_cnn_kernel_self_pairs_do_not_depend_on_the_batch(key):
  """An image's correlation with itself is exactly 1, so its diagonal entry and
  gradient are the same whether the image is alone or in a batch. Computed,
  the correlation was 1 +- float32 rounding that depends on the batch, which
  arccos's infinite slope at 1 amplified to 2.5e-5 (value) and 3.5e-5
  (gradient) relative here, and 3.3e-4 in a slab-built K_nn's gradient on an
  AMD EPYC."""
  from ntga._cnn_kernel import cnn_ntk_fn  # pylint: disable=g-import-not-at-top
  kfn = jax.jit(cnn_ntk_fn(w_var=1.76, b_var=0.18))
  x = jax.random.uniform(key, (6, 12, 12, 1))
  whole = np.diag(np.asarray(kfn(x, x)))
  alone = np.array([float(kfn(x[i:i + 1], x[i:i + 1])[0, 0]) for i in range(6)])
  np.testing.assert_allclose(whole, alone, rtol=2e-6)
  g_whole = jax.grad(lambda a: jnp.trace(kfn(a, a)))(x)
  one = jax.jit(jax.grad(lambda a: kfn(a, a)[0, 0]))
  g_alone = np.concatenate([one(x[i:i + 1]) for i in range(6)])
  np.testing.assert_allclose(g_whole, g_alone,
                             atol=2e-6 * float(np.abs(g_alone).max()))


def test_image_keys_match_exactly_equal_images_only(key):
  from ntga._cnn_kernel import image_keys  # pylint: disable=g-import-not-at-top
  x = jax.random.uniform(key, (5, 4, 4, 3))
  keys = np.asarray(image_keys(x))
  # The same image gets the same key in any batch, -0.0 reads as 0.0.
  again = np.asarray(image_keys(jnp.concatenate([x[3:], x[:3]])))
  np.testing.assert_array_equal(again, np.roll(keys, -3, axis=0))
  zeros = np.asarray(image_keys(jnp.stack([jnp.zeros((4, 4, 3)),
                                           -jnp.zeros((4, 4, 3))])))
  np.testing.assert_array_equal(zeros[0], zeros[1])
  # One ulp in one pixel, or two pixels swapped, changes both 32-bit keys.
  nudged = x.at[2, 1, 1, 0].set(jnp.nextafter(x[2, 1, 1, 0], 2.0))
  swapped = x.at[2, 0, 0, 0].set(x[2, 0, 0, 1]).at[2, 0, 0, 1].set(x[2, 0, 0, 0])
  for other in (nudged, swapped):
    assert (np.asarray(image_keys(other))[2] != keys[2]).all()
  assert len({tuple(k) for k in keys}) == 5


def _nt_fnn_kernel():
  _, _, nt_kfn = surrogates.fnn_layers()
  return lambda a, b: nt_kfn(a.reshape(len(a), -1), b.reshape(len(b), -1),
                             "ntk")


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_fast_fnn_kernel_matches_neural_tangents(key, shape):
  """ntga._fnn_kernel vs NT's stax kernel: values and both arguments'
  gradients. The batches share an image and each holds a zero image, so
  identical-image pairs (correlation 2q / (1 + 2q)) are covered."""
  k1, k2, k3 = jax.random.split(key, 3)
  x1 = jax.random.uniform(k1, (5,) + shape).at[4].set(0.0)
  x2 = jax.random.uniform(k2, (4,) + shape).at[0].set(x1[3]).at[1].set(0.0)
  w = jax.random.normal(k3, (5, 4))

  def value_and_grads(kfn):
    def loss(u, v):
      k = kfn(u, v)
      return jnp.sum(k * w), k

    return jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(x1, x2)

  (_, want), want_g = value_and_grads(_nt_fnn_kernel())
  (_, got), got_g = value_and_grads(surrogates.get("fnn", 10))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  for g, h in zip(got_g, want_g):
    assert bool(jnp.all(jnp.isfinite(g)))
    np.testing.assert_allclose(g, h, atol=1e-4 * float(jnp.abs(h).max()))


def test_fast_fnn_asin_is_accurate_to_float32():
  from ntga._fnn_kernel import _asin  # pylint: disable=g-import-not-at-top
  x = np.concatenate([np.linspace(-1, 1, 200001),
                      np.geomspace(1e-6, 1, 2001)]).astype(np.float32)
  want = np.arcsin(x.astype(np.float64))
  got = np.asarray(jax.jit(_asin)(x), np.float64)
  ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
  assert np.max(np.abs(got - want) / ulp) < 4


def test_fast_fnn_kernel_self_pairs_and_slabs(key):
  """Self pairs stay finite (even for images of huge norm), and K(x, x) built
  in slabs under lax.map + checkpoint (as NTGA does) equals it built whole,
  value and gradient."""
  from ntga import pgd  # pylint: disable=g-import-not-at-top
  kfn = surrogates.get("fnn", 10)
  x = jax.random.uniform(key, (10, 6, 6, 2)).at[4].set(0.0)
  trace_and_k = lambda a: (jnp.trace(kfn(a, a)), kfn(a, a))
  (_, k_big), g_big = jax.jit(jax.value_and_grad(trace_and_k, has_aux=True))(
      x * 1e4)
  assert bool(jnp.all(jnp.isfinite(k_big)))
  assert bool(jnp.all(jnp.isfinite(g_big)))
  w = jax.random.normal(jax.random.fold_in(key, 1), (10, 10))

  def value_and_grad(k_of_x):
    def loss(a):
      k = k_of_x(a)
      return jnp.sum(k * w), k

    return jax.jit(jax.value_and_grad(loss, has_aux=True))(x)

  (_, whole), g_whole = value_and_grad(lambda a: kfn(a, a))
  (_, slabs), g_slabs = value_and_grad(
      lambda a: pgd.block_kernel(kfn, a, chunk=3))
  np.testing.assert_allclose(slabs, whole, rtol=2e-6)
  np.testing.assert_allclose(g_slabs, g_whole,
                             atol=2e-6 * float(jnp.abs(g_whole).max()))


@pytest.mark.parametrize("shape,k,s", [((3, 28, 28, 1), 5, 2),
                                       ((2, 32, 32, 3), 5, 2),
                                       ((2, 7, 9, 2), 3, 1),
                                       ((2, 9, 9, 1), 2, 3)])
def test_cnn_patches_equal_xla_conv_patches(shape, k, s):
  """The sliced patches are XLA's conv patches, in the same feature order."""
  x = jax.random.uniform(jax.random.key(0), shape)
  ref = jax.lax.conv_general_dilated_patches(
      x, (k, k), (s, s), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  n, h, w, d = ref.shape
  ref = jnp.moveaxis(ref.reshape(n, h * w, d), 1, 0)
  np.testing.assert_array_equal(_cnn_kernel._patches(x, k, s), ref)
