"""Tests for victims.defenses, victims.adversarial and victims.separability."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntga.data._types import Dataset
from ntga.errors import ConfigError, DataError
from ntga.victims import adversarial, defenses, separability
from ntga.victims import train as vt


def _natural_images(n=6, size=32, seed=0):
  """Smooth colour images (gradients + blobs): JPEG-friendly, not constant."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size] / size
  imgs = []
  for _ in range(n):
    a, b, c = rng.uniform(0.2, 1.0, 3)
    img = np.stack([a * xx, b * yy, c * (1 - xx * yy)], -1)
    img += rng.normal(0, 0.05, img.shape)
    imgs.append(np.clip(img, 0, 1))
  return np.round(np.stack(imgs) * 255).astype(np.uint8)


# ------------------------------------------------------------------ PGD

def _linear_loss(w, y):
  def loss(z):
    logits = z.reshape((z.shape[0], -1)) @ w
    return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(len(y)), y])
  return loss


@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_pgd_stays_in_ball_and_raises_loss(getkey, norm, eps):
  x = jax.random.uniform(getkey(), (8, 6, 6, 3))
  y = jnp.arange(8) % 4
  loss = _linear_loss(jax.random.normal(getkey(), (108, 4)), y)
  x_adv = adversarial.pgd(getkey(), loss, x, norm=norm, eps=eps, steps=10)
  d = np.asarray(x_adv - x).reshape((8, -1))
  if norm == "linf":
    assert np.abs(d).max() <= eps + 1e-6
    assert np.abs(d).max() >= 0.9 * eps  # it used the budget
  else:
    assert np.linalg.norm(d, axis=1).max() <= eps + 1e-5
  assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
  assert float(loss(x_adv)) > float(loss(x)) + 0.05
  with pytest.raises(ConfigError):
    adversarial.pgd(getkey(), loss, x, norm="l1")


def test_adversarial_training_smoke(key):
  rng = np.random.default_rng(0)
  data = Dataset(rng.integers(0, 256, (8, 8, 8, 1)).astype(np.uint8),
                 np.arange(8) % 2, ("a", "b"))
  cfg = vt.TrainConfig.from_flat(victim="cnn", defense="at-linf", at_steps=2, epochs=1,
                                 batch_size=4, eval_batch_size=4)
  m = vt.train_and_evaluate(key, data, data, cfg, progress=False)
  assert np.isfinite(m["train_loss"][0])
  assert m["config"]["at_step_size"] == pytest.approx(2 / 255)
  cfg = vt.TrainConfig.from_flat(victim="cnn", defense="at-nfgsm", epochs=1,
                                 batch_size=4, eval_batch_size=4)
  m = vt.train_and_evaluate(key, data, data, cfg, progress=False)
  assert np.isfinite(m["train_loss"][0])
  assert (m["config"]["at_noise"], m["config"]["at_step_size"]) == (2.0, pytest.approx(8 / 255))


def test_robust_accuracy_is_measured_after_training_and_never_above_clean(key):
  from ntga import data as ntga_data
  train, test = ntga_data.load("digits", "train"), ntga_data.load("digits", "test")
  cfg = vt.TrainConfig(victim="fnn-relu", epochs=2, robust_eps=0.3, tta="none")
  m = vt.train_and_evaluate(key, train, test, cfg, progress=False)
  assert 0.0 <= m["robust_test_accuracy"] < m["final_test_accuracy"] - 0.05
  assert m["config"]["robust_eps"] == 0.3
  plain = vt.train_and_evaluate(key, train, test, dataclasses.replace(cfg, robust_eps=None),
                                progress=False)
  assert "robust_test_accuracy" not in plain  # and the training is the same run
  assert plain["final_test_accuracy"] == m["final_test_accuracy"]
  with pytest.raises(ConfigError, match="robust_eps"):
    dataclasses.replace(cfg, robust_eps=0.0).resolved()


# ------------------------------------------------------------------ registry

# One non-default value of every setting of every defense (by field name).
_SETTINGS = {"none": {}, "cutout": {"size": 3}, "mixup": {"alpha": 0.4},
             "cutmix": {"alpha": 0.3, "prob": 1.0},
             "at-linf": {"eps": 4 / 255, "steps": 3, "step_size": 1 / 255},
             "at-l2": {"eps": 0.25, "steps": 2, "step_size": 0.1},
             "at-nfgsm": {"eps": 4 / 255, "noise": 1.5, "step_size": 3 / 255},
             "jpeg": {"quality": 40}, "grayscale": {}, "bdr": {"bits": 3},
             "ortho": {"linear": "adam", "epochs": 2, "lr": 0.05, "batch_size": 64,
                       "fit_on": "projected", "augment": "victim", "project_test": True}}


