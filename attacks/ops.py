"""OPS: One-Pixel Shortcut (Wu, Chen, Li, Zhang, Wang, ICLR 2023).

For every class, OPS picks a pixel position and one of the 2^C corner colours
(each channel 0 or 255) that deviates most *stably* from that pixel in the
class's images, then sets that pixel to that colour in every image of the class.
The score of (position p, colour s) for class k is

  mean_i D_i / std_i D_i,  D_i = sum_c |x_i[p, c] - s_c|  over images i of class k.

Because s_c is 0 or 1, D_i is linear in x_i[p]: D_i = sum_c s_c + sum_c (1 - 2 s_c)
x_i[p, c]. Its mean and variance follow from each class's per-pixel channel means
and covariances, so the whole search over positions and colours is two
vectorised passes over the data (seconds for CIFAR-10) instead of a loop.

Classes claim (position, colour) pairs greedily in class-index order and never
reuse a pair claimed by an earlier class. With ``sparsity`` k > 1 each class gets
its k best pairs at k distinct positions.

OPS is deterministic: the key is accepted for the common interface but unused,
so different keys give the same output. It is an L0 attack (no eps).

Example:
  >>> x_p = poison(jax.random.key(0), x, y, OPSConfig(sparsity=1))
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from ntga.attacks import _common
from ntga.errors import ConfigError
from ntga.protocol import AttackConfig, RunContext

_STD_FLOOR = 1e-6


@dataclasses.dataclass(frozen=True, kw_only=True)
class OPSConfig(AttackConfig):
  """Settings of OPS.

  Attributes:
    sparsity: pixels set per image (k >= 1); paper: 1.
    batch_size: images per jitted chunk of the statistics passes (memory only).
  """

  sparsity: int = 1
  batch_size: int = 4096

  def __post_init__(self):
    self.validate()

  def validate(self):
    """Raises ConfigError for out-of-range settings."""
    _common.check_types(self)
    _common.check_range(self, "sparsity", 1, 1 << 30)
    _common.check_range(self, "batch_size", 1, 1 << 30)


@functools.partial(jax.jit, static_argnames="k")
def _sums(x, y, k):
  xf = x.astype(jnp.float32).reshape(x.shape[0], -1, x.shape[-1]) / 255.0
  return jax.ops.segment_sum(xf, y, num_segments=k)


@functools.partial(jax.jit, static_argnames="k")
def _cov_sums(x, y, mean, k):
  xf = x.astype(jnp.float32).reshape(x.shape[0], -1, x.shape[-1]) / 255.0
  d = xf - mean[y]
  return jax.ops.segment_sum(d[..., :, None] * d[..., None, :], y, num_segments=k)


def _colours(c: int) -> np.ndarray:
  """All 2^C corner colours as a (2^C, C) 0/1 array."""
  return np.array(list(itertools.product((0, 1), repeat=c)), np.float32)


def scores(x, y, config: OPSConfig = OPSConfig()) -> np.ndarray:
  """The OPS objective mean(D)/std(D) for every class, position and colour.

  Args:
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    config: settings (batch size).

  Returns:
    float32 array (K, H*W, 2^C); larger is a more stable deviation.
  """
  x, y = _common.check_inputs(x, y)
  k = _common.num_classes(y)
  b = config.batch_size
  count = np.bincount(y, minlength=k).astype(np.float32)
  total = sum(np.asarray(_sums(x[i:i + b], y[i:i + b], k)) for i in range(0, len(x), b))
  mean = total / np.maximum(count, 1.0)[:, None, None]
  cov = sum(np.asarray(_cov_sums(x[i:i + b], y[i:i + b], mean, k))
            for i in range(0, len(x), b))
  cov = cov / np.maximum(count, 1.0)[:, None, None, None]
  s = _colours(x.shape[-1])
  w = 1.0 - 2.0 * s
  mean_d = s.sum(1)[None, None, :] + np.einsum("kpc,sc->kps", mean, w)
  var_d = np.einsum("sc,kpcd,sd->kps", w, cov, w)
  return mean_d / np.maximum(np.sqrt(np.maximum(var_d, 0.0)), _STD_FLOOR)


def search(x, y, config: OPSConfig = OPSConfig()) -> tuple[np.ndarray, np.ndarray]:
  """Finds each class's pixel positions and colours.

  Args:
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    config: settings.

  Returns:
    ``(positions, colours)``: int64 (K, sparsity, 2) row/column indices and
    uint8 (K, sparsity, C) colours (0 or 255 per channel). No (position,
    colour) pair is used by two classes.

  Raises:
    ConfigError: sparsity larger than the pixel count, or more pairs needed
      than exist (K * sparsity > H * W * 2^C).
  """
  x, y = _common.check_inputs(x, y)
  config.validate()
  n, h, w, c = x.shape
  k, sp = _common.num_classes(y), config.sparsity
  if sp > h * w or k * sp > h * w * 2 ** c:
    raise ConfigError(
        f"OPSConfig.sparsity={sp} is too large for {k} classes of {h}x{w}x{c} images")
  sc = scores(x, y, config)
  cols = _colours(c)
  taken = np.zeros(sc.shape[1:], bool)
  pos = np.zeros((k, sp), np.int64)
  col = np.zeros((k, sp), np.int64)
  for cls in range(k):
    avail = np.where(taken, -np.inf, sc[cls])
    best_col = np.argmax(avail, axis=1)
    best_val = avail[np.arange(h * w), best_col]
    p = np.argsort(-best_val, kind="stable")[:sp]
    pos[cls], col[cls] = p, best_col[p]
    taken[p, best_col[p]] = True
  positions = np.stack([pos // w, pos % w], axis=-1)
  return positions, (cols[col] * 255).astype(np.uint8)


def poison(key: jax.Array, x, y, config: OPSConfig = OPSConfig(),
           context: RunContext = RunContext()) -> np.ndarray:
  """Sets each class's one-pixel shortcut in every image of the class.

  Args:
    key: unused (OPS is deterministic); kept for the common interface.
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    config: settings.
    context: labels must lie below ``num_classes`` (the search covers the
      classes present, ``max(y) + 1``). Two passes over the data: no
      checkpoints, no progress bar.

  Returns:
    uint8 images of x's shape.

  Example:
    >>> x_p = poison(jax.random.key(0), x, y, OPSConfig())
  """
  del key
  x, y = _common.check_inputs(x, y, context.num_classes)
  positions, colours = search(x, y, config)
  out = x.copy()
  rows = np.arange(len(x))[:, None]
  out[rows, positions[y, :, 0], positions[y, :, 1], :] = colours[y]
  return out
