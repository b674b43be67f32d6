"""Infinite-width surrogate networks whose NTK drives NTGA.

Both surrogates follow Yuan & Wu, "Neural Tangent Generalization Attacks",
ICML 2021 (Sec. 5 and the authors' reference code), with weight and bias
variances W_std^2 = 1.76 and b_std^2 = 0.18:

* ``fnn``: 5 x [Dense(512) -> Erf] with no separate readout layer. Inputs are
  flattened images. ``get("fnn")`` computes its NTK with ``ntga._fnn_kernel``
  (per-image normalisers as vectors, a polynomial arcsin and a hand-written
  backward pass that reuses the forward's values; same values and gradients
  as NT's, faster); ``fnn_layers`` is the same network in NT's ``stax``,
  which the tests compare against.
* ``cnn``: 2 x [Conv(64, 5x5, stride 2, SAME) -> ReLU] -> Flatten -> Dense(384)
  -> Dense(192) -> Dense(num_classes). Flatten needs per-pixel
  ("diagonal-spatial") kernels. ``get("cnn")`` computes its NTK with
  ``ntga._cnn_kernel`` (patch matmuls instead of NT's per-pixel
  convolutions; same values and gradients, faster: ``cnn_kernel_speed`` in
  benchmarks/RESULTS.md); ``cnn_layers`` is the same network in NT's
  ``stax``, which the tests compare against.

Widths only matter for finite networks; the kernels are their infinite-width
limits. Example:

  >>> kernel_fn = get("fnn", num_classes=10)
  >>> k = kernel_fn(x1, x2)  # (n1, n2) NTK
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax

from ntga._cnn_kernel import cnn_ntk_fn
from ntga._fnn_kernel import fnn_ntk_fn
from ntga._compat import stax

W_STD = math.sqrt(1.76)
B_STD = math.sqrt(0.18)

KernelFn = Callable[[jax.Array, jax.Array], jax.Array]
NAMES = ("fnn", "cnn")


def fnn_layers(width: int = 512, depth: int = 5):
  """The paper's fully connected surrogate as an NT ``stax`` triple."""
  block = [stax.Dense(width, W_std=W_STD, b_std=B_STD), stax.Erf()]
  return stax.serial(*(block * depth))


def cnn_layers(num_classes: int, channels: int = 64):
  """The paper's convolutional surrogate as an NT ``stax`` triple."""
  conv = [stax.Conv(channels, (5, 5), (2, 2), padding="SAME",
                    W_std=W_STD, b_std=B_STD), stax.Relu()]
  return stax.serial(
      *(conv * 2), stax.Flatten(),
      stax.Dense(384, W_std=W_STD, b_std=B_STD),
      stax.Dense(192, W_std=W_STD, b_std=B_STD),
      stax.Dense(num_classes, W_std=W_STD, b_std=B_STD))


# The cnn kernel on single-channel images runs in sub-tiles of this many
# image pairs (``cnn_ntk_fn(tile=...)``): its per-pixel arrays then stay in
# cache. ``cnn_tile_sweep`` in benchmarks/RESULTS.md: on 28x28x1 images a
# 250 x 512 tile's value and gradient ran 1.12x faster in these sub-tiles
# (gradient to the column images, as in K_mn) and 1.18x (to both sides, as
# in K_nn; (125, 64): 1.24x and 1.23x); on 32x32x3 images, whose first
# layer's 75-feature patch products are larger matmuls, every sub-tile was
# slower (0.63-0.93x), so colour images stay whole.
CNN_GREY_SUB_TILE = (50, 64)


@functools.lru_cache(maxsize=None)
def get(name: str, num_classes: int, *, sub_tiles: bool = True) -> KernelFn:
  """Returns the NTK function ``k(x1, x2) -> (n1, n2)`` of a surrogate.

  The same arguments return the same function object, so that compiled
  programs built on it (``ntga.pgd``) are reused across calls.

  Args:
    name: ``"fnn"`` or ``"cnn"``.
    num_classes: number of output classes (only the CNN's readout uses it).
    sub_tiles: cnn only: compute single-channel images in sub-tiles of
      :data:`CNN_GREY_SUB_TILE` pairs (faster, same values). False: in one
      piece, which XLA's cost analysis can count (it counts a loop's body
      once).

  Returns:
    A function of two float32 NHWC image batches in [0, 1] returning their
    NTK matrix. ``fnn`` flattens the images itself.
  """
  if name == "fnn":
    kernel_fn = fnn_ntk_fn(w_var=W_STD**2, b_var=B_STD**2, depth=5)
  elif name == "cnn":
    # The readout width (num_classes) does not change the infinite-width NTK.
    whole = cnn_ntk_fn(w_var=W_STD**2, b_var=B_STD**2)
    grey = cnn_ntk_fn(w_var=W_STD**2, b_var=B_STD**2, tile=CNN_GREY_SUB_TILE)

    def kernel_fn(x1: jax.Array, x2: jax.Array) -> jax.Array:
      return (grey if sub_tiles and x1.shape[-1] == 1 else whole)(x1, x2)
  else:
    from ntga.errors import ConfigError  # pylint: disable=g-import-not-at-top
    raise ConfigError(f"unknown surrogate {name!r}; choose one of {NAMES}")
  return kernel_fn
