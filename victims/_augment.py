"""Per-batch augmentations (jit-compatible, key first, float images in [0, 1]).

Public through :mod:`ntga.victims.defenses`, whose docstring cites the papers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop(key: jax.Array, x: jax.Array, pad: int) -> jax.Array:
  """Zero-pads each image by ``pad`` px and crops back at a random offset.

  Args:
    key: PRNG key.
    x: float images (N, H, W, C).
    pad: padding on each side (4 for 32 px images).

  Returns:
    Images of the same shape.

  Example:
    >>> x = random_crop(key, x, 4)
  """
  if pad <= 0:
    return x
  n, h, w, _ = x.shape
  padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  offsets = jax.random.randint(key, (n, 2), 0, 2 * pad + 1)
  rows = offsets[:, 0, None] + jnp.arange(h)[None, :]
  cols = offsets[:, 1, None] + jnp.arange(w)[None, :]
  # A gather rather than vmap(dynamic_slice), so it shards along the batch.
  return padded[jnp.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def random_flip(key: jax.Array, x: jax.Array) -> jax.Array:
  """Flips each image left-right with probability 1/2."""
  flip = jax.random.bernoulli(key, 0.5, (x.shape[0], 1, 1, 1))
  return jnp.where(flip, x[:, :, ::-1, :], x)


def cutout(key: jax.Array, x: jax.Array, size: int) -> jax.Array:
  """Zeroes one ``size`` x ``size`` square per image at a random centre.

  Example:
    >>> x = cutout(key, x, 16)
  """
  n, h, w, _ = x.shape
  kh, kw = jax.random.split(key)
  cy = jax.random.randint(kh, (n, 1, 1, 1), 0, h)
  cx = jax.random.randint(kw, (n, 1, 1, 1), 0, w)
  rows = jnp.arange(h).reshape((1, h, 1, 1))
  cols = jnp.arange(w).reshape((1, 1, w, 1))
  inside = ((rows >= cy - size // 2) & (rows < cy - size // 2 + size)
            & (cols >= cx - size // 2) & (cols < cx - size // 2 + size))
  return jnp.where(inside, 0.0, x)


def mixup(key: jax.Array, x: jax.Array, t: jax.Array, alpha: float = 1.0
          ) -> tuple[jax.Array, jax.Array]:
  """Convex combination of the batch with a shuffled copy of itself.

  Args:
    key: PRNG key.
    x: float images (N, H, W, C).
    t: soft targets (N, K) (one-hot labels).
    alpha: Beta(alpha, alpha) parameter of the mixing weight.

  Returns:
    Mixed images and mixed targets.

  Example:
    >>> x, t = mixup(key, x, jax.nn.one_hot(y, 10))
  """
  kl, kp = jax.random.split(key)
  lam = jax.random.beta(kl, alpha, alpha)
  perm = jax.random.permutation(kp, x.shape[0])
  return lam * x + (1 - lam) * x[perm], lam * t + (1 - lam) * t[perm]


def cutmix(key: jax.Array, x: jax.Array, t: jax.Array, alpha: float = 1.0,
           prob: float = 0.5) -> tuple[jax.Array, jax.Array]:
  """Pastes a random box from a shuffled copy of the batch (with prob ``prob``).

  The box has area fraction about 1 - lam, lam ~ Beta(alpha, alpha); targets are
  mixed by the box's actual (border-clipped) area.

  Example:
    >>> x, t = cutmix(key, x, jax.nn.one_hot(y, 10))
  """
  n, h, w, _ = x.shape
  kl, kp, ky, kx, ku = jax.random.split(key, 5)
  lam = jax.random.beta(kl, alpha, alpha)
  perm = jax.random.permutation(kp, n)
  ratio = jnp.sqrt(1.0 - lam)
  bh, bw = jnp.floor(h * ratio), jnp.floor(w * ratio)
  cy = jax.random.randint(ky, (), 0, h)
  cx = jax.random.randint(kx, (), 0, w)
  y0, y1 = jnp.clip(cy - bh // 2, 0, h), jnp.clip(cy + bh // 2, 0, h)
  x0, x1 = jnp.clip(cx - bw // 2, 0, w), jnp.clip(cx + bw // 2, 0, w)
  rows = jnp.arange(h).reshape((1, h, 1, 1))
  cols = jnp.arange(w).reshape((1, 1, w, 1))
  box = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
  use = jax.random.uniform(ku) < prob
  box = box & use
  kept = 1.0 - jnp.where(use, (y1 - y0) * (x1 - x0) / (h * w), 0.0)
  return jnp.where(box, x[perm], x), kept * t + (1 - kept) * t[perm]
