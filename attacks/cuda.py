"""CUDA: Convolution-based Unlearnable DAtaset (Sadasivan, Soltanolkotabi, Feizi, CVPR 2023).

Paper: V. S. Sadasivan, M. Soltanolkotabi, S. Feizi, "CUDA: Convolution-based
Unlearnable Datasets", CVPR 2023, https://arxiv.org/abs/2303.04278. Authors'
code: https://github.com/vinusankars/Convolution-based-Unlearnability, file
``final_filter_unlearnable.py`` (``get_filter_unlearnable``). This module is
our own implementation of the rule that code computes.

Model-free poisoning: every image of class ``k`` is blurred with the class's own
random filter, drawn from a private key. A network trained on the result learns
the filter <-> label shortcut instead of the image content. As in the authors'
code (the defaults here):

* Each class draws ONE ``blur_size`` x ``blur_size`` filter with weights
  uniform in ``[0, pb)`` and one uniformly placed tap set to 1 (their
  ``center_parameter = 1.0``), copied to every channel: a depthwise
  convolution whose channels share one filter (``filters="shared"``).
* The convolution is a cross-correlation with zero padding and no bias, output
  the size of the input (their ``padding=1`` for the 3x3 filter; here 'same'
  padding for any odd size).
* ``grayscale=True`` greys the OUTPUT: each filtered image is replaced by its
  channel mean on every channel (their ``grayscale`` flag, off by default).
* Each image is divided by its own maximum over all pixels and channels, times
  255, clipped to [0, 255] and cast to uint8 by truncation
  (``rounding="floor"``, their ``astype(np.uint8)``).
* ``mix`` < 1 poisons each image independently with probability ``mix``
  (``mix_draw="bernoulli"``, their ``np.random.random() < mix``); the rest
  stay clean.

Named options that depart from the authors' code (this library's earlier
behaviour is ``filters="per-channel", rounding="nearest", mix_draw="exact"``):

* ``filters="per-channel"``: an independent filter and tap per channel.
* ``rounding="nearest"``: round to the nearest level instead of truncating.
* ``mix_draw="exact"``: a seeded subset of exactly ``round(mix * N)`` images.

Where the authors' code would divide by a zero maximum (an all-black filtered
image) and write NaN, this module writes zeros.

CUDA is not eps-bounded: report PSNR and max |delta| instead
(:func:`ntga.attacks.perturbation_stats`). The key is the secret: publish only
:func:`ntga.attacks._common.key_fingerprint` of it.

Example:
  >>> x_p = poison(jax.random.key(0), x, y, CUDAConfig(pb=0.3))
"""

from __future__ import annotations