def test_registry_names_match_the_cli_choices():
  from ntga.victims import _names
  assert defenses.NAMES == _names.DEFENSES == tuple(_SETTINGS)
  for name in defenses.NAMES:
    cfg = defenses.get(name)
    assert cfg.name == name and isinstance(cfg, defenses.DefenseConfig)
    hash(cfg)  # frozen: usable inside the jit-static step spec


def test_registry_rejects_unknown_names_and_settings():
  with pytest.raises(ConfigError, match="unknown defense 'magic'"):
    defenses.get("magic")
  with pytest.raises(ConfigError, match="no setting bits"):
    defenses.get("jpeg", bits=2)
  with pytest.raises(ConfigError, match="no setting quality"):
    defenses.get("none", quality=10)
  with pytest.raises(ConfigError, match="at_steps"):
    defenses.from_flat("jpeg", at_steps=1)
  with pytest.raises(ConfigError, match="quality"):
    defenses.get("jpeg", quality=96).resolved()


@pytest.mark.parametrize("name", list(_SETTINGS))
def test_each_defense_round_trips_through_from_flat(name):
  cfg = defenses.get(name, **_SETTINGS[name])
  assert cfg.settings() == _SETTINGS[name]
  flat = cfg.flat_settings()
  assert set(flat) == set(defenses.flat_keys(name))
  train = vt.TrainConfig.from_flat(victim="cnn", defense=name, **flat)
  assert train.defense == cfg and train.to_flat()["defense"] == name
  assert vt.TrainConfig.from_flat(**train.to_flat()) == train
  assert train.resolved().defense == cfg.resolved()


def test_from_flat_rejects_another_defenses_setting():
  with pytest.raises(ConfigError, match="at_steps.*defense jpeg"):
    vt.TrainConfig.from_flat(victim="cnn", defense="jpeg", at_steps=3)
  with pytest.raises(ConfigError, match="cutout_size.*defense mixup"):
    vt.TrainConfig.from_flat(victim="cnn", defense="mixup", cutout_size=4)


def test_at_defaults_follow_the_norm():
  linf = defenses.get("at-linf").resolved()
  assert (linf.eps, linf.step_size, linf.steps) == (8 / 255, 2 / 255, 10)
  l2 = defenses.get("at-l2", steps=5).resolved()
  assert (l2.eps, l2.step_size) == (0.5, pytest.approx(2.5 * 0.5 / 5))
  assert defenses.get("at-linf", eps=0.1).resolved().step_size == pytest.approx(0.025)
  nfgsm = defenses.get("at-nfgsm").resolved()  # de Jorge et al.: --unif 2 --alpha 8
  assert (nfgsm.eps, nfgsm.noise, nfgsm.step_size) == (8 / 255, 2.0, 8 / 255)
  assert defenses.get("at-nfgsm", eps=0.1).resolved().step_size == pytest.approx(0.1)
  with pytest.raises(ConfigError, match="noise"):
    defenses.get("at-nfgsm", noise=-1.0).resolved()
  with pytest.raises(ConfigError, match="at_steps.*defense at-nfgsm"):
    vt.TrainConfig.from_flat(victim="cnn", defense="at-nfgsm", at_steps=3)


def test_nfgsm_steps_from_a_wide_start_without_projecting_back(getkey):
  """N-FGSM: start uniform in +-noise*eps, one sign step of eps, clipped to [0, 1] only."""
  x = jnp.full((64, 8, 8, 3), 0.5, jnp.float32)
  eps = 8 / 255
  loss = lambda z: jnp.sum(z)  # noqa: E731  (gradient +1 everywhere)
  key = getkey()
  adv = adversarial.nfgsm(key, loss, x, eps=eps)
  start = jax.random.uniform(key, x.shape, x.dtype, -2 * eps, 2 * eps)
  np.testing.assert_allclose(adv - x, start + eps, atol=1e-6)  # the step is +eps exactly
  assert float(jnp.max(adv - x)) > 2.5 * eps  # beyond the eps-ball: not projected back
  assert float(jnp.min(adv - x)) >= -eps - 1e-6
  no_noise = adversarial.nfgsm(key, lambda z: -jnp.sum(z), x, eps=eps, noise=0.0)
  np.testing.assert_allclose(no_noise, x - eps, atol=1e-6)  # plain FGSM from x
  edge = adversarial.nfgsm(key, loss, jnp.ones_like(x), eps=eps)
  assert float(edge.max()) <= 1.0 and float(edge.min()) >= 1.0 - 2 * eps - 1e-6


