"""Tests for the ``fast`` victim, its recipe and the matmul-gradient convolution."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ntga.data._types import Dataset
from ntga.victims import models
from ntga.victims import train as vt
from ntga.victims._models import _conv, _fast


def _images(n, shape, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n,) + shape).astype(np.uint8)


def _planted(n, shape, k=4, seed=0):
  """uint8 images whose class is a bright horizontal band: easy to learn.

  Bands survive the recipe's mirror augmentation and flip TTA.
  """
  rng = np.random.default_rng(seed)
  y = np.arange(n) % k
  x = rng.integers(0, 60, (n,) + shape)
  h = shape[0] // k
  for c in range(k):
    x[y == c, c * h:(c + 1) * h, :, :] += 180
  return Dataset(x.astype(np.uint8), y.astype(np.int64),
                 tuple(str(i) for i in range(k)))


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (8, 8, 1)])
def test_forward(shape):
  model = models.create("fast", num_classes=10, input_shape=shape, rngs=nnx.Rngs(0))
  models.fit_data(model, _images(64, shape))
  model.eval()
  x = jax.random.uniform(jax.random.key(1), (3,) + shape)
  out = np.asarray(nnx.jit(lambda m, z: m(z))(model, x))
  assert out.shape == (3, 10)
  assert np.all(np.isfinite(out))
  assert not np.allclose(out[0], out[1])


def test_whitening_filters_whiten_the_patches():
  """Projected on the filters, 2x2 patches have covariance ~ identity."""
  rng = np.random.default_rng(0)
  # Correlated channels and neighbouring pixels.
  base = rng.normal(size=(200, 9, 9, 1))
  x = np.concatenate([base, base + 0.1 * rng.normal(size=base.shape),
                      rng.normal(size=base.shape)], axis=-1)
  x = (x[:, 1:, 1:] + x[:, :-1, :-1]).astype(np.float32)
  filt = _fast.whitening_filters(x, kernel=2, eps=1e-8)
  assert filt.shape == (2, 2, 3, 24)
  np.testing.assert_allclose(filt[..., 12:], -filt[..., :12])
  out = jax.lax.conv_general_dilated(x, filt[..., :12], (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
  flat = np.asarray(out, np.float64).reshape(-1, 12)
  np.testing.assert_allclose(flat.T @ flat / len(flat), np.eye(12), atol=2e-3)


def test_fit_data_uses_every_image_whatever_their_order():
  """Class-sorted images (as the folder/tarball loaders return them) give the
  statistics of the whole set, not of the first images (the first class)."""
  rng = np.random.default_rng(0)
  # Two "classes" with different colours, stored one after the other: more
  # images than airbench's 5,000-image prefix and than one streamed chunk.
  x = np.concatenate([rng.integers(0, 128, (3000, 8, 8, 3)),
                      rng.integers(128, 256, (3000, 8, 8, 3))]).astype(np.uint8)
  shuffled = x[rng.permutation(len(x))]
  fits = []
  for images in (x, shuffled):
    model = models.create("fast", num_classes=10, input_shape=(8, 8, 3),
                          rngs=nnx.Rngs(0))
    models.fit_data(model, images)
    fits.append([np.asarray(v[...]) for v in (model.mean, model.std, model.whiten)])
  for a, b in zip(*fits):  # (float32 sums in another order)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
  flat = x.reshape(-1, 3) / 255.0
  np.testing.assert_allclose(fits[0][0], flat.mean(0), rtol=1e-5)
  np.testing.assert_allclose(fits[0][1], flat.std(0), rtol=1e-4)


def test_fit_data_uses_the_images_it_is_given():
  model = models.create("fast", num_classes=10, input_shape=(8, 8, 3),
                        rngs=nnx.Rngs(0))
  a, b = _images(32, (8, 8, 3), 0), _images(32, (8, 8, 3), 1) // 2
  models.fit_data(model, a)
  np.testing.assert_allclose(np.asarray(model.mean[...]),
                             a.reshape(-1, 3).mean(0) / 255, rtol=1e-5)
  whiten_a = np.asarray(model.whiten[...])
  models.fit_data(model, b)
  assert not np.allclose(np.asarray(model.whiten[...]), whiten_a)
  np.testing.assert_allclose(np.asarray(model.mean[...]),
                             b.reshape(-1, 3).mean(0) / 255, rtol=1e-5)


def test_other_models_fit_nothing():
  model = models.create("cnn", num_classes=10, input_shape=(8, 8, 1),
                        rngs=nnx.Rngs(0))
  before = jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat))
  models.fit_data(model, _images(8, (8, 8, 1)))
  after = jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat))
  assert before
  assert all(np.array_equal(u, v) for u, v in zip(before, after))


def test_two_step_smoke(key):
  data = _planted(16, (8, 8, 3))
  cfg = vt.TrainConfig(victim="fast", epochs=1, batch_size=8, eval_batch_size=8)
  m = vt.train_and_evaluate(key, data, data, cfg, progress=False)
  assert m["steps_per_epoch"] == 2
  assert np.isfinite(m["train_loss"][0])
  assert 0.0 <= m["final_test_accuracy"] <= 1.0
  assert len(m["train_time_s"]) == 1 and 0 < m["train_time_s"][0] <= m["epoch_time_s"][0]


def test_mixed_precision_computes_in_bfloat16_and_keeps_running_stats_float32(key):
  """bfloat16 convolutions; BatchNorm's running statistics updated in float32."""
  from ntga.victims import _step  # pylint: disable=g-import-not-at-top
  data = _planted(16, (8, 8, 3))
  cfg = vt.TrainConfig(victim="fast", epochs=1, batch_size=8,
                       mixed_precision=True).resolved()
  spec, (params, rest, _), _ = _step.initial_state(
      cfg, data.x, 4, 2, *jax.random.split(key))
  x = jnp.asarray(data.x[:8], jnp.float32) / 255.0
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # no float32 value written into bfloat16
    logits, new_rest = _step._forward(spec, spec.graph_train, params, rest, x)
  jaxpr = str(jax.make_jaxpr(
      lambda p, r, z: _step._forward(spec, spec.graph_train, p, r, z)[0])(
          params, rest, x))
  convs = [line for line in jaxpr.splitlines() if "conv_general_dilated[" in line
           or "dot_general[" in line]
  assert convs and all(":bf16[" in line.split("=")[0] for line in convs), convs
  assert logits.dtype == jnp.float32
  running = jax.tree.leaves(nnx.split_state(new_rest, nnx.BatchStat, ...)[0])
  assert running and all(a.dtype == jnp.float32 for a in running)
  # Updated in float32: not all values sit on the bfloat16 grid.
  flat = np.concatenate([np.ravel(a) for a in running])
  assert np.any(flat != flat.astype(jnp.bfloat16).astype(np.float32))
  assert all(not np.array_equal(a, b) for a, b in zip(
      running, jax.tree.leaves(nnx.split_state(rest, nnx.BatchStat, ...)[0])))


