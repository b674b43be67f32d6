"""Defenses applied once to the training images: squeezing and projection.

Public through :mod:`ntga.victims.defenses`, whose docstring cites the papers.
"""

from __future__ import annotations

import functools
import io

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from ntga.errors import ConfigError
from ntga.victims import _linear
from ntga.victims._names import ORTHO_LINEAR


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


#: Per solver: (learning rate, batch size) defaults.
_ORTHO_DEFAULTS = {"sgd": (0.1, 1024), "adam": (1e-2, 256)}


@functools.partial(jax.jit, static_argnames=("num_classes", "epochs", "batch_size",
                                              "lr"))
def _fit_linear_sgd(key: jax.Array, x: jax.Array, y: jax.Array, *, num_classes: int,
                    epochs: int, batch_size: int, lr: float) -> jax.Array:
  """Bias-free linear softmax classifier (D, K) trained as the authors' step 1.

  Plain SGD (no momentum, no weight decay) on the mean cross-entropy of
  batches taken in the order of ``x`` (no reshuffling between epochs; the
  last batch may be short);
  the learning rate drops x0.1 at epochs ``int(0.5 E)`` and ``int(0.75 E)``
  (PyTorch ``MultiStepLR``, stepped per epoch). The weights start uniform in
  +-1/sqrt(D), PyTorch's default for ``nn.Linear``.
  """
  n, d = x.shape
  n_batches = -(-n // batch_size)
  bound = 1.0 / np.sqrt(d)
  w = jax.random.uniform(key, (d, num_classes), jnp.float32, -bound, bound)
  milestones = jnp.array([int(epochs * 0.5), int(epochs * 0.75)])

  def loss_fn(w, idx, mask):
    ce = optax.softmax_cross_entropy_with_integer_labels(x[idx] @ w, y[idx])
    return jnp.sum(jnp.where(mask, ce, 0.0)) / jnp.sum(mask)

  def epoch(w, e):
    rate = lr * 0.1 ** jnp.sum(milestones <= e)

    def step(w, b):
      pos = b * batch_size + jnp.arange(batch_size)
      mask = pos < n
      return w - rate * jax.grad(loss_fn)(w, jnp.minimum(pos, n - 1), mask), None

    return jax.lax.scan(step, w, jnp.arange(n_batches))[0], None

  return jax.lax.scan(epoch, w, jnp.arange(epochs))[0]


def _linear_weights(key: jax.Array, flat: np.ndarray, y: np.ndarray,
                    num_classes: int, linear: str, epochs: int, lr: float,
                    batch_size: int) -> jax.Array:
  """The (D, K) weights of the bias-free linear model (see
  :func:`orthogonal_projection`)."""
  if linear == "adam":
    params, _ = _linear.fit_linear(key, flat, y, num_classes, bias=False,
                                   epochs=epochs, lr=lr, batch_size=batch_size)
    return params["w"]
  # The authors' batches follow the CIFAR-10 files' fixed order, which mixes
  # the classes. Images may come here class by class (the folder and tarball
  # loaders return them so), where batches in data order would each hold one
  # class; so the images take one fixed random order, drawn from ``key``.
  order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 1), len(flat)))
  return _fit_linear_sgd(key, jnp.asarray(flat[order]), jnp.asarray(y[order], jnp.int32),
                         num_classes=int(num_classes), epochs=int(epochs),
                         batch_size=int(min(batch_size, len(flat))), lr=float(lr))


def orthogonal_projection(key: jax.Array, x: np.ndarray | jax.Array,
                          y: np.ndarray | jax.Array, num_classes: int, *,
                          linear: str = "sgd", epochs: int = 20,
                          lr: float | None = None, batch_size: int | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
  """Projects the class-wise linear directions out of the training images.

  Algorithm 1 of Sandoval-Segura, Singla, Geiping, Goldblum, Goldstein, "What
  Can We Learn from Unlearnable Datasets?", NeurIPS 2023, as its authors' code
  computes it (github.com/psandovalsegura/learn-from-unlearnable,
  ``orthogonal_projection_step_1.py``, ``orthogonal_projection_step_2.py`` and
  ``utils_projection.py``): a bias-free linear classifier W (D x K) is trained
  on the flattened, unnormalised (possibly poisoned) images; a QR
  decomposition of W gives an orthonormal basis Q (D x K) of its class
  directions, and every image becomes x - Q Q^T x. The result is left as
  floats (not clipped nor rescaled). (The authors scale each class direction
  to unit norm before the QR and subtract the basis vectors one at a time;
  neither changes Q Q^T.)

  ``linear`` picks how W is trained:

  * ``'sgd'`` (default, the authors' step 1): plain SGD, lr 0.1, batches of
    1024 in one fixed order for every epoch, lr x0.1 at 50% and 75% of the
    epochs, PyTorch's default uniform initialisation (drawn from ``key``).
    The authors' fixed order is that of the CIFAR-10 files, which mixes the
    classes; here it is one random order drawn from ``key``, since images
    stored class by class (as the folder and tarball loaders return them)
    would make every batch a single class.
  * ``'adam'`` (this library's earlier definition): Adam, lr 1e-2, batches of
    256 reshuffled every epoch (from ``key``), zero initialisation.

  Args:
    key: PRNG key (the linear model's initialisation and its fixed order, or
      its shuffles).
    x: float images in [0, 1] (N, H, W, C).
    y: int labels (N,).
    num_classes: K.
    linear: 'sgd' or 'adam' (see above).
    epochs: training epochs of the linear model (20, as the authors').
    lr: its learning rate; default 0.1 ('sgd') or 1e-2 ('adam').
    batch_size: its batch size; default 1024 ('sgd') or 256 ('adam').

  Returns:
    ``(projected float32 images of x's shape, Q of shape (D, K))``. Projected
    values may leave [0, 1].

  Raises:
    ConfigError: an unknown ``linear``.

  Example:
    >>> x_proj, q = orthogonal_projection(key, x_float, y, 10)
    >>> np.abs(x_proj.reshape(len(x_proj), -1) @ q).max()  # ~0
  """
  if linear not in _ORTHO_DEFAULTS:
    raise ConfigError(f"ortho linear must be one of {', '.join(ORTHO_LINEAR)}, "
                      f"got {linear!r}")
  lr_default, batch_default = _ORTHO_DEFAULTS[linear]
  x = np.asarray(x, np.float32)
  flat = x.reshape((len(x), -1))
  w = _linear_weights(key, flat, np.asarray(y), num_classes, linear, epochs,
                      lr_default if lr is None else lr,
                      batch_default if batch_size is None else batch_size)
  q, _ = jnp.linalg.qr(w)
  q = np.asarray(q, np.float32)
  return project_out(x, q), q


def project_out(x: np.ndarray, q: np.ndarray) -> np.ndarray:
  """``x - Q Q^T x`` for each image: the part of ``x`` outside Q's span.

  Args:
    x: float images (N, H, W, C).
    q: (D, K) orthonormal columns, D = H * W * C (from
      :func:`orthogonal_projection`).

  Returns:
    float32 images of ``x``'s shape.

  Example:
    >>> x_test_proj = project_out(x_test_float, q)
  """
  flat = np.asarray(x, np.float32).reshape((len(x), -1))
  return (flat - (flat @ q) @ q.T).reshape(np.shape(x))