def test_defense_behaviour(getkey):
  x = _natural_images(4, 8)
  y = np.arange(4) % 2
  same = defenses.get("none")
  assert same.prepare_images(getkey(), x, y, 2) is x
  np.testing.assert_array_equal(defenses.get("jpeg", quality=20).prepare_images(
      getkey(), x, y, 2), defenses.jpeg_compress(x, 20))
  np.testing.assert_array_equal(defenses.get("bdr", bits=1).prepare_images(
      getkey(), x, y, 2), defenses.bit_depth_reduction(x, 1))
  assert defenses.get("ortho", epochs=1).prepare_images(
      getkey(), x, y, 2).dtype == np.float32
  xf = jnp.asarray(x, jnp.float32) / 255
  t = jax.nn.one_hot(y, 2)
  assert same.transform_batch(getkey(), xf, t, None) == (xf, t)
  cut, t_cut = defenses.get("cutout", size=2).transform_batch(getkey(), xf, t, None)
  cut, xf_ = np.asarray(cut), np.asarray(xf)
  assert np.all((cut == xf_) | (cut == 0))  # only zeroes pixels ...
  changed = (cut != xf_).reshape(4, -1).sum(1)
  assert changed.min() >= 1 and changed.max() <= 2 * 2 * 3  # ... of one 2x2 square
  assert t_cut is t
  loss = lambda z: jnp.sum(z ** 2)  # noqa: E731
  adv, _ = defenses.get("at-linf", steps=2).resolved().transform_batch(
      getkey(), xf, t, loss)
  assert 0 < float(jnp.abs(adv - xf).max()) <= 8 / 255 + 1e-6
  assert float(loss(adv)) > float(loss(xf))
  # adversarial training draws from its own key stream, batch defenses from one
  assert defenses.get("at-l2").key_stream != defenses.get("mixup").key_stream


# ------------------------------------------------------------------ squeezing

def test_jpeg_changes_pixels_more_at_low_quality():
  x = _natural_images()
  q10, q90 = defenses.jpeg_compress(x, 10), defenses.jpeg_compress(x, 90)
  assert q10.shape == x.shape and q10.dtype == np.uint8
  err10 = np.abs(q10.astype(int) - x).mean()
  err90 = np.abs(q90.astype(int) - x).mean()
  assert err10 > 0.5 and err10 > err90
  gray = defenses.jpeg_compress(x[..., :1], 10)
  assert gray.shape == x[..., :1].shape and (gray != x[..., :1]).any()
  with pytest.raises(ConfigError):
    defenses.jpeg_compress(x, 0)


def test_grayscale_makes_channels_equal():
  x = _natural_images()
  g = defenses.grayscale(x)
  assert g.shape == x.shape and g.dtype == np.uint8
  assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
  red = np.zeros((1, 1, 1, 3), np.uint8)
  red[..., 0] = 255
  assert int(defenses.grayscale(red)[0, 0, 0, 0]) == 76  # 0.299 * 255
  one = x[..., :1]
  np.testing.assert_array_equal(defenses.grayscale(one), one)


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_bdr_leaves_2_to_the_bits_levels(bits):
  ramp = np.arange(256, dtype=np.uint8).reshape((1, 16, 16, 1))
  out = defenses.bit_depth_reduction(ramp, bits)
  levels = np.unique(out)
  assert len(levels) == 2 ** bits
  np.testing.assert_array_equal(levels, np.round(np.linspace(0, 255, 2 ** bits)))
  assert np.abs(out.astype(int) - ramp).max() <= 255 / (2 ** bits - 1) / 2 + 1


# ------------------------------------------------------------------ batch augs

def test_crop_flip_cutout(getkey):
  x = jax.random.uniform(getkey(), (4, 8, 8, 3), minval=0.1, maxval=1.0)
  c = defenses.random_crop(getkey(), x, 2)
  assert c.shape == x.shape
  f = defenses.random_flip(getkey(), x)
  for i in range(4):
    assert (np.allclose(f[i], x[i]) or np.allclose(f[i], x[i, :, ::-1]))
  cut = np.asarray(defenses.cutout(getkey(), x, 4))
  zeros = (cut == 0).all(-1).sum(axis=(1, 2))
  assert (zeros >= 1).all() and (zeros <= 16).all()


