"""OPS against a brute-force reading of the authors' search (issue 14).

The reference below loops over classes, positions and corner colours and scores
each (position, colour) with the mean and population std of |s - x| over the
class's images and channels together, as the authors' ``pixel_search`` does
(https://github.com/cychomatica/One-Pixel-Shotcut, ``perturb.py``). It claims
pairs greedily in class order, excluding pairs taken by earlier classes.
"""

import numpy as np
import pytest

from ntga.attacks import ops


def _data(n, h, w, c, k, seed):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
  y = np.arange(n, dtype=np.int64) % k
  return x, y


def _corner(index: int, c: int) -> np.ndarray:
  """Colour ``index`` as 0/1 channel values, channel 0 the most significant bit."""
  return np.array([(index >> (c - 1 - ch)) & 1 for ch in range(c)], np.float64)


def _pooled(values: np.ndarray, s: np.ndarray) -> float:
  d = np.abs(s - values)  # (N_k, C), one pool
  return d.mean() / max(d.std(), 1e-6)


def _channel_sum(values: np.ndarray, s: np.ndarray) -> float:
  d = np.abs(s - values).sum(-1)  # (N_k,)
  return d.mean() / max(d.std(), 1e-6)


def _brute_search(x, y, stat):
  """Each class's best (row, col, colour) not claimed by an earlier class."""
  n, h, w, c = x.shape
  xf = x.astype(np.float64) / 255
  taken, picks = set(), []
  for cls in range(int(y.max()) + 1):
    xs = xf[y == cls]
    best, arg = -np.inf, None
    for r in range(h):
      for col in range(w):
        for j in range(2 ** c):
          if (r, col, j) in taken:
            continue
          v = stat(xs[:, r, col, :], _corner(j, c))
          if v > best:  # strict: ties keep the first in (row, col, colour) order
            best, arg = v, (r, col, j)
    taken.add(arg)
    picks.append(arg)
  return picks


def test_pooled_scores_match_bruteforce():
  x, y = _data(n=15, h=3, w=4, c=3, k=3, seed=1)
  sc = ops.scores(x, y)
  xf = x.astype(np.float64).reshape(15, -1, 3) / 255
  for cls in range(3):
    for p in range(12):
      for j in range(8):
        ref = _pooled(xf[y == cls, p], _corner(j, 3))
        np.testing.assert_allclose(sc[cls, p, j], ref, rtol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("score,stat", [("pooled", _pooled), ("channel-sum", _channel_sum)])
def test_search_matches_bruteforce(seed, score, stat):
  x, y = _data(n=30, h=4, w=4, c=3, k=5, seed=seed)
  pos, col = ops.search(x, y, ops.OPSConfig(score=score))
  for cls, (r, c, j) in enumerate(_brute_search(x, y, stat)):
    assert tuple(pos[cls, 0]) == (r, c), (cls, score)
    np.testing.assert_array_equal(col[cls, 0], _corner(j, 3).astype(np.uint8) * 255)


def test_statistics_disagree_on_random_images():
  # The two statistics are different methods: on random RGB images they pick
  # different pairs for most classes.
  x, y = _data(n=60, h=6, w=6, c=3, k=4, seed=7)
  a = ops.search(x, y, ops.OPSConfig(score="pooled"))
  b = ops.search(x, y, ops.OPSConfig(score="channel-sum"))
  same = [(a[0][k] == b[0][k]).all() and (a[1][k] == b[1][k]).all() for k in range(4)]
  assert sum(same) < 4


def test_only_the_pooled_statistic_finds_the_planted_pixel():
  # Class 0, pixel (1, 1): R = a, G = 255 - a, B = 128 with a random. The
  # per-image channel sum against black is then constant, so the
  # channel-sum statistic rates (1, 1, black) as a perfectly stable deviation;
  # pooled over images and channels, those values spread over [0, 1] and the
  # pair is unremarkable. Pixel (2, 3) is dark grey with a little noise in
  # every channel: white deviates from it strongly and stably in the pool.
  rng = np.random.default_rng(3)
  x, y = _data(n=80, h=4, w=5, c=3, k=2, seed=3)
  rows = np.flatnonzero(y == 0)
  a = rng.integers(0, 256, len(rows))
  x[rows, 1, 1, 0] = a
  x[rows, 1, 1, 1] = 255 - a
  x[rows, 1, 1, 2] = 128
  x[rows, 2, 3, :] = rng.integers(20, 30, (len(rows), 3))
  pos, col = ops.search(x, y)
  assert tuple(pos[0, 0]) == (2, 3) and (col[0, 0] == 255).all()
  pos_s, col_s = ops.search(x, y, ops.OPSConfig(score="channel-sum"))
  assert tuple(pos_s[0, 0]) == (1, 1)
  assert (col_s[0, 0] == 0).all()


def test_single_channel_statistics_coincide():
  x, y = _data(n=24, h=5, w=5, c=1, k=3, seed=5)
  np.testing.assert_allclose(ops.scores(x, y, ops.OPSConfig(score="pooled")),
                             ops.scores(x, y, ops.OPSConfig(score="channel-sum")), rtol=1e-4)


def test_poison_writes_the_corner_colour():
  x, y = _data(n=20, h=4, w=4, c=3, k=2, seed=9)
  xp = ops.poison(None, x, y)
  pos, col = ops.search(x, y)
  for i in range(len(x)):
    r, c = pos[y[i], 0]
    np.testing.assert_array_equal(xp[i, r, c], col[y[i], 0])
    mask = np.ones((4, 4), bool)
    mask[r, c] = False
    np.testing.assert_array_equal(xp[i][mask], x[i][mask])
