"""NTGA: bounds, block layout, held-out target set, effect, resume, sharding."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntga import pgd, data, predict, surrogates
from ntga.errors import ConfigError, OutputError
from ntga.protocol import RunContext

SMALL = pgd.NTGAConfig(block_size=64, target_size=120, target_chunk=40,
                       steps=4)
TEN = RunContext(num_classes=10)


@pytest.fixture(scope="module")
def digits():
  return data.load("digits", "train", limit=200), data.load("digits", "test")


@pytest.fixture(scope="module")
def poisoned(digits):
  train, _ = digits
  return pgd.poison(jax.random.key(0), train.x, train.y, SMALL, TEN)


def _gp_accuracy(x_train, y_train, test):
  kfn = surrogates.get("fnn", 10)
  a = x_train.astype(np.float32) / 255
  b = test.x.astype(np.float32) / 255
  alpha = predict.gp_weights(kfn(a, a), jax.nn.one_hot(y_train, 10), 64.0)
  return float(np.mean(np.argmax(kfn(b, a) @ alpha, -1) == test.y))


def test_output_is_bounded_uint8_in_input_order(digits, poisoned):
  train, _ = digits
  assert poisoned.dtype == np.uint8 and poisoned.shape == train.x.shape
  delta = np.abs(poisoned.astype(int) - train.x.astype(int))
  assert delta.max() <= int(0.3 * 255)  # digits is greyscale: eps 0.3
  # Every example is poisoned (no dropped remainder block).
  assert (delta.reshape(len(delta), -1).max(1) > 0).all()


def test_attack_defeats_the_gp_on_clean_test_data(digits, poisoned):
  train, test = digits
  clean = _gp_accuracy(train.x, train.y, test)
  after = _gp_accuracy(poisoned, train.y, test)
  assert clean > 0.8
  assert after < clean - 0.4, (clean, after)


def test_same_key_same_output_other_key_differs(digits, poisoned):
  train, _ = digits
  again = pgd.poison(jax.random.key(0), train.x, train.y, SMALL, TEN)
  np.testing.assert_array_equal(again, poisoned)
  other = pgd.poison(jax.random.key(1), train.x, train.y, SMALL, TEN)
  assert (other != poisoned).any()


@pytest.mark.parametrize("counts, block_size, n_blocks", [
    ([50, 40, 30, 13], 32, 5),     # block count coprime with class count
    ([100] * 10, 50, 20),          # 20 blocks, 10 classes: must not alias
    ([60, 61, 59, 300], 16, 30),   # unbalanced classes
])
def test_blocks_cover_everything_once_and_are_stratified(key, counts, block_size,
                                                         n_blocks):
  y = np.repeat(np.arange(len(counts)), counts)
  y = y[np.random.default_rng(0).permutation(len(y))]
  blocks = pgd.make_blocks(key, y, block_size)
  assert len(blocks) == n_blocks
  allidx = np.concatenate(blocks)
  np.testing.assert_array_equal(np.sort(allidx), np.arange(len(y)))
  sizes = [len(b) for b in blocks]
  assert max(sizes) - min(sizes) <= 1 and max(sizes) <= block_size
  for b in blocks:
    got = np.bincount(y[b], minlength=len(counts))
    np.testing.assert_array_less(np.abs(got - np.asarray(counts) / n_blocks),
                                 1.0 + 1e-9)


def test_target_set_is_training_data_and_excludes_the_block(key):
  y = np.arange(100) % 5
  target = pgd.make_target(key, y, 30)
  assert len(target) == 30 and len(set(target)) == 30
  np.testing.assert_array_equal(np.bincount(y[target]), [6] * 5)


def test_target_set_is_a_prefix_of_the_data_order(key):
  """One stratified order: NTGA's comes from ntga.data, seeded from the key."""
  y = np.arange(90) % 4
  seed = int(jax.random.randint(jax.random.fold_in(key, 0), (), 0, 2**31 - 1))
  np.testing.assert_array_equal(pgd.make_target(key, y, 25),
                                np.sort(data.stratified_order(y, seed)[:25]))


