"""Tests of the attack registry, ratio subsetting and the model-free poisoners."""

import dataclasses
import itertools

import jax
import numpy as np
import pytest

from ntga import attacks
from ntga.attacks import _common, cuda, ops, random_noise
from ntga.errors import ConfigError, DataError


def _data(n=16, h=8, w=8, c=3, k=4, lo=0, hi=256, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.integers(lo, hi, (n, h, w, c), dtype=np.uint8)
  y = np.arange(n, dtype=np.int64) % k
  return x, y


# --- registry -----------------------------------------------------------------

def test_names_and_get():
  assert set(attacks.names()) == {"ntga", "cuda", "ops", "em", "rem", "random"}
  for name in ("cuda", "ops", "em", "rem", "random"):
    atk = attacks.get(name)
    assert atk.name == name
    cfg = atk.config_cls()
    cfg.validate()
    for f in dataclasses.fields(cfg):  # types that `--set` parses
      assert f.type.removesuffix(" | None") in ("int", "float", "str", "bool"), (
          name, f.name, f.type)
  # What differs between attacks is a property of the config class.
  assert [n for n in attacks.names() if attacks.get(n).config_cls.secret_seed] == ["cuda"]
  assert [n for n in attacks.names() if attacks.get(n).config_cls.multi_process] == ["ntga"]
  assert [f.name for f in dataclasses.fields(attacks.Attack)] == ["name", "config_cls", "poison"]


def test_unknown_attack_lists_names():
  with pytest.raises(ConfigError, match="known attacks: ntga, cuda, ops, em, rem, random"):
    attacks.get("nope")


@pytest.mark.parametrize("cls,kw", [
    (random_noise.RandomConfig, dict(eps=0.0)),
    (random_noise.RandomConfig, dict(eps=1.5)),
    (random_noise.RandomConfig, dict(mode="pixel")),
    (random_noise.RandomConfig, dict(eps="8/255")),
    (cuda.CUDAConfig, dict(blur_size=4)),
    (cuda.CUDAConfig, dict(pb=-0.1)),
    (cuda.CUDAConfig, dict(mix=1.1)),
    (cuda.CUDAConfig, dict(grayscale=1)),
    (cuda.CUDAConfig, dict(filters="depthwise")),
    (cuda.CUDAConfig, dict(rounding="up")),
    (cuda.CUDAConfig, dict(mix_draw="random")),
    (ops.OPSConfig, dict(sparsity=0)),
    (ops.OPSConfig, dict(sparsity=1.0)),
    (ops.OPSConfig, dict(score="sum")),
])
def test_config_validation(cls, kw):
  with pytest.raises(ConfigError):
    cls(**kw)
  with pytest.raises(ConfigError):
    dataclasses.replace(cls(), **kw)


def test_bad_inputs():
  x, y = _data()
  with pytest.raises(DataError, match="uint8"):
    random_noise.poison(jax.random.key(0), x.astype(np.float32), y)
  with pytest.raises(DataError, match="labels"):
    random_noise.poison(jax.random.key(0), x, y[:-1])


# --- ratio ----------------------------------------------------------------------

@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5, 1.0])
def test_apply_ratio(key, ratio):
  x, y = _data(n=20)
  xp = random_noise.poison(key, x, y)
  assert (xp != x).any(axis=(1, 2, 3)).all()
  out, mask = attacks.apply_ratio(jax.random.fold_in(key, 9), x, xp, ratio)
  assert mask.dtype == bool and mask.sum() == round(ratio * 20)
  changed = (out != x).any(axis=(1, 2, 3))
  np.testing.assert_array_equal(changed, mask)
  np.testing.assert_array_equal(out[mask], xp[mask])
  out2, mask2 = attacks.apply_ratio(jax.random.fold_in(key, 9), x, xp, ratio)
  np.testing.assert_array_equal(out, out2)


def test_apply_ratio_seeded_and_checked(key):
  x, y = _data(n=40)
  xp = random_noise.poison(key, x, y)
  _, m1 = attacks.apply_ratio(jax.random.key(1), x, xp, 0.5)
  _, m2 = attacks.apply_ratio(jax.random.key(2), x, xp, 0.5)
  assert (m1 != m2).any()
  with pytest.raises(ConfigError):
    attacks.apply_ratio(key, x, xp, 1.2)
  with pytest.raises(DataError):
    attacks.apply_ratio(key, x, xp[:3], 0.5)


def test_perturbation_stats():
  x = np.zeros((2, 2, 2, 1), np.uint8)
  xp = x.copy()
  assert attacks.perturbation_stats(x, xp)["psnr_db"] == float("inf")
  xp[0, 0, 0, 0] = 255
  s = attacks.perturbation_stats(x, xp)
  assert s["max_abs_delta_levels"] == 255
  np.testing.assert_allclose(s["psnr_db"], 10 * np.log10(8.0))