def test_mixup_and_cutmix_targets(getkey):
  x = jax.random.uniform(getkey(), (6, 8, 8, 1))
  t = jax.nn.one_hot(jnp.arange(6) % 3, 3)
  xm, tm = defenses.mixup(getkey(), x, t)
  np.testing.assert_allclose(tm.sum(-1), 1.0, rtol=1e-6)
  assert xm.shape == x.shape
  xc, tc = defenses.cutmix(getkey(), x, t, prob=1.0)
  np.testing.assert_allclose(tc.sum(-1), 1.0, rtol=1e-6)
  changed = float((np.asarray(xc) != np.asarray(x)).any(-1).mean())
  # the label weight of the pasted images equals the pasted area (up to
  # pixels that happen to be pasted from the image itself)
  kept = np.asarray((tc * t).sum(-1)).min()
  assert changed <= 1 - kept + 1e-6


def test_rotate_shear_scale_geometry(getkey):
  from ntga.victims import _augment
  x = jax.random.uniform(getkey(), (3, 6, 6, 2), minval=0.1, maxval=1.0)
  same = _augment.rotate_shear_scale(getkey(), x, degrees=0.0, shear=0.0, scale=(1.0, 1.0))
  np.testing.assert_array_equal(same, x)
  quarter = jnp.tile(jnp.array([[0.0, -1.0], [1.0, 0.0]])[None], (3, 1, 1))
  turned = np.asarray(_augment._warp_nearest(x, quarter))
  assert any(np.array_equal(turned, np.rot90(np.asarray(x), k, axes=(1, 2))) for k in (1, 3))
  shrunk = _augment._warp_nearest(x, jnp.tile(2.0 * jnp.eye(2)[None], (3, 1, 1)))
  assert float(jnp.mean(shrunk == 0)) > 0.3  # zoomed out: the border reads outside, fill 0
  warped = _augment.rotate_shear_scale(getkey(), x)
  assert warped.shape == x.shape and float(warped.max()) <= float(x.max())


def test_color_jitter_factors_and_range(getkey):
  from ntga.victims import _augment
  x = jax.random.uniform(getkey(), (5, 4, 4, 3))
  np.testing.assert_allclose(_augment.color_jitter(getkey(), x, strength=0.0), x, atol=1e-6)
  out = np.asarray(_augment.color_jitter(getkey(), 3.0 * x - 1.0))  # projected floats
  assert out.min() >= 0.0 and out.max() <= 1.0
  grey = jnp.repeat(x[..., :1], 3, axis=-1)  # saturation leaves grey images grey
  g = np.asarray(_augment.color_jitter(getkey(), grey))
  np.testing.assert_allclose(g[..., 0], g[..., 2], atol=1e-6)
  assert np.abs(np.asarray(_augment.color_jitter(getkey(), x)) - np.asarray(x)).max() > 0.01


def test_ortho_augments_like_its_authors_unless_told_not_to(getkey):
  x = jax.random.uniform(getkey(), (6, 8, 8, 3))
  t = jax.nn.one_hot(jnp.arange(6) % 2, 2)
  plain = defenses.get("ortho", augment="victim").resolved()
  assert plain.transform_batch(getkey(), x, t, None) == (x, t)
  xa, ta = defenses.get("ortho").resolved().transform_batch(getkey(), x, t, None)
  assert xa.shape == x.shape and float(jnp.abs(xa - x).max()) > 0.05
  np.testing.assert_allclose(ta.sum(-1), 1.0, rtol=1e-6)
  with pytest.raises(ConfigError, match="augment"):
    defenses.get("ortho", augment="strong").resolved()


@pytest.mark.parametrize("defense", ["cutout", "mixup", "cutmix", "jpeg", "grayscale",
                                     "bdr", "ortho"])
def test_every_defense_trains(key, defense):
  x = _natural_images(8, 8)
  data = Dataset(x, np.arange(8) % 2, ("a", "b"))
  settings = {"ortho_epochs": 2} if defense == "ortho" else {}
  cfg = vt.TrainConfig.from_flat(victim="fnn-relu", defense=defense, epochs=1,
                                 batch_size=4, eval_batch_size=4, **settings)
  m = vt.train_and_evaluate(key, data, data, cfg, progress=False)
  assert np.isfinite(m["train_loss"][0])