def test_l2_threat_model_and_random_start(digits, key):
  train, _ = digits
  x, y = train.x[:80], train.y[:80]
  cfg = dataclasses.replace(SMALL, norm="l2", eps=1.0, random_start=True,
                            loss="mse", steps=2)
  out = pgd.poison(key, x, y, cfg, TEN)
  norms = np.linalg.norm((out.astype(float) - x).reshape(80, -1) / 255, axis=1)
  assert norms.max() <= 1.0 + 1e-9 and norms.max() > 0.3


def test_quantize_respects_linf_after_rounding():
  rng = np.random.default_rng(0)
  clean = rng.integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
  adv = np.clip(clean / 255 + rng.uniform(-0.04, 0.04, clean.shape), 0, 1)
  out = pgd.quantize(clean, adv, 8 / 255, "linf")
  assert np.abs(out.astype(int) - clean).max() <= 8


def test_bad_config_is_rejected():
  with pytest.raises(ConfigError, match="eps"):
    pgd.NTGAConfig(eps=1.5)
  with pytest.raises(ConfigError, match="surrogate"):
    pgd.NTGAConfig(surrogate="rbf")
  with pytest.raises(ConfigError, match="l2"):
    pgd.NTGAConfig(norm="l2").resolved((8, 8, 1))


def test_paper_defaults_per_dataset():
  grey = pgd.NTGAConfig().resolved((28, 28, 1))
  assert (grey.eps, grey.t, grey.step_size) == (0.3, 64.0, 0.075)
  colour = pgd.NTGAConfig(surrogate="cnn").resolved((32, 32, 3))
  assert colour.eps == pytest.approx(8 / 255) and colour.t == 8.0
  assert pgd.NTGAConfig().resolved((32, 32, 3)).t == 512.0  # ntga_colour_sweep
  # Explicit values are kept; resolving twice changes nothing.
  mine = pgd.NTGAConfig(eps=0.1, t=16.0, step_size=0.01).resolved((8, 8, 3))
  assert (mine.eps, mine.t, mine.step_size) == (0.1, 16.0, 0.01)
  assert grey.resolved((28, 28, 1)) == grey


def test_resume_skips_finished_blocks(digits, poisoned, tmp_path):
  train, _ = digits
  ckpt = tmp_path / "ckpt"
  resumable = RunContext(num_classes=10, checkpoint_dir=ckpt)
  first = pgd.poison(jax.random.key(0), train.x, train.y, SMALL, resumable)
  np.testing.assert_array_equal(first, poisoned)
  files = sorted(ckpt.glob("block_*.npy"))
  assert len(files) == 4  # ceil(200 / 64)
  # Mark one saved block: a resumed run must take it from disk, not recompute.
  rows = np.load(files[0])
  rows[0, 0, 0, 0] ^= 1
  np.save(files[0], rows)
  files[1].unlink()  # and one block as if the run was killed before it
  again = pgd.poison(jax.random.key(0), train.x, train.y, SMALL, resumable)
  blocks = pgd.make_blocks(
      jax.random.fold_in(jax.random.key(0), pgd._STREAM_BLOCKS), train.y, 64)
  np.testing.assert_array_equal(again[blocks[0]], rows)
  np.testing.assert_array_equal(again[blocks[1]], poisoned[blocks[1]])
  with pytest.raises(OutputError, match="different run"):
    pgd.poison(jax.random.key(1), train.x, train.y, SMALL,
               RunContext(num_classes=10, checkpoint_dir=ckpt))


def test_sharded_equals_unsharded(digits):
  assert jax.device_count() == 4, "conftest simulates 4 CPU devices"
  train, _ = digits
  x, y = train.x[:120], train.y[:120]
  cfg = dataclasses.replace(SMALL, block_size=30, steps=2)
  mesh1 = jax.make_mesh((1,), ("data",), devices=jax.devices()[:1],
                        axis_types=(jax.sharding.AxisType.Auto,))
  one = pgd.poison(jax.random.key(3), x, y, cfg, TEN, mesh=mesh1)
  four = pgd.poison(jax.random.key(3), x, y, cfg, TEN)
  np.testing.assert_array_equal(one, four)


@pytest.mark.parametrize("n, chunk, columns",
                         [(7, 3, 512), (5, 9, 512), (7, 2, 3)])
