"""Tests of EM and REM (bi-level noise with a source model), tiny and fast."""

import dataclasses

import jax
import numpy as np
import pytest

import attacks
from attacks import _common, em, rem
from ntga.errors import ConfigError

_X = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
_Y = np.arange(16, dtype=np.int64) % 4

_CFGS = {
    "em-sample": em.EMConfig.cpu(batch_size=8, train_steps=4, max_rounds=3),
    "em-class": em.EMConfig.cpu(mode="class", batch_size=8, train_steps=4, max_rounds=3),
    "rem": rem.REMConfig.cpu(batch_size=8, train_steps=4, total_train_steps=8),
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


def test_classwise_noise_shared(results):
  r = results["em-class"][0]
  assert r.delta.shape == (4, 8, 8, 3)
  xi = _X.astype(np.float32) / 255
  expect = _common.to_uint8_within(_X, np.clip(xi + r.delta[_Y], 0, 1), 8 / 255)
  np.testing.assert_array_equal(r.x, expect)


def test_em_stops_at_accuracy():
  cfg = em.EMConfig.cpu(batch_size=8, train_steps=4, max_rounds=50, stop_accuracy=0.0)
  r = em.generate(jax.random.key(3), _X, _Y, cfg)
  assert len(r.accuracy) == 1 and r.accuracy[0] > 0.0


def test_rem_rounds_follow_total_steps(results):
  assert len(results["rem"][0].accuracy) == 2


def test_registry_entries():
  assert attacks.get("em").config_cls is em.EMConfig
  assert attacks.get("rem").config_cls is rem.REMConfig
  assert em.EMConfig().noise_steps == 20 and rem.REMConfig().total_train_steps == 5000


@pytest.mark.parametrize("cls,kw", [
    (em.EMConfig, dict(eps=0.0)),
    (em.EMConfig, dict(mode="pixel")),
    (em.EMConfig, dict(stop_accuracy=1.5)),
    (rem.REMConfig, dict(rho_a=8 / 255)),
    (rem.REMConfig, dict(eot_samples=0)),
    (rem.REMConfig, dict(eps=2.0)),
])
def test_config_validation(cls, kw):
  with pytest.raises(ConfigError):
    dataclasses.replace(cls(), **kw)


def test_wrong_config_type():
  with pytest.raises(ConfigError):
    em.poison(jax.random.key(0), _X, _Y, object())