# --- shared properties of the model-free attacks -----------------------------------

_CONFIGS = {
    "random": random_noise.RandomConfig(),
    "random-class": random_noise.RandomConfig(mode="class"),
    "cuda": cuda.CUDAConfig(),
    "cuda-gray": cuda.CUDAConfig(grayscale=True),
    "cuda-legacy": cuda.CUDAConfig(filters="per-channel", rounding="nearest", mix_draw="exact"),
    "ops": ops.OPSConfig(sparsity=2),
    "ops-sum": ops.OPSConfig(sparsity=2, score="channel-sum"),
}


@pytest.mark.parametrize("name", list(_CONFIGS))
def test_common_properties(name, getkey):
  cfg = _CONFIGS[name]
  atk = attacks.get(name.split("-")[0])
  x, y = _data(lo=1, hi=255)
  k = getkey()
  xp = atk.poison(k, x, y, cfg)
  assert isinstance(xp, np.ndarray) and xp.dtype == np.uint8 and xp.shape == x.shape
  np.testing.assert_array_equal(atk.poison(k, jax.numpy.asarray(x), y, cfg), xp)
  other = atk.poison(getkey(), x, y, cfg)
  if name.startswith("ops"):  # deterministic by design: the key is unused
    np.testing.assert_array_equal(other, xp)
  else:
    assert (other != xp).any()
  # Order: each output row is derived from its own input row.
  if hasattr(cfg, "eps"):  # CUDA and OPS have no eps bound
    assert np.abs(xp.astype(int) - x).max() <= _common.eps_levels(cfg.eps)


@pytest.mark.parametrize("eps", [8 / 255, 3.7 / 255, 0.3, 0.5 / 255])
@pytest.mark.parametrize("mode", ["sample", "class"])
def test_random_eps_bound_after_rounding(eps, mode, key):
  x, y = _data(n=12)
  x[0] = 0
  x[1] = 255
  xp = random_noise.poison(key, x, y, random_noise.RandomConfig(eps=eps, mode=mode))
  delta = np.abs(xp.astype(int) - x)
  assert delta.max() <= int(np.floor(eps * 255 + 1e-6))
  if eps >= 3 / 255:
    assert delta.max() == int(np.floor(eps * 255 + 1e-6))


def test_random_classwise_shares_noise(key):
  x, y = _data(lo=40, hi=200)
  xp = random_noise.poison(key, x, y, random_noise.RandomConfig(mode="class", eps=16 / 255))
  d = xp.astype(int) - x
  for c in range(4):
    rows = d[y == c]
    assert (rows == rows[0]).all()
  assert (d[y == 0][0] != d[y == 1][0]).any()
  ds = random_noise.poison(key, x, y, random_noise.RandomConfig(eps=16 / 255)).astype(int) - x
  assert (ds[y == 0][0] != ds[y == 0][1]).any()


def test_random_batch_size_invariant(key):
  x, y = _data(n=10)
  a = random_noise.poison(key, x, y, random_noise.RandomConfig(batch_size=3))
  b = random_noise.poison(key, x, y, random_noise.RandomConfig(batch_size=64))
  np.testing.assert_array_equal(a, b)


# --- CUDA -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "per-channel"])
def test_cuda_one_filter_per_class(mode, key):
  x, y = _data(n=16)
  cfg = cuda.CUDAConfig(filters=mode)
  xp = cuda.poison(key, x, y, cfg)
  f = np.asarray(cuda.filters(key, 4, 3, cfg))
  assert f.shape == (4, 3, 3, 3)
  assert (f >= 0).all() and (f <= 1).all()
  assert ((f == 1.0).sum(axis=(1, 2)) >= 1).all()  # one tap set to 1 per channel
  assert ((f < 1.0) <= (f <= cfg.pb)).all()
  if mode == "shared":
    assert (f == f[..., :1]).all()
  else:
    assert (f[..., 0] != f[..., 1]).any()
  for c, d in itertools.permutations(range(4), 2):
    assert (f[c] != f[d]).any()
  for i in range(len(x)):
    own = cuda.apply_filters(x[i:i + 1], f[y[i]][None])[0]
    np.testing.assert_array_equal(own, xp[i])
    wrong = cuda.apply_filters(x[i:i + 1], f[(y[i] + 1) % 4][None])[0]
    assert (wrong != xp[i]).any()
  assert xp.reshape(16, -1).max(axis=1).min() == 255  # each image rescaled by its max


