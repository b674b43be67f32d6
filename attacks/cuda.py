"""CUDA: Convolution-based Unlearnable DAtaset (Sadasivan, Soltanolkotabi, Feizi, CVPR 2023).

Model-free poisoning: every image of class ``k`` is blurred with the class's own
random filter, drawn from a private key. A network trained on the result learns
the filter <-> label shortcut instead of the image content. Each filter has
weights uniform in ``[0, pb]`` with one randomly placed tap set to 1; it is
applied per channel (depthwise) with zero 'same' padding, and each output image
is divided by its own maximum and quantised to uint8.

CUDA is not eps-bounded: report PSNR and max |delta| instead
(:func:`ntga.attacks.perturbation_stats`). The key is the secret: publish only
:func:`ntga.attacks._common.key_fingerprint` of it.

Example:
  >>> x_p = poison(jax.random.key(0), x, y, CUDAConfig(pb=0.3))
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ntga.attacks import _common
from ntga.errors import ConfigError
from ntga.protocol import AttackConfig, RunContext


@dataclasses.dataclass(frozen=True, kw_only=True)
class CUDAConfig(AttackConfig):
  """Settings of CUDA (paper defaults for CIFAR-10).

  The key is CUDA's secret (``secret_seed``): a record of a run names only
  its fingerprint.

  Attributes:
    blur_size: filter side length (odd, >= 1); paper: 3.
    pb: blur parameter, the upper end of the uniform filter weights; paper: 0.3.
    mix: fraction of the training set that is filtered (a seeded subset of
      exactly ``round(mix * N)`` images; the rest stay clean); paper: 1.0.
    grayscale: if True one filter per class is shared by all channels; if False
      (paper's default for RGB) each channel gets its own filter.
    batch_size: images per jitted chunk (memory only; results do not depend on it).
  """

  secret_seed: ClassVar[bool] = True

  blur_size: int = 3
  pb: float = 0.3
  mix: float = 1.0
  grayscale: bool = False
  batch_size: int = 4096

  def __post_init__(self):
    self.validate()

  def validate(self):
    """Raises ConfigError for out-of-range settings."""
    _common.check_types(self)
    _common.check_range(self, "blur_size", 1, 63)
    if self.blur_size % 2 == 0:
      raise ConfigError(f"CUDAConfig.blur_size={self.blur_size} must be odd (same padding)")
    _common.check_range(self, "pb", 0.0, 1.0)
    _common.check_range(self, "mix", 0.0, 1.0)
    _common.check_range(self, "batch_size", 1, 1 << 30)


def filters(key: jax.Array, num_classes: int, channels: int, config: CUDAConfig) -> jax.Array:
  """Draws the class-wise filters.

  Args:
    key: the secret PRNG key (the same one :func:`poison` receives).
    num_classes: number of classes K.
    channels: image channels C.
    config: settings.

  Returns:
    float32 array (K, blur_size, blur_size, C): non-negative weights <= pb with
    one tap per (class, channel) equal to 1 (the same filter on every channel
    when ``config.grayscale``).
  """
  s = config.blur_size
  fkey = jax.random.fold_in(key, 0)
  c = 1 if config.grayscale else channels

  def one(k):
    kw, kp = jax.random.split(jax.random.fold_in(fkey, k))
    w = jax.random.uniform(kw, (s * s, c), jnp.float32, 0.0, config.pb)
    tap = jax.random.randint(kp, (c,), 0, s * s)
    w = w.at[tap, jnp.arange(c)].set(1.0)
    return w.reshape(s, s, c)

  f = jax.vmap(one)(jnp.arange(num_classes))
  return jnp.broadcast_to(f, (num_classes, s, s, channels))


@jax.jit
def apply_filters(x: jax.Array, f: jax.Array) -> jax.Array:
  """Blurs each image with its own depthwise filter, rescales by its max, quantises.

  Args:
    x: uint8 images (B, H, W, C).
    f: float32 filters (B, s, s, C), one per image.

  Returns:
    uint8 images (B, H, W, C).
  """
  s = f.shape[1]
  h, w = x.shape[1:3]
  xf = x.astype(jnp.float32) / 255.0
  p = s // 2
  xp = jnp.pad(xf, ((0, 0), (p, p), (p, p), (0, 0)))
  out = jnp.zeros_like(xf)
  for i in range(s):
    for j in range(s):
      out = out + xp[:, i:i + h, j:j + w, :] * f[:, i, j, None, None, :]
  peak = jnp.max(out, axis=(1, 2, 3), keepdims=True)
  out = jnp.where(peak > 0, out / jnp.where(peak > 0, peak, 1.0), 0.0)
  return jnp.clip(jnp.round(out * 255.0), 0, 255).astype(jnp.uint8)


def poison(key: jax.Array, x, y, config: CUDAConfig = CUDAConfig(),
           context: RunContext = RunContext()) -> np.ndarray:
  """Applies CUDA's class-wise random blurs.

  Args:
    key: the secret PRNG key.
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    config: settings.
    context: labels must lie below ``num_classes`` (filters are drawn for the
      classes present; a class's filter depends only on its index). One pass,
      seconds long: no checkpoints, no progress bar.

  Returns:
    uint8 images of x's shape; rows outside the ``mix`` subset are unchanged.

  Example:
    >>> x_p = poison(jax.random.key(7), x, y, CUDAConfig())
  """
  x, y = _common.check_inputs(x, y, context.num_classes)
  config.validate()
  f = np.asarray(filters(key, _common.num_classes(y), x.shape[-1], config))
  rows = np.flatnonzero(_common.subset_mask(jax.random.fold_in(key, 1), len(x), config.mix))
  out = x.copy()
  b = config.batch_size
  for i in range(0, len(rows), b):
    r = rows[i:i + b]
    out[r] = np.asarray(apply_filters(x[r], f[y[r]]))
  return out
