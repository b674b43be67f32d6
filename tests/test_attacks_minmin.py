"""Tests of EM and REM (bi-level noise with a source model), tiny and fast.

Most tests use the small GroupNorm CNN (cheap to compile); the tests of the
BatchNorm handling and of the presets use ``fast``, the CPU presets' model.
"""

import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from ntga import attacks
from ntga.attacks import _common, _minmin, _source_model, em, rem
from ntga.errors import ConfigError

_X = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
_Y = np.arange(16, dtype=np.int64) % 4
_GN = dict(source_model="groupnorm-cnn", width=8)

_CFGS = {
    "em-sample": em.EMConfig.cpu(batch_size=8, train_steps=4, max_rounds=3,
                                 stop_accuracy=1.0, **_GN),
    "em-class": em.EMConfig.cpu(mode="class", noise_step_size=2 / 255, batch_size=8,
                                train_steps=4, max_rounds=3, **_GN),
    "rem": rem.REMConfig.cpu(batch_size=8, perturb_freq=1, total_train_steps=4, adv_steps=2,
                             noise_steps=3, eot_samples=2, **_GN),
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
  xf = _X.astype(np.float32) / 255.0  # (class-wise means often sit on half levels)
  expect = _common.to_uint8_within(_X, np.clip(xf + rows, 0, 1), 8 / 255)
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
  poisoned = em.source_loss(r.source, r.x, _Y)
  clean = em.source_loss(r.source, _X, _Y)
  assert poisoned < clean, (poisoned, clean)


@pytest.mark.parametrize("name", list(_CFGS))
def test_reported_progress(name, results):
  """The last reported accuracy/loss are the source model's on the perturbed
  data, the clean accuracy its accuracy on the clean images, the saturation
  the fraction of noise entries at +-eps; one entry per round / report."""
  r = results[name][0]
  h = (r.accuracy, r.loss, r.clean_accuracy, r.saturation)
  assert len({len(v) for v in h}) == 1 and len(r.accuracy) >= 1
  net, params, rest = r.source
  xf = np.clip(_X / 255.0 + (r.delta[_Y] if name == "em-class" else r.delta), 0, 1)

  logits = jax.jit(lambda z: _source_model.eval_logits(net, params, rest, z))

  def acc_loss(z):
    lg = logits(jnp.asarray(z, jnp.float32))
    return (float(np.mean(np.argmax(np.asarray(lg), -1) == _Y)),
            float(optax.softmax_cross_entropy_with_integer_labels(lg, _Y).mean()))

  acc, loss = acc_loss(xf)
  assert r.accuracy[-1] == pytest.approx(acc)
  assert r.loss[-1] == pytest.approx(loss, rel=1e-4)
  assert r.clean_accuracy[-1] == pytest.approx(acc_loss(_X / 255.0)[0])
  sat = np.mean(np.abs(r.delta) >= np.float32(8 / 255) * (1 - 1e-6))
  assert r.saturation[-1] == pytest.approx(sat) and 0 < sat <= 1


def test_classwise_noise_shared(results):
  r = results["em-class"][0]
  assert r.delta.shape == (4, 8, 8, 3)
  d = r.x.astype(int) - _X
  # Every image carries its class's noise (rounded to a grey level) wherever
  # it does not hit 0 or 255.
  inner = (_X > 8) & (_X < 247)
  err = np.abs(d - 255 * r.delta[_Y])[inner]
  assert err.max() <= 0.5 + 1e-3 and np.abs(r.delta).max() > 0


def test_em_stops_at_accuracy():
  cfg = dataclasses.replace(_CFGS["em-sample"], max_rounds=50, stop_accuracy=0.0)
  r = em.generate(jax.random.key(3), _X, _Y, cfg)
  assert r.stopped and r.rounds == len(r.accuracy) == 1 and r.accuracy[0] > 0.0


def test_em_runs_all_rounds_when_never_stopping(results):
  r = results["em-sample"][0]
  assert r.rounds == 3 and len(r.accuracy) == 3 and not r.stopped


def test_em_logs_each_round(caplog):
  cfg = dataclasses.replace(_CFGS["em-sample"], train_steps=2, max_rounds=2)
  with caplog.at_level(logging.INFO, logger="ntga.attacks.minmin"):
    em.generate(jax.random.key(3), _X, _Y, cfg)
  rounds = [m for m in caplog.messages if m.startswith("em round")]
  assert len(rounds) == 2
  for part in ("accuracy on perturbed data", "on clean data", "noise saturation"):
    assert part in rounds[0]


def test_rem_reports(results):
  """REM: total_train_steps iterations; one report per tenth (here every step)
  and one after the final noise pass."""
  r = results["rem"][0]
  assert r.rounds == 4 and not r.stopped and len(r.accuracy) == 5


# name -> (the function to interrupt, at which call): EM in its second round,
# REM in its final noise pass (after its 4 training iterations' 4 calls).
_KILL_AT = {"em-sample": ("_train_step", 6), "rem": ("_rem_noise", 6)}


@pytest.mark.parametrize("name", list(_KILL_AT))
def test_a_killed_run_resumes_to_the_same_noise(name, results, tmp_path, monkeypatch, caplog):
  """With a checkpoint_dir, a run interrupted part-way resumes from its saved
  state and ends with exactly the noise, images and progress of an
  uninterrupted run; another key refuses the folder."""
  from ntga.errors import OutputError  # pylint: disable=g-import-not-at-top
  from ntga.protocol import RunContext  # pylint: disable=g-import-not-at-top
  fn, at = _KILL_AT[name]
  real, calls = getattr(_minmin, fn), []

  def dying(*args, **kw):
    calls.append(1)
    if len(calls) == at:
      raise KeyboardInterrupt
    return real(*args, **kw)

  ctx = RunContext(checkpoint_dir=tmp_path / "ckpt")
  monkeypatch.setattr(_minmin, fn, dying)
  with pytest.raises(KeyboardInterrupt):
    em.generate(jax.random.key(11), _X, _Y, _CFGS[name], ctx)
  monkeypatch.setattr(_minmin, fn, real)
  assert (tmp_path / "ckpt" / "minmin_state.npz").exists()
  with caplog.at_level(logging.INFO, logger="ntga.attacks.minmin"):
    again = em.generate(jax.random.key(11), _X, _Y, _CFGS[name], ctx)
  assert any("resumed" in m for m in caplog.messages)
  want = results[name][0]
  np.testing.assert_array_equal(again.delta, want.delta)
  np.testing.assert_array_equal(again.x, want.x)
  assert again.accuracy == want.accuracy and again.rounds == want.rounds
  with pytest.raises(OutputError, match="different run"):
    em.generate(jax.random.key(12), _X, _Y, _CFGS[name], ctx)


@pytest.mark.parametrize("order", ["shuffle", "fixed"])
def test_a_batcher_seeked_to_a_step_continues_as_one_that_walked_there(order):
  walked = _minmin._Batcher(jax.random.key(5), 20, 6, order)
  for _ in range(4):  # mid-way through the second pass of a shuffled order
    walked.next()
  seeked = _minmin._Batcher(jax.random.key(5), 20, 6, order)
  seeked.seek(4)
  for _ in range(5):
    np.testing.assert_array_equal(seeked.next(), walked.next())


def test_rem_noise_stored_in_grey_levels(results):
  """round_noise (authors' int8 table); round_noise=False (earlier) is pinned
  by its fingerprint in test_poison_golden."""
  d = results["rem"][0].delta * 255
  np.testing.assert_allclose(d, np.round(d), atol=1e-4)


def _learnable(n=256, k=4, size=8, seed=0):
  """Tiny images a small CNN learns: a class template plus pixel noise."""
  rng = np.random.default_rng(seed)
  templates = rng.uniform(0.2, 0.8, (k, size, size, 3))
  y = np.arange(n) % k
  x = templates[y] + rng.normal(0, 0.15, (n, size, size, 3))
  return (np.clip(x, 0, 1) * 255).round().astype(np.uint8), y.astype(np.int64)


def test_em_noise_saturates_on_a_learnable_toy_problem():
  """The authors' rules (zero start, gradient at the clamped image, noise
  carried over rounds) drive most noise entries to the eps bound, and the
  source model learns the images too (it scores on clean ones)."""
  x, y = _learnable()
  cfg = em.EMConfig(noise_steps=8, noise_step_size=2 / 255, batch_size=64, train_steps=8,
                    max_rounds=4, stop_accuracy=1.0, **_GN)
  r = em.generate(jax.random.key(0), x, y, cfg)
  assert min(r.saturation) > 0.6, r.saturation
  assert np.mean(np.abs(r.x.astype(int) - x) == 8) > 0.6
  assert r.clean_accuracy[-1] > 0.5 and r.accuracy[-1] == 1.0, (r.clean_accuracy, r.accuracy)
  # Error-minimizing: the source model's loss is far lower on the poisoned
  # images than on the clean ones, and a fresh model sees no such gap.
  poisoned, clean = em.source_loss(r.source, r.x, y), em.source_loss(r.source, x, y)
  assert poisoned < 0.5 * clean, (poisoned, clean)
  fresh = _source_model.Source(*_source_model.init(jax.random.key(9), "groupnorm-cnn",
                                                           4, x, 8))
  fresh_p, fresh_c = em.source_loss(fresh, r.x, y), em.source_loss(fresh, x, y)
  assert abs(fresh_p - fresh_c) < 0.1 * fresh_c, (fresh_p, fresh_c)


def test_em_starts_from_zero_noise():
  """noise_init="zero" (authors): after one round of one step every entry is
  0 or +-step; "uniform" (earlier) starts anywhere in the ball."""
  step = 1 / 255
  base = em.EMConfig(noise_steps=1, noise_step_size=step, batch_size=8, train_steps=1,
                     max_rounds=1, **_GN)
  d = em.generate(jax.random.key(0), _X, _Y, base).delta
  assert set(np.unique(np.round(np.abs(d) / step, 4))) <= {0.0, 1.0}
  u = em.generate(jax.random.key(0), _X, _Y, dataclasses.replace(base, noise_init="uniform"))
  assert np.abs(u.delta).max() > 4 * step


def test_gradient_through_the_clamp():
  """Where x + delta is clipped, "through" (authors: gradient at the clamped
  image) moves the noise; "stop" (earlier: jnp.clip's zero gradient) cannot."""
  x = np.ones((8, 8, 8, 3), np.float32)            # white images ...
  table = np.full(x.shape, 8 / 255, np.float32)     # ... pushed further up: all clipped
  y = _Y[:8]
  net, params, rest = _source_model.init(jax.random.key(0), "groupnorm-cnn", 4, x, 8)
  moved = {}
  for rule in ("through", "stop"):
    cfg = em.EMConfig(noise_steps=1, clamp_gradient=rule, **_GN)
    out = np.asarray(_minmin._noise_update(net, cfg, params, rest, table, x, y, np.arange(8),
                                           jax.random.key(1), per_image=True))
    moved[rule] = np.mean(out != table)
  assert moved["stop"] == 0.0 and moved["through"] > 0.9, moved


def test_classwise_mean_update():
  """class_update="mean" (authors): each class's noise becomes the clamped
  mean of its images' per-image updates."""
  cfg = _CFGS["em-class"]  # one batch of 8 images below (compiled by the fixture)
  assert cfg._class_update() == "mean"
  xf, y = _X[:8] / np.float32(255), _Y[:8]
  net, params, rest = _source_model.init(jax.random.key(0), "groupnorm-cnn", 4, xf, 8)
  table = np.zeros((4, 8, 8, 3), np.float32)
  out = _minmin._em_noise_pass(table.copy(), _source_model.Source(net, params, rest), xf, y,
                               cfg, jax.random.key(2))
  rows = np.asarray(_minmin._noise_update(net, cfg._compiled(), params, rest, table[y], xf, y,
                                          np.arange(8), jax.random.fold_in(jax.random.key(2), 0),
                                          per_image=True))
  for k in range(4):
    np.testing.assert_allclose(out[k], np.clip(rows[y == k].mean(0), -cfg.eps, cfg.eps))
  assert np.abs(out).max() > 0


def test_rem_projected_adversary_stays_in_box_and_ball():
  cfg = rem.REMConfig(adv_steps=3, **_GN)
  x = jnp.asarray(_X / 255.0, jnp.float32)
  net, params, rest = _source_model.init(jax.random.key(0), "groupnorm-cnn", 4, _X, 8)
  adv = np.asarray(_minmin._adversarial_image(net, cfg, params, rest, x, _Y, jax.random.key(1)))
  assert adv.min() >= 0 and adv.max() <= 1
  assert np.abs(adv - np.asarray(x)).max() <= cfg.rho_a + 1e-6
  assert np.mean(np.abs(adv - np.asarray(x)) > 0) > 0.5


def test_batchnorm_source_model_modes():
  """A BatchNorm source model (fast) trains in train mode, updating its running
  statistics, and is evaluated in eval mode, per example."""
  cfg = em.EMConfig(noise_steps=1, batch_size=8, train_steps=2, max_rounds=1,
                    source_model="fast")
  r = em.generate(jax.random.key(0), _X, _Y, cfg)
  net, params, rest = r.source
  # Running means start at 0: training moved them.
  means = [v for p, v in nnx.to_flat_state(nnx.filter_state(rest, nnx.BatchStat))
           if p[-1] == "mean"]
  assert means and all(np.abs(np.asarray(m[...])).max() > 0 for m in means)
  xf = jnp.asarray(_X / 255.0, jnp.float32)
  alone = _source_model.eval_logits(net, params, rest, xf[:1])
  in_batch = _source_model.eval_logits(net, params, rest, xf)[:1]
  np.testing.assert_allclose(alone, in_batch, rtol=1e-4, atol=1e-5)
  train_alone = _source_model.train_logits(net, params, rest, xf[:2])[0][:1]
  assert not np.allclose(train_alone, in_batch, atol=1e-3)  # batch statistics in train mode


def test_groupnorm_source_model_is_per_example_and_pooled():
  """No batch statistics (an image's scores do not depend on its batch mates),
  and a pooled head: the same weights take any image size."""
  net, params, rest = _source_model.init(jax.random.key(0), "groupnorm-cnn", 4, _X, 8)
  xf = jnp.asarray(_X / 255.0, jnp.float32)
  train = jax.jit(lambda z: _source_model.train_logits(net, params, rest, z)[0])
  np.testing.assert_allclose(train(xf[:1]), train(xf)[:1], rtol=1e-5, atol=1e-6)
  assert jax.eval_shape(train, jnp.zeros((2, 16, 12, 3))).shape == (2, 4)


def test_registry_entries():
  assert attacks.get("em").config_cls is em.EMConfig
  assert attacks.get("rem").config_cls is rem.REMConfig


def test_paper_defaults():
  e, r = em.EMConfig(), rem.REMConfig()
  assert (e.eps, e.noise_steps, e.noise_step_size, e.train_steps, e.stop_accuracy) == (
      8 / 255, 20, 0.8 / 255, 10, 0.99)
  assert (e.learning_rate, e.momentum, e.weight_decay, e.grad_clip, e.batch_size) == (
      0.1, 0.9, 5e-4, 5.0, 512)
  assert (e.noise_init, e.clamp_gradient, e.source_model) == ("zero", "through", "resnet18")
  assert (r.rho_a, r.adv_steps, r.adv_step_size, r.noise_steps, r.noise_step_size) == (
      4 / 255, 10, 0.8 / 255, 10, 1.6 / 255)
  assert (r.eot_samples, r.total_train_steps, r.lr_decay_steps, r.batch_size) == (
      5, 5000, 2000, 128)
  assert (r.noise_init, r.clamp_gradient, r.adversary, r.round_noise, r.grad_clip) == (
      "uniform", "stop", "projected", True, 0.0)
  assert r.source_model == "resnet18" and r.perturb_freq == 1


@pytest.mark.parametrize("config", [em.EMConfig(), em.EMConfig.cpu(), rem.REMConfig(),
                                    rem.REMConfig.cpu()], ids=["em", "em-cpu", "rem", "rem-cpu"])
def test_presets_keep_the_papers_reach(config):
  """Fewer, larger steps, never a shorter reach: steps x step = 2 eps (noise), 2 rho_a (REM adversary)."""
  assert config.noise_steps * config.noise_step_size == pytest.approx(2 * config.eps)
  if isinstance(config, rem.REMConfig):
    assert config.adv_steps * config.adv_step_size == pytest.approx(2 * config.rho_a)


def test_shared_fields_live_in_one_base():
  """EM and REM share one base class; neither redeclares a shared field's type."""
  base = {f.name for f in dataclasses.fields(_minmin.MinMinConfig)}
  assert issubclass(em.EMConfig, _minmin.MinMinConfig)
  assert issubclass(rem.REMConfig, _minmin.MinMinConfig)
  assert {"eps", "noise_steps", "source_model", "width", "clamp_gradient"} <= base


@pytest.mark.parametrize("cls", [em.EMConfig, rem.REMConfig])
def test_presets_validate(cls):
  assert cls.preset_names == ("paper", "cpu")
  assert cls.preset("paper") == cls()
  cpu = cls.preset("cpu")
  assert cpu == cls.cpu() and cpu != cls() and cpu.source_model == "fast"
  assert cls.preset("cpu", noise_steps=3).noise_steps == 3
  with pytest.raises(ConfigError):
    cls.cpu(width=16)  # width is the GroupNorm CNN's only
  assert cls.cpu(source_model="groupnorm-cnn", width=16).width == 16


def test_em_class_preset():
  c = em.EMConfig.cpu(mode="class")
  assert (c.noise_steps, c.stop_accuracy, c._batch_order(), c._class_update()) == (
      1, 0.9, "shuffle", "mean")
  assert em.EMConfig()._batch_order() == "fixed"


@pytest.mark.parametrize("cls,kw", [
    (em.EMConfig, dict(eps=0.0)),
    (em.EMConfig, dict(mode="pixel")),
    (em.EMConfig, dict(stop_accuracy=1.5)),
    (em.EMConfig, dict(train_steps=0)),
    (em.EMConfig, dict(noise_init="gauss")),
    (em.EMConfig, dict(clamp_gradient="none")),
    (em.EMConfig, dict(batch_order="sequential")),
    (em.EMConfig, dict(class_update="mean")),  # sample-wise noise has no class update
    (em.EMConfig, dict(grad_clip=-1.0)),
    (em.EMConfig, dict(source_model="resnet19")),
    (em.EMConfig, dict(width=8)),  # resnet18 takes no width
    (em.EMConfig, dict(source_model="fast", width=8)),
    (em.EMConfig, dict(source_model="groupnorm-cnn", width=0)),
    (rem.REMConfig, dict(rho_a=8 / 255)),
    (rem.REMConfig, dict(eot_samples=0)),
    (rem.REMConfig, dict(eps=2.0)),
    (rem.REMConfig, dict(perturb_freq=0)),
    (rem.REMConfig, dict(lr_decay_rate=0.0)),
    (rem.REMConfig, dict(adversary="free")),
    (rem.REMConfig, dict(width=16)),
])
def test_config_validation(cls, kw):
  with pytest.raises(ConfigError):
    dataclasses.replace(cls(), **kw)


def test_wrong_config_type():
  with pytest.raises(ConfigError):
    em.poison(jax.random.key(0), _X, _Y, object())