import dataclasses
import functools
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
    mix: fraction of the training set that is filtered (the rest stay clean);
      paper: 1.0.
    mix_draw: how the ``mix`` subset is drawn: "bernoulli" (each image
      independently with probability ``mix``; authors' code) or "exact" (a
      seeded subset of exactly ``round(mix * N)`` images).
    filters: "shared" (one filter per class copied to every channel; authors'
      code) or "per-channel" (an independent filter and tap per channel).
    grayscale: if True each filtered image is greyed (channel mean on every
      channel) before normalisation, as the authors' ``grayscale`` flag; paper
      default False.
    rounding: "floor" (truncate to uint8; authors' code) or "nearest".
    batch_size: images per jitted chunk (memory only; results do not depend on it).
  """

  secret_seed: ClassVar[bool] = True

  blur_size: int = 3
  pb: float = 0.3
  mix: float = 1.0
  mix_draw: str = "bernoulli"
  filters: str = "shared"
  grayscale: bool = False
  rounding: str = "floor"
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
    _common.check_choice(self, "mix_draw", ("bernoulli", "exact"))
    _common.check_choice(self, "filters", ("shared", "per-channel"))
    _common.check_choice(self, "rounding", ("floor", "nearest"))
    _common.check_range(self, "batch_size", 1, 1 << 30)


def filters(key: jax.Array, num_classes: int, channels: int, config: CUDAConfig) -> jax.Array:
  """Draws the class-wise filters.

  Args:
    key: the secret PRNG key (the same one :func:`poison` receives).
    num_classes: number of classes K.
    channels: image channels C.
    config: settings.

  Returns:
    float32 array (K, blur_size, blur_size, C): non-negative weights < pb with
    one tap per (class, channel) equal to 1; the same filter on every channel
    when ``config.filters == "shared"``.

  Example:
    >>> f = filters(jax.random.key(0), 10, 3, CUDAConfig())  # (10, 3, 3, 3)
  """
  s = config.blur_size
  fkey = jax.random.fold_in(key, 0)
  c = 1 if config.filters == "shared" else channels

  def one(k):
    kw, kp = jax.random.split(jax.random.fold_in(fkey, k))
    w = jax.random.uniform(kw, (s * s, c), jnp.float32, 0.0, config.pb)
    tap = jax.random.randint(kp, (c,), 0, s * s)
    w = w.at[tap, jnp.arange(c)].set(1.0)
    return w.reshape(s, s, c)

  f = jax.vmap(one)(jnp.arange(num_classes))
  return jnp.broadcast_to(f, (num_classes, s, s, channels))


@functools.partial(jax.jit, static_argnames="grayscale")
def _blur(x: jax.Array, f: jax.Array, grayscale: bool) -> jax.Array:
  """Depthwise zero-padded 'same' cross-correlation in float32, greyed if asked."""
  s = f.shape[1]
  h, w = x.shape[1:3]
  xf = x.astype(jnp.float32) / 255.0
  p = s // 2
  xp = jnp.pad(xf, ((0, 0), (p, p), (p, p), (0, 0)))
  out = jnp.zeros_like(xf)
  for i in range(s):
    for j in range(s):
      out = out + xp[:, i:i + h, j:j + w, :] * f[:, i, j, None, None, :]
  if grayscale:
    out = jnp.broadcast_to(jnp.mean(out, axis=-1, keepdims=True), out.shape)
  return out


def apply_filters(x, f, grayscale: bool = False, rounding: str = "floor") -> np.ndarray:
  """Blurs each image with its own depthwise filter, rescales by its max, quantises.

  The rescale is an exact IEEE division in NumPy, so each image's brightest
  value becomes exactly 255 (XLA would turn the division by a broadcast
  maximum into a multiply by its reciprocal, which can leave it at 254).

  Args:
    x: uint8 images (B, H, W, C).
    f: float32 filters (B, s, s, C), one per image.
    grayscale: replace each blurred image by its channel mean on every channel
      before the rescale.
    rounding: "floor" (truncate, the authors' uint8 cast) or "nearest".

  Returns:
    uint8 array (B, H, W, C).

  Example:
    >>> x_p = apply_filters(x, f[y], rounding="floor")
  """
  out = np.asarray(_blur(jnp.asarray(x), jnp.asarray(f, jnp.float32), grayscale))
  peak = out.max(axis=(1, 2, 3), keepdims=True)
  scaled = np.where(peak > 0, out / np.where(peak > 0, peak, np.float32(1)), np.float32(0))
  scaled = scaled.astype(np.float32) * np.float32(255)
  q = np.floor if rounding == "floor" else np.round
  return np.clip(q(scaled), 0, 255).astype(np.uint8)


def mix_mask(key: jax.Array, n: int, config: CUDAConfig) -> np.ndarray:
  """Which of ``n`` images are filtered.

  Args:
    key: the key for the draw (``poison`` passes ``fold_in(secret, 1)``).
    n: number of images.
    config: settings (``mix``, ``mix_draw``).

  Returns:
    bool array (n,): each True with probability ``mix`` ("bernoulli"), or
    exactly ``round(mix * n)`` True ("exact").

  Example:
    >>> mix_mask(jax.random.key(0), 10, CUDAConfig(mix=1.0)).all()
    True
  """
  if config.mix_draw == "exact":
    return _common.subset_mask(key, n, config.mix)
  return np.asarray(jax.random.uniform(key, (n,)) < config.mix)


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
  rows = np.flatnonzero(mix_mask(jax.random.fold_in(key, 1), len(x), config))
  out = x.copy()
  b = config.batch_size
  for i in range(0, len(rows), b):
    r = rows[i:i + b]
    out[r] = apply_filters(x[r], f[y[r]], config.grayscale, config.rounding)
  return out
