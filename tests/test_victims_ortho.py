"""The orthogonal-projection defense as its authors' pipeline uses it (issue 14).

Sandoval-Segura et al., NeurIPS 2023; github.com/psandovalsegura/learn-from-unlearnable.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntga import data
from ntga.data._types import Dataset
from ntga.errors import ConfigError
from ntga.victims import _linear, _squeeze, _step, defenses
from ntga.victims import train as vt


def _images(n=60, size=4, c=3, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (n, size, size, c)).astype(np.uint8), rng.integers(0, 3, n)


def _sgd_reference(w0, x, y, k, epochs, lr, batch):
  """The authors' step 1 written out: SGD on batches in data order (the last
  one short), lr x0.1 at int(0.5 E) and int(0.75 E) (MultiStepLR)."""
  w = np.asarray(w0, np.float64)
  x = np.asarray(x, np.float64)
  milestones = [int(epochs * 0.5), int(epochs * 0.75)]
  for e in range(epochs):
    rate = lr * 0.1 ** sum(m <= e for m in milestones)
    for s in range(0, len(x), batch):
      xb, yb = x[s:s + batch], y[s:s + batch]
      z = xb @ w
      p = np.exp(z - z.max(1, keepdims=True))
      p /= p.sum(1, keepdims=True)
      p[np.arange(len(yb)), yb] -= 1.0
      w = w - rate * xb.T @ p / len(yb)
  return w


def test_sgd_linear_model_is_the_authors_step_one(key):
  x, y = _images(50)
  flat = x.reshape((50, -1)).astype(np.float32) / 255
  w = _squeeze._fit_linear_sgd(key, jnp.asarray(flat), jnp.asarray(y, jnp.int32),
                               num_classes=3, epochs=4, batch_size=16, lr=0.1)
  bound = 1 / np.sqrt(flat.shape[1])  # PyTorch's nn.Linear initialisation
  w0 = jax.random.uniform(key, (flat.shape[1], 3), jnp.float32, -bound, bound)
  np.testing.assert_allclose(w, _sgd_reference(w0, flat, y, 3, 4, 0.1, 16),
                             atol=2e-5)
  assert not np.allclose(w, w0, atol=1e-3)  # it did train


def test_sgd_linear_model_sees_the_classes_mixed_even_when_stored_sorted(key, monkeypatch):
  """The authors' batches follow CIFAR-10's fixed, class-mixed file order;
  images stored class by class (as the folder/tarball loaders return them)
  must not give single-class batches."""
  x = _images(120)[0]
  y = np.repeat(np.arange(3), 40)  # sorted: 40 of class 0, then 1, then 2
  seen = []
  real = _squeeze._fit_linear_sgd
  monkeypatch.setattr(_squeeze, "_fit_linear_sgd",
                      lambda k, xs, ys, **kw: (seen.append((np.asarray(xs), np.asarray(ys))),
                                               real(k, xs, ys, **kw))[1])
  defenses.orthogonal_projection(key, x.astype(np.float32) / 255, y, 3, batch_size=16,
                                 epochs=1)
  (xs, ys), = seen
  assert sorted(ys.tolist()) == y.tolist()  # every image, once
  first_batches = [set(ys[s:s + 16].tolist()) for s in range(0, 48, 16)]
  assert all(len(classes) > 1 for classes in first_batches)
  flat = x.reshape((len(x), -1)).astype(np.float32) / 255  # images keep their labels
  rows = {tuple(r): lab for r, lab in zip(flat.round(5), y)}
  assert all(rows[tuple(r)] == lab for r, lab in zip(xs.round(5), ys))


@pytest.mark.parametrize("linear", ["sgd", "adam"])
def test_projection_leaves_nothing_along_the_removed_directions(key, linear):
  x, y = _images(80)
  xf = x.astype(np.float32) / 255
  proj, q = defenses.orthogonal_projection(key, xf, y, 3, linear=linear,
                                           batch_size=16)
  flat, flat_p = xf.reshape((80, -1)), proj.reshape((80, -1))
  np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-5)
  np.testing.assert_allclose(flat_p @ q, 0.0, atol=1e-4)
  # only the span of Q is removed: the rest of each image is untouched
  np.testing.assert_allclose(flat_p + (flat @ q) @ q.T, flat, atol=1e-5)
  assert proj.dtype == np.float32 and (proj < 0).any()  # kept as floats, not clipped


def test_default_is_the_authors_definition():
  d = defenses.get("ortho").resolved()
  assert (d.linear, d.epochs, d.lr, d.batch_size, d.fit_on) == (
      "sgd", 20, 0.1, 1024, "unprojected")
  old = defenses.get("ortho", linear="adam").resolved()
  assert (old.lr, old.batch_size) == (1e-2, 256)
  for bad in ({"linear": "lbfgs"}, {"fit_on": "test"}, {"batch_size": 0}):
    with pytest.raises(ConfigError, match="ortho"):
      defenses.get("ortho", **bad).resolved()


def test_adam_option_reproduces_the_earlier_projection(key):
  x, y = _images(70)
  got = defenses.get("ortho", linear="adam", epochs=3).prepare_images(key, x, y, 3)
  # the earlier definition, written out: Adam fit (zero init, shuffled batches
  # of 256), QR of W, projection
  flat = x.astype(np.float32).reshape((70, -1)) / 255.0
  params, _ = _linear.fit_linear(key, flat, y, 3, bias=False, epochs=3, lr=1e-2)
  q = np.asarray(jnp.linalg.qr(params["w"])[0], np.float32)
  np.testing.assert_array_equal(got, (flat - (flat @ q) @ q.T).reshape(x.shape))
  new = defenses.get("ortho", epochs=3).prepare_images(key, x, y, 3)
  assert not np.allclose(new, got, atol=1e-3)  # the default differs


@pytest.mark.parametrize("fit_on", ["unprojected", "projected"])
def test_victim_statistics_come_from_the_named_images(key, monkeypatch, fit_on):
  x, y = _images(16, 8)
  train = Dataset(x, y, ("a", "b", "c"))
  seen = []
  real = _step.models.fit_data
  monkeypatch.setattr(_step.models, "fit_data",
                      lambda model, imgs: (seen.append(np.asarray(imgs)), real(model, imgs)))
  cfg = vt.TrainConfig.from_flat(victim="fnn-relu", defense="ortho", epochs=1,
                                 batch_size=8, eval_batch_size=8, ortho_epochs=1,
                                 ortho_fit_on=fit_on)
  vt.train_and_evaluate(key, train, train, cfg, progress=False)
  (fitted,) = seen
  if fit_on == "unprojected":
    np.testing.assert_array_equal(fitted, x)
  else:
    assert fitted.dtype == np.float32
    expected = vt.prepare_train_images(jax.random.fold_in(key, 2), x, y, 3, cfg.resolved())
    np.testing.assert_array_equal(fitted, expected)


def test_projected_images_go_through_crop_flip(key, monkeypatch):
  x, y = _images(16, 8)
  train = Dataset(x, y, ("a", "b", "c"))
  cfg = vt.TrainConfig.from_flat(victim="fnn-relu", defense="ortho", epochs=1,
                                 batch_size=8, eval_batch_size=8, ortho_epochs=2,
                                 augment="crop-flip", crop_pad=2)
  before, after = [], []
  real = _step.defenses.random_crop

  def spy(k, xb, pad):
    out = real(k, xb, pad)
    jax.debug.callback(lambda a, b: (before.append(np.asarray(a)), after.append(np.asarray(b))),
                       xb, out)
    return out

  monkeypatch.setattr(_step.defenses, "random_crop", spy)
  jax.clear_caches()  # trace the step afresh, with the spy
  vt.train_and_evaluate(key, train, train, cfg, progress=False)
  assert len(before) == 2  # both steps of the epoch
  proj = vt.prepare_train_images(jax.random.fold_in(key, 2), x, y, 3,
                                 cfg.resolved()).reshape((16, -1))
  for batch in before:  # the augmentation sees the projected floats ...
    for row in batch.reshape((len(batch), -1)):
      assert np.abs(proj - row).max(axis=1).min() < 1e-6
  # ... and changes them
  assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_digits_end_to_end(key):
  train, test = data.load("digits", "train"), data.load("digits", "test")
  cfg = vt.TrainConfig.from_flat(victim="fnn-relu", defense="ortho", epochs=1)
  m = vt.train_and_evaluate(key, train, test, cfg, progress=False)
  assert np.isfinite(m["train_loss"][0])
  assert m["final_test_accuracy"] > 0.3  # chance is 0.1
  assert m["config"]["ortho_linear"] == "sgd" and m["config"]["ortho_lr"] == 0.1
