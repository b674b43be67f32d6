"""Tests for victims.train: configs, smoke training, determinism, sharding."""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from ntga.data._types import Dataset
from ntga.errors import ConfigError, DataError
from ntga.victims import train as vt

NAMES10 = tuple(str(i) for i in range(10))


def _planted(n, shape=(8, 8, 1), k=4, seed=0):
  """uint8 images whose class is a bright pixel block: easy to learn."""
  rng = np.random.default_rng(seed)
  y = np.arange(n) % k
  x = rng.integers(0, 60, (n,) + shape)
  h = shape[0] // 2
  for c in range(k):
    r, q = divmod(c, 2)
    x[y == c, r * h:(r + 1) * h, q * h:(q + 1) * h, :] += 180
  return Dataset(x.astype(np.uint8), y.astype(np.int64), tuple(str(i) for i in range(k)))


def test_resolved_fills_recipe_and_validates():
  cfg = vt.TrainConfig(victim="cnn").resolved()
  assert (cfg.optimizer, cfg.lr, cfg.loss) == ("adam", 1e-3, "ce")
  assert vt.TrainConfig(victim="fnn").resolved().loss == "mse"
  r18 = vt.TrainConfig(victim="resnet18", lr=0.05).resolved()
  assert (r18.optimizer, r18.lr, r18.weight_decay, r18.schedule) == ("sgd", 0.05, 5e-4, "cosine")
  at = vt.TrainConfig.from_flat(victim="cnn", defense="at-linf").resolved().defense
  assert at.eps == pytest.approx(8 / 255) and at.step_size == pytest.approx(2 / 255)
  assert vt.TrainConfig(victim="vit-small").resolved().warmup_epochs == 5
  assert vt.TrainConfig(victim="vit-small", epochs=20).resolved().warmup_epochs == 2
  l2 = vt.TrainConfig.from_flat(victim="cnn", defense="at-l2").resolved().defense
  assert l2.eps == 0.5 and l2.step_size == pytest.approx(0.125)
  for bad in (dict(victim="lenet"), dict(optimizer="rmsprop"), dict(epochs=0),
              dict(lr=-1.0), dict(defense="jpeg", jpeg_quality=0),
              dict(defense="bdr", bdr_bits=9), dict(defense="at-l2", at_steps=0),
              dict(defense="ortho", ortho_lr=0.0), dict(defense="cutmix", cutmix_prob=2)):
    with pytest.raises(ConfigError):
      vt.TrainConfig.from_flat(**{"victim": "cnn", **bad}).resolved()


def test_train_config_holds_one_defense_config():
  from ntga.victims import defenses
  plain = vt.TrainConfig(victim="cnn", epochs=3)
  assert plain.defense == defenses.get("none")
  assert not {"jpeg_quality", "at_steps", "cutout_size"} & {
      f.name for f in dataclasses.fields(vt.TrainConfig)}
  cfg = vt.TrainConfig.from_flat(victim="cnn", defense="jpeg", jpeg_quality=30)
  assert cfg.defense == defenses.get("jpeg", quality=30)
  assert cfg.resolved().defense is not None and cfg.resolved().lr == 1e-3
  with pytest.raises(ConfigError, match="from_flat"):
    vt.TrainConfig(victim="cnn", defense="jpeg")  # a name is not a config


def test_from_flat_routes_and_rejects_settings():
  cfg = vt.TrainConfig.from_flat(victim="fnn", epochs=2, defense="at-l2", at_steps=3,
                                 augment="none")
  assert (cfg.victim, cfg.epochs, cfg.augment) == ("fnn", 2, "none")
  assert cfg.defense.name == "at-l2" and cfg.defense.steps == 3
  # the flat form round-trips, before and after resolving
  assert vt.TrainConfig.from_flat(**cfg.to_flat()) == cfg
  res = cfg.resolved()
  assert vt.TrainConfig.from_flat(**res.to_flat()) == res
  assert res.to_flat()["at_step_size"] == pytest.approx(2.5 * 0.5 / 3)
  for bad, word in ((dict(defense="jpeg", at_steps=1), "at_steps"),
                    (dict(defense="none", jpeg_quality=30), "jpeg_quality"),
                    (dict(epoch=3), "epoch"), (dict(defense="magic"), "magic")):
    with pytest.raises(ConfigError, match=word) as err:
      vt.TrainConfig.from_flat(victim="cnn", **bad)
    assert "\n" not in str(err.value)


def test_step_schedule_and_coupled_weight_decay():
  cfg = vt.TrainConfig(victim="cnn", optimizer="sgd", schedule="step", lr=1.0,
                       epochs=4, weight_decay=0.5, momentum=0.0).resolved()
  tx = vt.make_optimizer(cfg, steps_per_epoch=1)
  params = {"w": np.ones((), np.float32)}
  state = tx.init(params)
  lrs = []
  for _ in range(4):  # zero gradient: the update is -lr * wd * w
    upd, state = tx.update({"w": np.zeros((), np.float32)}, state, params)
    lrs.append(-float(upd["w"]) / 0.5)
  np.testing.assert_allclose(lrs, [1.0, 1.0, 0.1, 0.01], rtol=1e-6)