def test_statistics_come_from_the_training_data_only(key):
  """Changing the test set changes nothing before evaluation."""
  train = _planted(16, (8, 8, 3), seed=0)
  test_a = _planted(8, (8, 8, 3), seed=1)
  test_b = dataclasses.replace(test_a, x=255 - test_a.x)
  cfg = vt.TrainConfig(victim="fast", epochs=2, batch_size=8, eval_batch_size=8)
  a = vt.train_and_evaluate(key, train, test_a, cfg, progress=False)
  b = vt.train_and_evaluate(key, train, test_b, cfg, progress=False)
  assert a["train_loss"] == b["train_loss"]
  assert a["train_accuracy"] == b["train_accuracy"]
  assert a["test_loss"] != b["test_loss"]
  # ... while the training images do reach the model.
  other = dataclasses.replace(train, x=train.x // 2)
  c = vt.train_and_evaluate(key, other, test_a, cfg, progress=False)
  assert c["train_loss"] != a["train_loss"]


def test_fast_learns_planted_classes(key):
  data = _planted(256, (16, 16, 3))
  cfg = vt.TrainConfig(victim="fast", epochs=6, batch_size=32)
  m = vt.train_and_evaluate(key, data, data, cfg, progress=False)
  assert m["final_test_accuracy"] >= 0.9


def test_recipe():
  cfg = vt.TrainConfig(victim="fast").resolved()
  assert (cfg.optimizer, cfg.schedule, cfg.nesterov, cfg.momentum) == (
      "sgd", "triangle", True, 0.85)
  assert (cfg.label_smoothing, cfg.tta, cfg.crop_pad) == (0.2, "flip", 2)
  # lr: airbench's 10 per 1024 examples in its decoupled units, at batch 512.
  assert cfg.lr == pytest.approx(10 / (1 + 1 / 0.15) / 2)
  cnn = vt.TrainConfig(victim="cnn").resolved()
  assert (cnn.nesterov, cnn.label_smoothing, cnn.tta, cnn.momentum) == (
      False, 0.0, "none", 0.9)
  for bad in (dict(tta="crops"), dict(label_smoothing=1.0),
              dict(warmup_epochs=1)):
    with pytest.raises(vt.ConfigError):
      dataclasses.replace(vt.TrainConfig(victim="fast"), **bad).resolved()


def test_triangle_schedule():
  cfg = vt.TrainConfig(victim="fast", lr=1.0, weight_decay=0.0, momentum=0.0,
                       nesterov=False, epochs=10).resolved()
  tx = vt.make_optimizer(cfg, steps_per_epoch=1)
  params = {"w": np.zeros((), np.float32)}
  state = tx.init(params)
  lrs = []
  for _ in range(10):
    upd, state = tx.update({"w": np.ones((), np.float32)}, state, params)
    lrs.append(-float(upd["w"]))
  # 0.2 -> 1 over the first 2 steps, then down to 0 at step 10.
  np.testing.assert_allclose(lrs[:3], [0.2, 0.6, 1.0], rtol=1e-5)
  assert lrs[2] == max(lrs) and np.all(np.diff(lrs[2:]) < 0)


# -------------------------------------------------------------- the convolution

_DIMS = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("kernel,padding", [
    (3, "SAME"), (5, "SAME"), (2, "VALID"), (2, "SAME"), (1, "SAME"),
    (3, ((1, 1), (1, 1))), (3, ((0, 2), (2, 0)))])
def test_conv_equals_xla(kernel, padding):
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (2, 9, 7, 5))
  w = jax.random.normal(keys[1], (kernel, kernel, 5, 6))

  def loss(f, a, b):
    return jnp.sum(jnp.sin(f(a, b, (1, 1), padding, dimension_numbers=_DIMS)))

  ref = jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=_DIMS)
  out = _conv.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=_DIMS)
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
  g_ref = jax.grad(lambda a, b: loss(jax.lax.conv_general_dilated, a, b), (0, 1))(x, w)
  g = jax.jit(jax.grad(lambda a, b: loss(_conv.conv_general_dilated, a, b),
                       (0, 1)))(x, w)
  for a, b in zip(g, g_ref):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_conv_passes_other_cases_through():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
  w = jax.random.normal(jax.random.key(1), (3, 3, 4, 4))
  for kw in (dict(window_strides=(2, 2)), dict(feature_group_count=2)):
    wk = w[:, :, :2] if "feature_group_count" in kw else w
    strides = kw.pop("window_strides", (1, 1))
    ref = jax.lax.conv_general_dilated(x, wk, strides, "SAME",
                                       dimension_numbers=_DIMS, **kw)
    out = _conv.conv_general_dilated(x, wk, strides, "SAME",
                                     dimension_numbers=_DIMS, **kw)
    np.testing.assert_array_equal(out, ref)


