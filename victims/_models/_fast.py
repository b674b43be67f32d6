"""The ``fast`` victim: a compact residual-free CNN built for accuracy per FLOP.

Design (our own code, learnt from the public fast-CIFAR training work: Page's
DAWNBench ResNet-9, "How to train your ResNet", 2018, and Jordan's airbench,
"94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024,
github.com/KellerJordan/cifar10-zoo):

* a fixed *patch-whitening* first layer: a 2x2 VALID convolution whose
  filters are the eigenvectors of the 2x2-patch covariance of all the training
  images, scaled by ``1/sqrt(eigenvalue + 5e-4)``, each used with both signs
  (2 * 4 * C channels), followed by a trainable bias and GELU;
* three blocks of [3x3 conv -> 2x2 max pool -> BatchNorm -> GELU -> 3x3 conv
  -> BatchNorm -> GELU] (widths ``widths``), convolutions without bias and
  initialised to the identity on their first input channels (an implicit
  residual path), BatchNorm with a fixed unit scale and a trainable shift
  whose learning rate is 64x the others' (:class:`Norm`);
* global max pooling and a bias-free linear head scaled by 1/9.

Everything estimated from data (the per-channel mean and std that normalise
the input, and the whitening filters) comes from :meth:`FastNet.fit_data`,
which the training loop calls with the (possibly poisoned, defended)
training images before the first step; BatchNorm's statistics are running
averages over training batches. The test set is never looked at.

Pooling is skipped where a feature map is already 1 px, so any image size
works (8x8 digits included), with any channel and class count.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ntga.victims._models._conv import _patches, conv_general_dilated

#: Images per chunk when the statistics stream over the training set.
FIT_CHUNK = 500
WHITEN_KERNEL = 2
WHITEN_EPS = 5e-4
#: Eigenvalues below this fraction of the largest count as absent directions
#: (greyed CIFAR-10 images: ~1e-17; clean ones: smallest ~1.2e-5).
NULL_RATIO = 1e-9
#: Block widths: half of airbench94's (64, 256, 256), a quarter of its FLOPs,
#: so that a CIFAR-10 epoch takes ~2-2.5 minutes on 2 CPU cores.
WIDTHS = (32, 128, 128)


class DataStat(nnx.Variable):
  """A statistic estimated once from the training data (not trained)."""


def _dirac_conv(in_ch: int, out_ch: int, *, rngs: nnx.Rngs) -> nnx.Conv:
  """3x3 SAME conv, no bias, default init plus identity on the first inputs."""
  layer = nnx.Conv(in_ch, out_ch, (3, 3), padding="SAME", use_bias=False,
                   kernel_init=nnx.initializers.variance_scaling(
                       1 / 3, "fan_in", "uniform"),
                   conv_general_dilated=conv_general_dilated, rngs=rngs)
  k = layer.kernel[...]
  n = min(in_ch, out_ch)
  eye = jnp.zeros((3, 3, in_ch, n)).at[1, 1, jnp.arange(n), jnp.arange(n)].set(1.0)
  layer.kernel[...] = k.at[..., :n].set(eye)
  return layer


#: BatchNorm shifts are stored divided by this factor: under SGD that gives
#: them its square (64x) as learning-rate multiplier with the same relative
#: weight decay, airbench's "bias scaler".
SHIFT_SCALE = 8.0


class Norm(nnx.Module):
  """BatchNorm with a fixed unit scale and a shift learnt 64x faster.

  Running statistics decay by 0.9 per step (PyTorch momentum 0.1); eps 1e-12.
  """

  def __init__(self, ch: int, *, rngs: nnx.Rngs):
    self.bn = nnx.BatchNorm(ch, momentum=0.9, epsilon=1e-12, use_scale=False,
                            use_bias=False, rngs=rngs)
    self.shift = nnx.Param(jnp.zeros((ch,)))

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.bn(x) + SHIFT_SCALE * self.shift[...].reshape(1, 1, 1, -1)


def max_pool2(x: jax.Array) -> jax.Array:
  """2x2 max pooling, stride 2, floor; a reshape-max whose gradient is cheap.

  Maps of height or width 1 are returned unchanged.
  """
  n, h, w, c = x.shape
  if h < 2 or w < 2:
    return x
  x = x[:, :h // 2 * 2, :w // 2 * 2, :]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class ConvGroup(nnx.Module):
  """conv -> pool -> BN -> GELU -> conv -> BN -> GELU."""

  def __init__(self, in_ch: int, out_ch: int, *, rngs: nnx.Rngs):
    self.conv1 = _dirac_conv(in_ch, out_ch, rngs=rngs)
    self.norm1 = Norm(out_ch, rngs=rngs)
    self.conv2 = _dirac_conv(out_ch, out_ch, rngs=rngs)
    self.norm2 = Norm(out_ch, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = jax.nn.gelu(self.norm1(max_pool2(self.conv1(x))))
    return jax.nn.gelu(self.norm2(self.conv2(x)))


def _float_chunks(x: np.ndarray):
  """``x`` in chunks of :data:`FIT_CHUNK` images, as float32 in [0, 1]."""
  for i in range(0, len(x), FIT_CHUNK):
    chunk = np.asarray(x[i:i + FIT_CHUNK])
    if chunk.dtype == np.uint8:
      yield chunk.astype(np.float32) / 255.0
    else:
      yield chunk.astype(np.float32)


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and std over every pixel of every image of ``x``.

  Args:
    x: images (N, H, W, C): uint8, or float in [0, 1].

  Returns:
    (mean, std), each (C,) float32; the std is at least 1e-3.
  """
  total = np.zeros(x.shape[-1])
  squares = np.zeros(x.shape[-1])
  for chunk in _float_chunks(x):
    flat = chunk.reshape(-1, chunk.shape[-1]).astype(np.float64)
    total += flat.sum(0)
    squares += (flat * flat).sum(0)
  count = x.shape[0] * x.shape[1] * x.shape[2]
  mean = total / count
  std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
  return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def whitening_filters(x: np.ndarray, kernel: int = WHITEN_KERNEL,
                      eps: float = WHITEN_EPS, *, mean=0.0, std=1.0) -> np.ndarray:
  """The (k, k, C, 2*k*k*C) patch-whitening filters of the images ``x``.

  Args:
    x: images (N, H, W, C): uint8, or float in [0, 1]; every image counts.
    kernel: patch side.
    eps: added to each eigenvalue before the inverse square root.
    mean: per-channel mean subtracted first (scalar or (C,)).
    std: per-channel std divided by next: the filters whiten
      ``(x - mean) / std``.

  Returns:
    HWIO filters: the eigenvectors of the (uncentred) k x k patch covariance,
    largest eigenvalue first, scaled by ``1/sqrt(eigenvalue + eps)``, then the
    same filters negated. The slots of eigenvectors whose eigenvalue is
    below :data:`NULL_RATIO` times the largest repeat the other filters.
  """
  n, h, w, c = x.shape
  d = kernel * kernel * c
  cov = np.zeros((d, d))
  for chunk in _float_chunks(x):
    chunk = jnp.asarray((chunk - mean) / std, jnp.float32)
    p = _patches(chunk, (kernel, kernel), ((0, 0), (0, 0))).reshape(-1, d)
    cov += np.asarray(p.T @ p, np.float64)
  cov /= n * (h - kernel + 1) * (w - kernel + 1)
  vals, vecs = np.linalg.eigh(cov)
  vals, vecs = vals[::-1], vecs[:, ::-1]
  filt = vecs / np.sqrt(np.maximum(vals, 0.0) + eps)
  # Directions the training images do not vary in (e.g. colour after the
  # grayscale defense) would get a 1/sqrt(eps) gain that blows up whatever
  # the test images hold there; a zero filter instead would make a constant
  # channel, which BatchNorm (eps 1e-12) turns into NaN. Their slots repeat
  # the filters of the directions the images do vary in.
  null = np.flatnonzero(vals <= NULL_RATIO * vals[0])
  kept = np.flatnonzero(vals > NULL_RATIO * vals[0])
  if len(kept):  # (constant images have no direction to repeat)
    filt[:, null] = filt[:, kept[np.arange(len(null)) % len(kept)]]
  filt = filt.reshape(kernel, kernel, c, d)
  return np.concatenate([filt, -filt], axis=-1).astype(np.float32)


