"""Tests of EM and REM (bi-level noise with a source model), tiny and fast."""

import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ntga import attacks
from ntga.attacks import _common, _source_model, em, rem
from ntga import data
from ntga.errors import ConfigError

_X = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
_Y = np.arange(16, dtype=np.int64) % 4

_CFGS = {
    "em-sample": em.EMConfig.cpu(batch_size=8, train_steps=4, max_rounds=3,
                                 stop_accuracy=1.0),
    "em-class": em.EMConfig.cpu(mode="class", batch_size=8, train_steps=4, max_rounds=3),
    "rem": rem.REMConfig.cpu(batch_size=8, perturb_freq=1, total_train_steps=4),
}


@pytest.fixture(scope="module")
def results():
  """Each config run with two keys (the first twice) -> {name: (r1, r1_again, r2)}."""
  out = {}
  for name, cfg in _CFGS.items():
    k1, k2 = jax.random.key(11), jax.random.key(12)
    out[name] = (em.generate(k1, _X, _Y, cfg), em.generate(k1, _X, _Y, cfg),
                 em.generate(k2, _X, _Y, cfg))
  return out


@pytest.mark.parametrize("name", list(_CFGS))
def test_output_and_bound(name, results):
  r = results[name][0]
  assert r.x.dtype == np.uint8 and r.x.shape == _X.shape
  d = np.abs(r.x.astype(int) - _X)
  assert d.max() <= _common.eps_levels(_CFGS[name].eps) == 8
  assert d.max() == 8  # noise actually uses the budget
  assert np.abs(r.delta).max() <= _CFGS[name].eps + 1e-7


@pytest.mark.parametrize("name", list(_CFGS))
def test_returned_images_carry_the_noise(name, results):
  """x_p is exactly round(clip(x + delta)) (within eps): noise applied, not lost in uint8."""
  r = results[name][0]
  rows = r.delta[_Y] if name == "em-class" else r.delta
  expect = _common.to_uint8_within(_X, np.clip(_X / 255.0 + rows, 0, 1), 8 / 255)
  np.testing.assert_array_equal(r.x, expect)
  assert (r.x != _X).mean() > 0.5


@pytest.mark.parametrize("name", list(_CFGS))
def test_determinism(name, results):
  a, again, b = results[name]
  np.testing.assert_array_equal(a.x, again.x)
  assert (a.x != b.x).any()


@pytest.mark.parametrize("name", list(_CFGS))
def test_source_loss_lower_on_poisoned(name, results):
  r = results[name][0]
  poisoned = em.source_loss(r.graphdef, r.params, r.x, _Y)
  clean = em.source_loss(r.graphdef, r.params, _X, _Y)
  assert poisoned < clean, (poisoned, clean)


@pytest.mark.parametrize("name", list(_CFGS))
def test_reported_accuracy_and_loss(name, results):
  """The last reported accuracy/loss are the source model's on the perturbed data."""
  r = results[name][0]
  assert len(r.accuracy) == len(r.loss) >= 1
  xf = np.clip(_X / 255.0 + (r.delta[_Y] if name == "em-class" else r.delta), 0, 1)
  lg = _source_model.logits(r.graphdef, r.params, jnp.asarray(xf, jnp.float32))
  acc = float(np.mean(np.argmax(np.asarray(lg), -1) == _Y))
  loss = float(optax.softmax_cross_entropy_with_integer_labels(lg, _Y).mean())
  assert r.accuracy[-1] == pytest.approx(acc)
  assert r.loss[-1] == pytest.approx(loss, rel=1e-4)


def test_classwise_noise_shared(results):
  r = results["em-class"][0]
  assert r.delta.shape == (4, 8, 8, 3)
  d = r.x.astype(int) - _X
  # Same class, same noise wherever neither image hits 0 or 255.
  a, b = d[_Y == 1][:2]
  inner = (_X[_Y == 1][:2] > 8).all(0) & (_X[_Y == 1][:2] < 247).all(0)
  np.testing.assert_array_equal(a[inner], b[inner])


def test_em_stops_at_accuracy():
  cfg = em.EMConfig.cpu(batch_size=8, train_steps=4, max_rounds=50, stop_accuracy=0.0)
  r = em.generate(jax.random.key(3), _X, _Y, cfg)
  assert r.stopped and r.rounds == len(r.accuracy) == 1 and r.accuracy[0] > 0.0


def test_em_runs_all_rounds_when_never_stopping(results):
  r = results["em-sample"][0]
  assert r.rounds == 3 and len(r.accuracy) == 3 and not r.stopped


