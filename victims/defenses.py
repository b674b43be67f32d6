"""Defenses against unlearnable data: augmentations, squeezing, projection.

Per-batch augmentations (jit-compatible, key first, float images in [0, 1]):
  * :func:`random_crop` + :func:`random_flip` -- the standard CIFAR
    augmentation (He et al., CVPR 2016: 4 px zero padding, random 32x32 crop,
    horizontal flip).
  * :func:`cutout` -- DeVries & Taylor, "Improved Regularization of CNNs with
    Cutout", 2017 (one zeroed square of side 16 on CIFAR-10, i.e. half the
    image side; its centre may lie anywhere, the square is clipped at borders).
  * :func:`mixup` -- Zhang et al., "mixup: Beyond Empirical Risk
    Minimization", ICLR 2018 (alpha = 1).
  * :func:`cutmix` -- Yun et al., "CutMix", ICCV 2019 (alpha = 1, applied with
    probability 0.5 as in its CIFAR experiments).

Image shortcut squeezing, applied once to the uint8 training images (Liu et
al., "Image Shortcut Squeezing: Countering Perturbative Availability Poisons
with Compression", ICML 2023): :func:`jpeg_compress` (quality 10),
:func:`grayscale`, :func:`bit_depth_reduction` (2 bits).

Orthogonal projection (:func:`orthogonal_projection`): Sandoval-Segura et
al., "What Can We Learn from Unlearnable Datasets?", NeurIPS 2023.

Adversarial training lives in :mod:`ntga.victims.adversarial`.
"""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from ntga.errors import ConfigError
from ntga.victims import _linear, _names

#: Every value accepted by ``TrainConfig.defense`` / ``--defense``.
NAMES: tuple[str, ...] = _names.DEFENSES

#: Values of ``TrainConfig.augment``: 'auto' = crop+flip for 3-channel images of
#: at least 16 px, nothing otherwise (digits and MNIST are not flip-symmetric).
AUGMENTS: tuple[str, ...] = _names.AUGMENTS


# ----------------------------------------------------------------- per batch

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


# ----------------------------------------------------------------- squeezing

def _check_uint8(x: np.ndarray, what: str) -> None:
  if x.dtype != np.uint8 or x.ndim != 4:
    raise ConfigError(f"{what}: expected uint8 NHWC images, got {x.dtype} {x.shape}")


def jpeg_compress(x: np.ndarray, quality: int = 10) -> np.ndarray:
  """JPEG-encodes and decodes every image with Pillow at ``quality``.

  Args:
    x: uint8 images (N, H, W, C), C in {1, 3}.
    quality: JPEG quality in [1, 95]; the ISS paper's default is 10.

  Returns:
    uint8 images of the same shape.

  Example:
    >>> x_sq = jpeg_compress(x, quality=10)
  """
  _check_uint8(x, "jpeg")
  if not 1 <= quality <= 95:
    raise ConfigError(f"jpeg quality must be in [1, 95], got {quality}")
  if x.shape[-1] not in (1, 3):
    raise ConfigError(f"jpeg needs 1 or 3 channels, got {x.shape[-1]}")
  out = np.empty_like(x)
  for i, img in enumerate(x):
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    dec = np.asarray(Image.open(buf).convert(pil.mode))
    out[i] = dec.reshape(img.shape)
  return out


def grayscale(x: np.ndarray) -> np.ndarray:
  """Replaces every channel by the ITU-R 601-2 luma (Pillow's 'L' mode).

  Args:
    x: uint8 images (N, H, W, C); 1-channel images are returned unchanged.

  Returns:
    uint8 images of the same shape whose channels are all equal.

  Example:
    >>> x_sq = grayscale(x)
  """
  _check_uint8(x, "grayscale")
  if x.shape[-1] == 1:
    return x.copy()
  if x.shape[-1] != 3:
    raise ConfigError(f"grayscale needs 1 or 3 channels, got {x.shape[-1]}")
  w = np.array([299, 587, 114], np.int64)
  luma = (x.astype(np.int64) @ w + 500) // 1000
  return np.repeat(luma.astype(np.uint8)[..., None], 3, axis=-1)


def bit_depth_reduction(x: np.ndarray, bits: int = 2) -> np.ndarray:
  """Quantises each pixel to ``2**bits`` evenly spaced levels in [0, 255].

  Example:
    >>> np.unique(bit_depth_reduction(x, 2))  # at most [0, 85, 170, 255]
  """
  _check_uint8(x, "bdr")
  if not 1 <= bits <= 8:
    raise ConfigError(f"bdr bits must be in [1, 8], got {bits}")
  levels = 2 ** bits - 1
  q = np.round(x.astype(np.float32) / 255.0 * levels)
  return np.round(q * (255.0 / levels)).astype(np.uint8)


# ------------------------------------------------------- orthogonal projection

def orthogonal_projection(key: jax.Array, x: np.ndarray | jax.Array,
                          y: np.ndarray | jax.Array, num_classes: int, *,
                          epochs: int = 20, lr: float = 1e-2
                          ) -> tuple[np.ndarray, np.ndarray]:
  """Projects the class-wise linear directions out of the training images.

  A bias-free linear classifier W (D x K) is trained on the flattened (possibly
  poisoned) images; W = QR gives an orthonormal basis Q (D x K) of its class
  directions, and every image becomes x - Q Q^T x.

  Args:
    key: PRNG key for the linear model's shuffling.
    x: float images in [0, 1] (N, H, W, C).
    y: int labels (N,).
    num_classes: K.
    epochs: training epochs of the linear model.
    lr: Adam learning rate of the linear model.

  Returns:
    ``(projected float32 images of x's shape, Q of shape (D, K))``. Projected
    values may leave [0, 1]; the victim trains on them as they are.

  Example:
    >>> x_proj, q = orthogonal_projection(key, x_float, y, 10)
  """
  x = np.asarray(x, np.float32)
  flat = x.reshape((len(x), -1))
  params, _ = _linear.fit_linear(key, flat, y, num_classes, bias=False,
                                 epochs=epochs, lr=lr)
  q, _ = jnp.linalg.qr(params["w"])
  q = np.asarray(q, np.float32)
  proj = flat - (flat @ q) @ q.T
  return proj.reshape(x.shape), q