def test_block_kernel_in_slabs_equals_whole(key, n, chunk, columns):
  """K_nn built in tiles of chunk rows by columns columns (padded) has the
  same values and gradient as the whole kernel."""
  from ntga._cnn_kernel import cnn_ntk_fn  # pylint: disable=g-import-not-at-top
  x = jax.random.uniform(key, (n, 8, 8, 1))
  kfn = cnn_ntk_fn(w_var=1.76, b_var=0.18)
  whole = lambda a: kfn(a, a)
  tiled = lambda a: pgd.block_kernel(kfn, a, chunk=chunk, columns=columns)
  # Diagonal entries sit at correlation 1, where arccos's infinite slope
  # turned float32 rounding (different in a slab) into ~1e-4 relative
  # differences (3.3e-4 in the gradient on an AMD EPYC); the kernel now sets
  # an image's correlation with itself to exactly 1 (seen since: 3e-7).
  np.testing.assert_allclose(tiled(x), whole(x), rtol=1e-4)
  w = jax.random.normal(jax.random.fold_in(key, 1), (n, n))
  g_whole = jax.grad(lambda a: (whole(a) * w).sum())(x)
  g_tiled = jax.grad(lambda a: (tiled(a) * w).sum())(x)
  np.testing.assert_allclose(g_tiled, g_whole, rtol=1e-4,
                             atol=1e-5 * float(np.abs(g_whole).max()))


def test_gp_loss_in_column_tiles_equals_whole(key):
  """The GP loss and its gradient do not depend on the column tile that
  bounds the kernels' memory (K_nn and K_mn in tiles of 4 block images)."""
  kfn = surrogates.get("cnn", 3)
  k1, k2, k3 = jax.random.split(key, 3)
  x = jax.random.uniform(k1, (10, 8, 8, 1))
  y = jax.nn.one_hot(jnp.arange(10) % 3, 3)
  mask = jnp.ones(10).at[-1].set(0.0)
  tx = jax.random.uniform(k2, (2, 3, 8, 8, 1))
  ty = jax.nn.one_hot(jax.random.randint(k3, (2, 3), 0, 3), 3)
  tw = jnp.ones((2, 3))
  loss = lambda a, columns: pgd._gp_loss(  # pylint: disable=protected-access
      a, y, mask, tx, ty, tw, kernel_fn=kfn, t=64.0, diag_reg=1e-4,
      loss="ce", predictor="eigh", columns=columns)
  whole, g_whole = jax.value_and_grad(loss)(x, 512)
  tiled, g_tiled = jax.value_and_grad(loss)(x, 4)
  np.testing.assert_allclose(tiled, whole, rtol=1e-5)
  np.testing.assert_allclose(g_tiled, g_whole, rtol=1e-3,
                             atol=1e-4 * float(np.abs(g_whole).max()))


def test_cnn_block_kernel_is_the_same_under_vmap(key):
  """NTGA builds K_nn in slabs inside jit(vmap(...)); there the cnn kernel
  once came out as ~1e36 garbage (an XLA CPU miscompile of its pixel mean,
  see ntga._cnn_kernel._pixel_mean). 120 images in slabs of 40 triggered it."""
  kfn = surrogates.get("cnn", 10)
  x = jax.random.uniform(key, (120, 28, 28, 1))
  tiled = lambda a: pgd.block_kernel(kfn, a, chunk=40)
  batched = jax.jit(jax.vmap(tiled))(x[None])[0]
  np.testing.assert_allclose(batched, jax.jit(tiled)(x), rtol=5e-4)


def test_non_finite_gradient_raises_instead_of_writing(digits, monkeypatch):
  """A NaN in the surrogate's gradient is an error, never a poisoned image."""
  real = surrogates.get

  def nan_kernel(name, num_classes):
    kfn = real(name, num_classes)
    return lambda a, b: kfn(a, b) * jnp.sqrt(jnp.sum(a) * 0.0 - 1.0)

  monkeypatch.setattr(surrogates, "get", nan_kernel)
  cfg = pgd.NTGAConfig(surrogate="fnn", block_size=50, target_size=40, steps=1)
  train, _ = digits
  with pytest.raises(FloatingPointError, match="non-finite"):
    pgd.poison(jax.random.key(0), train.x[:100], train.y[:100], cfg, TEN)


