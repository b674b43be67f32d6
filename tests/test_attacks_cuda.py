"""CUDA as the authors' code computes it, and the earlier variant as options (issue 14).

Reference: https://github.com/vinusankars/Convolution-based-Unlearnability,
``final_filter_unlearnable.py``: one 3x3 filter per class shared by the three
channels, zero padding, output greyed when ``grayscale``, divided by the
image's maximum, times 255, truncated to uint8.
"""

import jax
import numpy as np
import pytest

from ntga.attacks import cuda

_OLD = dict(filters="per-channel", rounding="nearest", mix_draw="exact")


def _data(n=12, h=6, w=7, c=3, k=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
  y = np.arange(n, dtype=np.int64) % k
  return x, y


def _reference(img: np.ndarray, f: np.ndarray, grayscale: bool, rounding: str) -> np.ndarray:
  """Depthwise zero-padded cross-correlation, grey, divide by max, quantise."""
  h, w, c = img.shape
  s = f.shape[0]
  p = s // 2
  xp = np.pad(img.astype(np.float64) / 255, ((p, p), (p, p), (0, 0)))
  out = np.zeros((h, w, c))
  for r in range(h):
    for q in range(w):
      out[r, q] = (xp[r:r + s, q:q + s, :] * f).sum(axis=(0, 1))
  if grayscale:
    out[:] = out.mean(-1, keepdims=True)
  out = out / out.max() * 255
  out = np.floor(out) if rounding == "floor" else np.round(out)
  return np.clip(out, 0, 255).astype(np.uint8)


def test_default_is_the_authors_setting():
  cfg = cuda.CUDAConfig()
  assert (cfg.filters, cfg.grayscale, cfg.rounding, cfg.mix_draw) == (
      "shared", False, "floor", "bernoulli")
  assert (cfg.blur_size, cfg.pb, cfg.mix) == (3, 0.3, 1.0)


def test_one_filter_shared_by_all_channels(key):
  f = np.asarray(cuda.filters(key, 5, 3, cuda.CUDAConfig()))
  assert f.shape == (5, 3, 3, 3)
  assert (f == f[..., :1]).all()
  for cls in range(5):
    w = f[cls, ..., 0]
    assert (w == 1.0).sum() == 1  # one tap at the centre parameter 1.0
    rest = w[w != 1.0]
    assert (rest >= 0).all() and (rest < 0.3).all()
  assert len({f[c].tobytes() for c in range(5)}) == 5


def test_per_channel_option_draws_a_filter_per_channel(key):
  f = np.asarray(cuda.filters(key, 4, 3, cuda.CUDAConfig(filters="per-channel")))
  assert ((f == 1.0).sum(axis=(1, 2)) == 1).all()
  for cls in range(4):
    assert (f[cls, ..., 0] != f[cls, ..., 1]).any() and (f[cls, ..., 1] != f[cls, ..., 2]).any()
  # The shared draw is the per-channel draw's first channel stream with C = 1.
  g = np.asarray(cuda.filters(key, 4, 1, cuda.CUDAConfig(filters="per-channel")))
  np.testing.assert_array_equal(g[..., 0], np.asarray(cuda.filters(key, 4, 3, cuda.CUDAConfig()))[..., 0])


@pytest.mark.parametrize("kw", [{}, {"grayscale": True}, _OLD, dict(_OLD, grayscale=True)])
def test_poison_matches_reference(kw, key):
  x, y = _data()
  cfg = cuda.CUDAConfig(**kw)
  xp = cuda.poison(key, x, y, cfg)
  f = np.asarray(cuda.filters(key, 3, 3, cfg))
  for i in range(len(x)):
    ref = _reference(x[i], f[y[i]], cfg.grayscale, cfg.rounding)
    diff = np.abs(xp[i].astype(int) - ref)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.95, i  # float32 vs float64
    assert xp[i].max() == 255


def test_grayscale_greys_the_output(key):
  x, y = _data()
  xp = cuda.poison(key, x, y, cuda.CUDAConfig(grayscale=True))
  assert (xp[..., 0] == xp[..., 1]).all() and (xp[..., 1] == xp[..., 2]).all()
  colour = cuda.poison(key, x, y)
  assert (colour[..., 0] != colour[..., 1]).any()
  # With per-channel filters the grey output is still grey.
  xq = cuda.poison(key, x, y, cuda.CUDAConfig(grayscale=True, filters="per-channel"))
  assert (xq[..., 0] == xq[..., 2]).all()


def test_truncation_against_rounding():
  x = np.zeros((1, 3, 3, 1), np.uint8)
  x[0, 1, 1, 0] = 100
  f = np.zeros((1, 3, 3, 1), np.float32)
  f[0, 0, 0, 0], f[0, 1, 1, 0] = 0.5, 1.0
  floor = np.asarray(cuda.apply_filters(x, f))[0, ..., 0]
  near = np.asarray(cuda.apply_filters(x, f, rounding="nearest"))[0, ..., 0]
  np.testing.assert_array_equal(floor, [[0, 0, 0], [0, 255, 0], [0, 0, 127]])
  np.testing.assert_array_equal(near, [[0, 0, 0], [0, 255, 0], [0, 0, 128]])


def test_deterministic_by_key(getkey):
  x, y = _data()
  k = getkey()
  for kw in ({}, _OLD):
    cfg = cuda.CUDAConfig(**kw)
    np.testing.assert_array_equal(cuda.poison(k, x, y, cfg), cuda.poison(k, x, y, cfg))
    assert (cuda.poison(getkey(), x, y, cfg) != cuda.poison(k, x, y, cfg)).any()


def test_bernoulli_mix(key):
  x, y = _data(n=400, h=4, w=4)
  cfg = cuda.CUDAConfig(mix=0.3)
  changed = (cuda.poison(key, x, y, cfg) != x).any(axis=(1, 2, 3))
  np.testing.assert_array_equal(changed, cuda.mix_mask(jax.random.fold_in(key, 1), 400, cfg))
  assert 80 <= changed.sum() <= 160  # Binomial(400, 0.3): mean 120, sd 9.2
  counts = {int(cuda.mix_mask(jax.random.key(s), 400, cfg).sum()) for s in range(8)}
  assert len(counts) > 1  # the count varies with the key
  exact = cuda.CUDAConfig(mix=0.3, mix_draw="exact")
  assert {int(cuda.mix_mask(jax.random.key(s), 400, exact).sum()) for s in range(8)} == {120}
  assert cuda.mix_mask(key, 50, cuda.CUDAConfig(mix=1.0)).all()
  assert not cuda.mix_mask(key, 50, cuda.CUDAConfig(mix=0.0)).any()