def test_cuda_filter_math():
  x = np.zeros((1, 3, 3, 1), np.uint8)
  x[0, 1, 1, 0] = 100
  f = np.zeros((1, 3, 3, 1), np.float32)
  f[0, 0, 0, 0], f[0, 1, 1, 0] = 0.5, 1.0
  out = cuda.apply_filters(x, f)[0, ..., 0]
  # same-padding correlation: output (2, 2) takes input (1, 1) through tap (0, 0);
  # 0.5 * 255 = 127.5 truncates to 127 (the authors' uint8 cast)
  np.testing.assert_array_equal(out, [[0, 0, 0], [0, 255, 0], [0, 0, 127]])


def test_cuda_mix(key):
  x, y = _data(n=20)
  xp = cuda.poison(key, x, y, cuda.CUDAConfig(mix=0.25, mix_draw="exact"))
  assert (xp != x).any(axis=(1, 2, 3)).sum() == 5


def test_cuda_grayscale_images(key):
  x, y = _data(n=8, c=1, k=2)
  xp = cuda.poison(key, x, y)
  assert xp.shape == x.shape and (xp != x).any()


# --- OPS --------------------------------------------------------------------------

@pytest.mark.parametrize("score", ["pooled", "channel-sum"])
@pytest.mark.parametrize("sparsity,c,k", [(1, 3, 4), (3, 3, 4), (2, 1, 5)])
def test_ops_pixels(sparsity, c, k, score, key):
  x, y = _data(n=20, c=c, k=k, lo=1, hi=255)
  xp = ops.poison(key, x, y, ops.OPSConfig(sparsity=sparsity, score=score))
  changed = (xp != x).any(axis=-1)
  assert (changed.sum(axis=(1, 2)) == sparsity).all()
  pairs = set()
  for cls in range(k):
    rows = np.flatnonzero(y == cls)
    pos = changed[rows[0]]
    assert (changed[rows] == pos).all()
    vals = xp[rows][:, pos]
    assert (vals == vals[0]).all() and set(np.unique(vals)) <= {0, 255}
    for (r, col), v in zip(np.argwhere(pos), vals[0]):
      pairs.add((cls, r, col, tuple(v)))
  assert len({p[1:] for p in pairs}) == len(pairs) == k * sparsity


@pytest.mark.parametrize("score", ["pooled", "channel-sum"])
def test_ops_scores_match_bruteforce(score):
  x, y = _data(n=12, h=3, w=4, c=2, k=3)
  sc = ops.scores(x, y, ops.OPSConfig(score=score))
  xf = x.astype(np.float64).reshape(12, -1, 2) / 255
  for cls in range(3):
    xs = xf[y == cls]
    for si, s in enumerate(itertools.product((0, 1), repeat=2)):
      d = np.abs(xs - np.array(s))  # (N_k, P, C)
      if score == "pooled":
        want = d.mean((0, 2)) / d.std((0, 2))
      else:
        want = d.sum(-1).mean(0) / d.sum(-1).std(0)
      np.testing.assert_allclose(sc[cls, :, si], want, rtol=2e-3)


def test_ops_finds_planted_pixel():
  x, y = _data(n=40, k=2, seed=3)
  x[y == 0, 5, 2, :] = 3  # class 0: nearly black, stable -> white is far and stable
  pos, col = ops.search(x, y)
  assert tuple(pos[0, 0]) == (5, 2) and (col[0, 0] == 255).all()
  assert tuple(pos[1, 0]) != (5, 2) or (col[1, 0] != 255).any()


def test_ops_conflict_resolution():
  x, y = _data(n=40, k=2, seed=4)
  x[:, 0, 0, :] = 2  # the same best pair for both classes
  pos, col = ops.search(x, y)
  assert tuple(pos[0, 0]) == (0, 0) and (col[0, 0] == 255).all()
  assert not (tuple(pos[1, 0]) == (0, 0) and (col[1, 0] == 255).all())


def test_ops_too_many_pixels():
  x, y = _data(n=4, h=2, w=2, c=1, k=2)
  with pytest.raises(ConfigError, match="sparsity"):
    ops.poison(None, x, y, ops.OPSConfig(sparsity=5))


def test_run_fingerprint_hashes_a_typed_key_by_its_data():
  from ntga import io  # pylint: disable=import-outside-toplevel
  x = np.arange(6, dtype=np.uint8)
  settings = {"steps": 3}
  key = jax.random.key(7)
  assert (io.run_fingerprint(settings, key, x)
          == io.run_fingerprint(settings, np.asarray(jax.random.key_data(key)), x))
  assert io.run_fingerprint(settings, key, x) != io.run_fingerprint(
      settings, jax.random.key(8), x)


def test_key_fingerprint():
  a = attacks.key_fingerprint(jax.random.key(42))
  assert a == attacks.key_fingerprint(jax.random.key(42))
  assert a != attacks.key_fingerprint(jax.random.key(43))
  raw = np.asarray(jax.random.key_data(jax.random.key(42))).tobytes().hex()
  assert len(a) == 16 and a not in raw and raw not in a