def test_em_logs_each_round(caplog):
  cfg = em.EMConfig.cpu(batch_size=8, train_steps=2, max_rounds=2, stop_accuracy=1.0)
  with caplog.at_level(logging.INFO, logger="ntga.attacks.minmin"):
    em.generate(jax.random.key(3), _X, _Y, cfg)
  rounds = [m for m in caplog.messages if m.startswith("em round")]
  assert len(rounds) == 2 and "accuracy on perturbed data" in rounds[0]


def test_rem_runs_total_steps(results):
  r = results["rem"][0]
  assert r.rounds == 4 and not r.stopped and len(r.accuracy) == 1


def test_em_noise_is_error_minimizing_on_digits():
  """Regression for a no-op EM (noise ascending the loss, lost in rounding, not
  applied, or a source model that does not train): on 400 digits the source
  model must pass the stop accuracy on the poisoned images, and its loss there
  must be far below its loss on the clean ones."""
  train = data.load("digits", "train", limit=400)
  cfg = em.EMConfig.cpu(eps=32 / 255, noise_step_size=8 / 255, batch_size=50,
                        train_steps=10, max_rounds=10)
  r = em.generate(jax.random.key(0), train.x, train.y, cfg)
  assert r.stopped and r.accuracy[-1] > 0.99 and r.accuracy[0] < r.accuracy[-1], r.accuracy
  assert np.abs(r.x.astype(int) - train.x).max() == 32
  poisoned = em.source_loss(r.graphdef, r.params, r.x, train.y)
  clean = em.source_loss(r.graphdef, r.params, train.x, train.y)
  assert poisoned < 0.2 * clean, (poisoned, clean)
  # A freshly initialised source model sees no such gap: the gap is the noise's.
  gdef, params = _source_model.init(jax.random.key(9), 10, (8, 8, 1), 16)
  fresh_p = em.source_loss(gdef, params, r.x, train.y)
  fresh_c = em.source_loss(gdef, params, train.x, train.y)
  assert abs(fresh_p - fresh_c) < 0.1 * fresh_c, (fresh_p, fresh_c)


def test_source_model_is_per_example_and_pooled():
  """No batch statistics (an image's scores do not depend on its batch mates),
  and a pooled head: the same weights take any image size."""
  gdef, params = _source_model.init(jax.random.key(0), 4, (8, 8, 3), 8)
  xf = jnp.asarray(_X / 255.0, jnp.float32)
  alone = _source_model.logits(gdef, params, xf[:1])
  in_batch = _source_model.logits(gdef, params, xf)[:1]
  np.testing.assert_allclose(alone, in_batch, rtol=1e-5, atol=1e-6)
  assert _source_model.logits(gdef, params, jnp.zeros((2, 16, 12, 3))).shape == (2, 4)


def test_registry_entries():
  assert attacks.get("em").config_cls is em.EMConfig
  assert attacks.get("rem").config_cls is rem.REMConfig


def test_paper_defaults():
  e, r = em.EMConfig(), rem.REMConfig()
  assert (e.eps, e.noise_steps, e.noise_step_size, e.train_steps, e.stop_accuracy) == (
      8 / 255, 20, 0.8 / 255, 10, 0.99)
  assert (e.learning_rate, e.momentum, e.weight_decay) == (0.1, 0.9, 5e-4)
  assert (r.rho_a, r.adv_steps, r.adv_step_size, r.noise_steps, r.noise_step_size) == (
      4 / 255, 10, 0.8 / 255, 10, 1.6 / 255)
  assert (r.eot_samples, r.total_train_steps, r.lr_decay_steps, r.batch_size) == (
      5, 5000, 2000, 128)


@pytest.mark.parametrize("cls,kw", [
    (em.EMConfig, dict(eps=0.0)),
    (em.EMConfig, dict(mode="pixel")),
    (em.EMConfig, dict(stop_accuracy=1.5)),
    (em.EMConfig, dict(train_steps=0)),
    (rem.REMConfig, dict(rho_a=8 / 255)),
    (rem.REMConfig, dict(eot_samples=0)),
    (rem.REMConfig, dict(eps=2.0)),
    (rem.REMConfig, dict(perturb_freq=0)),
    (rem.REMConfig, dict(lr_decay_rate=0.0)),
])
def test_config_validation(cls, kw):
  with pytest.raises(ConfigError):
    dataclasses.replace(cls(), **kw)


def test_wrong_config_type():
  with pytest.raises(ConfigError):
    em.poison(jax.random.key(0), _X, _Y, object())