def test_victims_use_the_matmul_gradient_and_keep_their_results():
  """A flax Conv with the drop-in gives XLA's values and gradients."""
  a = nnx.Conv(3, 4, (3, 3), rngs=nnx.Rngs(0))
  b = nnx.Conv(3, 4, (3, 3), rngs=nnx.Rngs(0),
               conv_general_dilated=_conv.conv_general_dilated)
  x = jax.random.normal(jax.random.key(2), (2, 6, 6, 3))
  ga = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(a)
  gb = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(b)
  np.testing.assert_allclose(gb["kernel"][...], ga["kernel"][...], rtol=1e-4,
                             atol=1e-4)


def test_whitening_ignores_directions_absent_from_training():
  """Fitted on greyed images, the stem does not see colour-only changes."""
  from ntga.victims import defenses
  grey = defenses.grayscale(_images(64, (8, 8, 3)))
  model = models.create("fast", num_classes=10, input_shape=(8, 8, 3),
                        rngs=nnx.Rngs(0))
  models.fit_data(model, grey)
  filt = np.asarray(model.whiten[...])
  norms = np.abs(filt).sum(axis=(0, 1, 2))
  assert np.all(norms > 0)  # no constant channel for BatchNorm to divide by
  assert len(np.unique(np.round(norms, 4))) <= 2 * 4  # luma directions only
  x = grey[:4].astype(np.float32) / 255
  chroma = x + (np.array([0.05, -0.05, 0.0], np.float32)
                * np.asarray(model.std[...]))[None, None, None]
  mean, std = np.asarray(model.mean[...]), np.asarray(model.std[...])
  stem = lambda z: jax.lax.conv_general_dilated(  # noqa: E731
      (z - mean[None, None, None]) / std[None, None, None], model.whiten[...],
      (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(stem(chroma), stem(x), atol=1e-4)


def test_grayscale_defense_trains_finite(key):
  """Greyed training images leave colour directions empty; training stays
  finite (zero whitening filters once made constant channels and NaN)."""
  data = _planted(16, (8, 8, 3))
  cfg = vt.TrainConfig.from_flat(victim="fast", defense="grayscale", epochs=1,
                                 batch_size=8, eval_batch_size=8)
  m = vt.train_and_evaluate(key, data, data, cfg, progress=False)
  assert np.isfinite(m["train_loss"][0]) and np.isfinite(m["test_loss"][0])