def test_predictor_setting(digits):
  """predictor=chebyshev poisons like the eigh oracle; bad names are rejected."""
  with pytest.raises(ConfigError, match="predictor must be one of"):
    pgd.NTGAConfig(predictor="lanczos")
  train, _ = digits
  x, y = train.x[:80], train.y[:80]
  cfg = dataclasses.replace(SMALL, block_size=40, target_size=40, steps=2)
  exact = pgd.poison(jax.random.key(2), x, y, dataclasses.replace(
      cfg, predictor="eigh"), TEN)
  series = pgd.poison(jax.random.key(2), x, y, dataclasses.replace(
      cfg, predictor="chebyshev"), TEN)
  # Signed steps: only pixels whose gradient is ~0 may move differently.
  assert np.mean(exact == series) > 0.99
  assert (series != x).mean() > 0.3


def test_defense_aware_ntga_keeps_the_bound_and_differs_from_plain():
  """Defense-aware NTGA (issue 15) stays within eps after rounding to uint8."""
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (48, 8, 8, 3), dtype=np.uint8)
  y = np.repeat(np.arange(3), 16)
  base = dict(surrogate="fnn", eps=8 / 255, t=64.0, block_size=24,
              target_size=24, steps=3)
  plain = pgd.poison(jax.random.key(0), x, y, pgd.NTGAConfig(**base))
  aware = pgd.poison(jax.random.key(0), x, y,
                     pgd.NTGAConfig(**base, defense_aware="grayscale,jpeg,augment"))
  assert aware.dtype == np.uint8 and aware.shape == x.shape
  assert np.abs(aware.astype(int) - x.astype(int)).max() <= 8
  assert (aware != x).mean() > 0.5 and (aware != plain).mean() > 0.1
  with pytest.raises(ConfigError, match="unknown"):
    pgd.NTGAConfig(defense_aware="blur")


def test_jpeg_block_steps_are_constant_on_the_codecs_blocks():
  """jpeg_step="block" moves whole 8x8 blocks of a channel by one sign."""
  rng = np.random.default_rng(1)
  x = rng.integers(40, 216, (24, 16, 16, 3), dtype=np.uint8)  # no clipping at [0, 1]
  y = np.repeat(np.arange(3), 8)
  cfg = pgd.NTGAConfig(surrogate="fnn", eps=8 / 255, t=64.0, block_size=24,
                       target_size=24, steps=4, defense_aware="jpeg",
                       jpeg_step="block")
  out = pgd.poison(jax.random.key(0), x, y, cfg)
  delta = out.astype(int) - x.astype(int)
  assert np.abs(delta).max() <= 8 and (delta != 0).mean() > 0.5
  blocks = delta.reshape(24, 2, 8, 2, 8, 3)
  assert np.all(blocks.max(axis=(2, 4)) == blocks.min(axis=(2, 4)))


@pytest.mark.parametrize("kwargs,match", [
    ({"jpeg_step": "block"}, "only with jpeg"),
    ({"jpeg_rounding": "cubic"}, "only with jpeg"),
    ({"defense_aware": "jpeg", "jpeg_step": "dct"}, "pixel, band, block"),
    ({"defense_aware": "jpeg", "jpeg_rounding": "floor"}, "ste, cubic"),
])
def test_jpeg_settings_need_jpeg_awareness(kwargs, match):
  with pytest.raises(ConfigError, match=match):
    pgd.NTGAConfig(**kwargs)


def test_repeated_poison_reuses_the_compiled_program(digits):
  """A second poison call with the same settings compiles nothing new."""
  train, _ = digits
  x, y = train.x[:80], train.y[:80]
  cfg = dataclasses.replace(SMALL, block_size=40, target_size=40, steps=1)
  first = pgd.poison(jax.random.key(0), x, y, cfg, TEN)
  hits = pgd._block_runner.cache_info().hits
  second = pgd.poison(jax.random.key(0), x, y, cfg, TEN)
  assert pgd._block_runner.cache_info().hits == hits + 1
  np.testing.assert_array_equal(first, second)
