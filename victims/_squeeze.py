"""Defenses applied once to the training images: squeezing and projection.

Public through :mod:`ntga.victims.defenses`, whose docstring cites the papers.
"""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from ntga.errors import ConfigError
from ntga.victims import _linear


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