def test_loss_from_targets():
  logits = np.array([[2.0, 0.0]], np.float32)
  t = np.array([[1.0, 0.0]], np.float32)
  assert float(vt.loss_from_targets(logits, t, "mse")) == pytest.approx(0.5 * (1 + 0))
  assert float(vt.loss_from_targets(logits, t, "ce")) == pytest.approx(
      float(optax.softmax_cross_entropy(logits, t)[0]))


@pytest.mark.parametrize("victim,shape", [
    ("fnn", (8, 8, 1)), ("fnn-relu", (8, 8, 3)), ("cnn", (8, 8, 1)),
    pytest.param("resnet18", (8, 8, 3), marks=pytest.mark.slow)])
def test_two_step_smoke(key, victim, shape):
  data = _planted(8, shape)
  cfg = vt.TrainConfig(victim=victim, epochs=1, batch_size=4, eval_batch_size=4)
  m = vt.train_and_evaluate(key, data, data, cfg, progress=False)
  assert m["steps_per_epoch"] == 2
  assert len(m["test_accuracy"]) == len(m["train_loss"]) == 1
  assert np.isfinite(m["train_loss"][0])
  assert 0.0 <= m["final_test_accuracy"] <= 1.0
  assert m["peak_test_accuracy"] >= m["final_test_accuracy"]
  assert m["config"]["victim"] == victim and m["n_train"] == 8


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["vgg16", "densenet121", "wrn-34-10", "vit-small", "mobilenetv2",
                                    "resnet34"])
def test_two_step_smoke_big(key, victim):
  data = _planted(8, (8, 8, 3))
  cfg = vt.TrainConfig(victim=victim, epochs=1, batch_size=4, eval_batch_size=4)
  m = vt.train_and_evaluate(key, data, data, cfg, progress=False)
  assert np.isfinite(m["train_loss"][0]) and m["steps_per_epoch"] == 2


def test_fnn_relu_learns_digits(key):
  from sklearn.datasets import load_digits
  d = load_digits()
  x = np.round(d.images / 16 * 255).astype(np.uint8)[..., None]
  y = d.target.astype(np.int64)
  tr, te = Dataset(x[:1200], y[:1200], NAMES10), Dataset(x[1200:], y[1200:], NAMES10)
  m = vt.train_and_evaluate(key, tr, te, vt.TrainConfig(victim="fnn-relu", epochs=3),
                            progress=False)
  assert m["final_test_accuracy"] >= 0.85
  assert m["train_loss"][-1] < m["train_loss"][0]


def _mesh(n):
  return jax.make_mesh((n,), ("data",), devices=jax.devices()[:n])


def test_sharded_equals_unsharded_and_deterministic(key):
  """cnn (batch norm + dropout) with crop+flip: 4 devices == 1 device.

  SGD rather than Adam: Adam's normalisation magnifies float reassociation
  differences of near-zero gradients, SGD keeps them at rounding level.
  """
  assert jax.device_count() >= 4, "tests/conftest.py simulates 4 CPU devices"
  data = _planted(32, (8, 8, 3))
  cfg = vt.TrainConfig(victim="cnn", epochs=2, batch_size=8, eval_batch_size=8,
                       augment="crop-flip", optimizer="sgd", lr=0.05)
  one = vt.train_and_evaluate(key, data, data, cfg, progress=False, mesh=_mesh(1))
  four = vt.train_and_evaluate(key, data, data, cfg, progress=False, mesh=_mesh(4))
  again = vt.train_and_evaluate(key, data, data, cfg, progress=False, mesh=_mesh(4))
  assert (one["num_devices"], four["num_devices"]) == (1, 4)
  np.testing.assert_allclose(four["train_loss"], one["train_loss"], rtol=1e-4)
  np.testing.assert_allclose(four["test_loss"], one["test_loss"], rtol=1e-3, atol=1e-5)
  assert four["test_accuracy"] == one["test_accuracy"]
  assert again["train_loss"] == four["train_loss"]
  other = vt.train_and_evaluate(jax.random.fold_in(key, 1), data, data, cfg,
                                progress=False, mesh=_mesh(4))
  assert other["train_loss"] != four["train_loss"]


def test_mismatched_data_is_a_clear_error(key):
  a = _planted(8, (8, 8, 1))
  b = _planted(8, (10, 10, 1))
  with pytest.raises(DataError, match="must match"):
    vt.train_and_evaluate(key, a, b, vt.TrainConfig(victim="fnn"), progress=False)
  c = Dataset(a.x, a.y, NAMES10)
  with pytest.raises(DataError, match="classes"):
    vt.train_and_evaluate(key, a, c, vt.TrainConfig(victim="fnn"), progress=False)