def test_ortho_projects_the_test_images_only_when_told(key):
  x = _natural_images(8, 8)
  y, x_test = np.arange(8) % 2, _natural_images(6, 8)[::-1].copy()
  proj, same = defenses.get("ortho", epochs=2).prepare(key, x, y, 2, x_test)
  assert same is x_test  # the authors' default: test images as given
  proj_too, moved = defenses.get("ortho", epochs=2, project_test=True).prepare(
      key, x, y, 2, x_test)
  np.testing.assert_array_equal(proj_too, proj)  # training images alike
  _, q = defenses.orthogonal_projection(key, x.astype(np.float32) / 255.0, y, 2,
                                        epochs=2)
  assert moved.dtype == np.float32 and moved.shape == x_test.shape
  flat = moved.reshape((len(moved), -1))
  np.testing.assert_allclose(flat @ q, 0.0, atol=1e-4)  # the same basis removed
  np.testing.assert_allclose(  # and nothing else
      flat + (x_test.reshape((6, -1)) / 255.0 @ q) @ q.T, x_test.reshape((6, -1)) / 255.0,
      atol=1e-5)
  with pytest.raises(ConfigError, match="project_test"):
    defenses.get("ortho", project_test="yes").resolved()
  with pytest.raises(ConfigError, match="robust_eps cannot be combined"):
    vt.TrainConfig.from_flat(victim="fnn", defense="ortho", ortho_project_test=True,
                             robust_eps=8 / 255).resolved()


def test_ortho_with_projected_test_images_trains_and_evaluates(key):
  x = _natural_images(8, 8)
  data = Dataset(x, np.arange(8) % 2, ("a", "b"))
  cfg = vt.TrainConfig.from_flat(victim="fnn-relu", defense="ortho", epochs=1,
                                 batch_size=4, eval_batch_size=4, ortho_epochs=2,
                                 ortho_project_test=True)
  m = vt.train_and_evaluate(key, data, data, cfg, progress=False)
  assert 0.0 <= m["final_test_accuracy"] <= 1.0 and np.isfinite(m["test_loss"][0])


# ------------------------------------------------------------------ ortho

def _planted_linear(key, n=1200, k=4, size=8):
  """Random noise images plus a class-wise pattern: only the pattern is learnable."""
  rng = np.random.default_rng(0)
  y = rng.integers(0, k, n)
  patterns = rng.choice([-1.0, 1.0], (k, size * size)) * 0.08
  noise = rng.uniform(0.3, 0.7, (n, size * size))
  x = (noise + patterns[y]).reshape((n, size, size, 1)).astype(np.float32)
  return x, y, patterns


# The authors' SGD with batches of 16 (75 steps an epoch on this toy set; their
# 1024 suit 50,000 CIFAR images), and the earlier Adam definition.
@pytest.mark.parametrize("settings", [{"linear": "sgd", "batch_size": 16},
                                      {"linear": "adam"}])
def test_orthogonal_projection_removes_planted_pattern(key, settings):
  x, y, patterns = _planted_linear(key)
  from ntga.victims import _linear
  _, before = _linear.fit_linear(jax.random.key(1), x, y, 4, bias=False)
  assert before == 1.0  # a linear model separates the pattern perfectly
  proj, q = defenses.orthogonal_projection(key, x, y, 4, **settings)
  assert proj.shape == x.shape and q.shape == (64, 4)
  np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
  flat = proj.reshape((len(x), -1))
  np.testing.assert_allclose(flat @ q, 0.0, atol=1e-4)  # nothing left along Q
  _, after = _linear.fit_linear(jax.random.key(1), proj, y, 4, bias=True)
  assert after < 0.6  # chance is 0.25; the pattern is gone
  # the class means no longer differ along the planted directions
  means = np.stack([flat[y == c].mean(0) for c in range(4)])
  spread_before = np.ptp(np.stack([x.reshape((len(x), -1))[y == c].mean(0)
                                   for c in range(4)]) @ patterns.T, axis=0)
  spread_after = np.ptp(means @ patterns.T, axis=0)
  assert (spread_after < 0.2 * spread_before).all()


def test_separability_of_planted_perturbations(key):
  rng = np.random.default_rng(0)
  n, k = 800, 4
  clean = rng.integers(0, 256, (n, 6, 6, 1)).astype(np.uint8)
  y = rng.integers(0, k, n)
  pattern = rng.choice([-8, 8], (k, 6, 6, 1))
  poisoned = np.clip(clean.astype(int) + pattern[y], 0, 255).astype(np.uint8)
  res = separability.linear_separability(key, poisoned, y, k, x_clean=clean)
  assert res["perturbation_accuracy"] >= 0.99
  assert res["clean_accuracy"] < 0.6
  assert res["perturbation_linf"] == pytest.approx(8 / 255)
  with pytest.raises(DataError):
    separability.linear_separability(key, poisoned, y, k, x_clean=clean[:10])
