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


def _warp_nearest(x: jax.Array, inverse: jax.Array) -> jax.Array:
  """Resamples each image through a 2x2 map about its centre (nearest, zero fill).

  Args:
    x: images (N, H, W, C).
    inverse: (N, 2, 2) maps from an output pixel's (row, col) offset from the
      centre to the input offset it reads.

  Returns:
    Warped images; pixels read from outside the image are 0.
  """
  n, h, w, _ = x.shape
  rows, cols = jnp.meshgrid(jnp.arange(h) - (h - 1) / 2, jnp.arange(w) - (w - 1) / 2,
                            indexing="ij")
  out = jnp.stack([rows, cols])  # (2, H, W)
  src = jnp.einsum("nij,jhw->nihw", inverse, out)
  r = jnp.round(src[:, 0] + (h - 1) / 2).astype(jnp.int32)
  c = jnp.round(src[:, 1] + (w - 1) / 2).astype(jnp.int32)
  inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
  picked = x[jnp.arange(n)[:, None, None], jnp.clip(r, 0, h - 1), jnp.clip(c, 0, w - 1)]
  return jnp.where(inside[..., None], picked, 0.0)


def rotate_shear_scale(key: jax.Array, x: jax.Array, *, degrees: float = 10.0,
                       shear: float = 10.0, scale: tuple[float, float] = (0.8, 1.2)
                       ) -> jax.Array:
  """A random rotation, then a random shear + scale, of each image.

  As torchvision's ``RandomRotation(degrees)`` followed by
  ``RandomAffine(0, shear=shear, scale=scale)``: angle and horizontal shear
  uniform in +-``degrees`` / +-``shear`` degrees, scale uniform in
  ``scale``, both about the image centre, nearest-neighbour, zero fill.

  Example:
    >>> x_aug = rotate_shear_scale(key, x)
  """
  n = x.shape[0]
  ka, ks, kz = jax.random.split(key, 3)
  a = jnp.deg2rad(jax.random.uniform(ka, (n,), minval=-degrees, maxval=degrees))
  cos, sin = jnp.cos(a), jnp.sin(a)
  rotate = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)
  x = _warp_nearest(x, rotate)
  phi = jnp.deg2rad(jax.random.uniform(ks, (n,), minval=-shear, maxval=shear))
  s = jax.random.uniform(kz, (n,), minval=scale[0], maxval=scale[1])
  one, zero = jnp.ones_like(s), jnp.zeros_like(s)
  # (row, col) offsets: the output's col reads col + tan(phi) * row, all / scale.
  shear_scale = jnp.stack([jnp.stack([one, zero], -1),
                           jnp.stack([jnp.tan(phi), one], -1)], -2) / s[:, None, None]
  return _warp_nearest(x, shear_scale)


_GREY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def color_jitter(key: jax.Array, x: jax.Array, strength: float = 0.2) -> jax.Array:
  """Random brightness, contrast and saturation, in a random order per image.

  As torchvision's ``ColorJitter(brightness=s, contrast=s, saturation=s)`` on
  float images: each factor uniform in [1 - s, 1 + s]; brightness scales the
  image, contrast blends it with its mean grey level, saturation with its
  grey image, and each of the three clips to [0, 1]. Images with other than
  3 channels only get brightness and contrast (their grey is themselves).

  Example:
    >>> x_aug = color_jitter(key, x)
  """
  n = x.shape[0]
  kf, ko = jax.random.split(key)
  f = jax.random.uniform(kf, (3, n, 1, 1, 1), minval=1 - strength, maxval=1 + strength)
  order = jax.vmap(lambda k: jax.random.permutation(k, 3))(jax.random.split(ko, n))

  def grey(z):
    if z.shape[-1] != 3:
      return z
    return jnp.tensordot(z, jnp.asarray(_GREY, z.dtype), axes=([-1], [0]))[..., None]

  def blend(z, other, factor):
    return jnp.clip(factor * z + (1 - factor) * other, 0.0, 1.0)

  for step in range(3):
    op = order[:, step].reshape((n, 1, 1, 1))
    g = grey(x)
    bright = blend(x, 0.0, f[0])
    contrast = blend(x, jnp.mean(g, axis=(1, 2, 3), keepdims=True), f[1])
    saturate = blend(x, g, f[2])
    x = jnp.where(op == 0, bright, jnp.where(op == 1, contrast, saturate))
  return x