class FastNet(nnx.Module):
  """The ``fast`` victim (see the module docstring).

  Example:
    >>> model = FastNet((32, 32, 3), 10, rngs=nnx.Rngs(0))
    >>> model.fit_data(np.zeros((16, 32, 32, 3), np.uint8))
  """

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               widths: Sequence[int] = WIDTHS, scale: float = 1 / 9,
               rngs: nnx.Rngs):
    h, w, c = input_shape
    k = min(WHITEN_KERNEL, h, w)
    white = 2 * k * k * c
    self.mean = DataStat(jnp.zeros((c,)))
    self.std = DataStat(jnp.ones((c,)))
    self.whiten = DataStat(jnp.zeros((k, k, c, white)))
    self.whiten_bias = nnx.Param(jnp.zeros((white,)))
    groups, in_ch = [], white
    for width in widths:
      groups.append(ConvGroup(in_ch, width, rngs=rngs))
      in_ch = width
    self.groups = nnx.List(groups)
    self.head = nnx.Linear(in_ch, num_classes, use_bias=False, rngs=rngs)
    self.scale = scale

  def fit_data(self, x: np.ndarray) -> None:
    """Sets the input normalisation and the whitening filters from ``x``.

    Every image counts, streamed in chunks (no float copy of the whole set),
    so the statistics do not depend on the images' order: a data set stored
    class by class gives the same filters as a shuffled one. (airbench fits
    its whitening on the first 5,000 images of CIFAR-10's shuffled order; the
    first 5,000 of a class-sorted set, as the folder and tarball loaders
    return it, would be a single class.)

    Args:
      x: training images (N, H, W, C): uint8, or float in [0, 1].
    """
    mean, std = channel_stats(x)
    self.mean[...] = jnp.asarray(mean)
    self.std[...] = jnp.asarray(std)
    k = self.whiten[...].shape[0]
    self.whiten[...] = jnp.asarray(whitening_filters(x, kernel=k, mean=mean, std=std))

  def __call__(self, x: jax.Array) -> jax.Array:
    x = (x - self.mean[...].reshape(1, 1, 1, -1)) / self.std[...].reshape(1, 1, 1, -1)
    x = jax.lax.conv_general_dilated(
        x, self.whiten[...].astype(x.dtype), (1, 1), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = jax.nn.gelu(x + self.whiten_bias[...].reshape(1, 1, 1, -1))
    for group in self.groups:
      x = group(x)
    x = jnp.max(x, axis=(1, 2))
    return self.head(x) * self.scale

