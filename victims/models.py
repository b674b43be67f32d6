"""Victim model zoo (Flax NNX).

Every model takes any NHWC input size and channel count and any number of
classes; ``input_shape`` is needed up front only to size the layers that depend
on it (flattening dense layers, ViT position embeddings).

Example:
  >>> from flax import nnx
  >>> from ntga.victims import models
  >>> model = models.create("cnn", num_classes=10, input_shape=(28, 28, 1),
  ...                       rngs=nnx.Rngs(0))
"""

from __future__ import annotations

import math
from typing import Callable

import jax
from flax import nnx

from ntga.errors import ConfigError
from ntga.victims import _names
from ntga.victims._models import _densenet, _fast, _mobilenet, _resnet, _small, _vgg, _vit

_Factory = Callable[[tuple[int, int, int], int, nnx.Rngs], nnx.Module]

_FACTORIES: dict[str, _Factory] = {
    "fnn": lambda s, k, r: _small.FNN(s, k, activation=jax.lax.erf,
                                      ntk_init=True, rngs=r),
    "fnn-relu": lambda s, k, r: _small.FNN(s, k, activation=jax.nn.relu,
                                           ntk_init=False, rngs=r),
    "cnn": lambda s, k, r: _small.SmallCNN(s, k, rngs=r),
    "fast": lambda s, k, r: _fast.FastNet(s, k, rngs=r),
    "resnet18": lambda s, k, r: _resnet.ResNet(s, k, blocks=(2, 2, 2, 2), rngs=r),
    "resnet34": lambda s, k, r: _resnet.ResNet(s, k, blocks=(3, 4, 6, 3), rngs=r),
    "vgg16": lambda s, k, r: _vgg.VGG(s, k, rngs=r),
    "densenet121": lambda s, k, r: _densenet.DenseNet(s, k, rngs=r),
    "wrn-34-10": lambda s, k, r: _resnet.WideResNet(s, k, depth=34, widen=10,
                                                    rngs=r),
    "mobilenetv2": lambda s, k, r: _mobilenet.MobileNetV2(s, k, rngs=r),
    "vit-small": lambda s, k, r: _vit.ViT(s, k, rngs=r),
}

#: Names accepted by :func:`create`, in a stable order.
NAMES: tuple[str, ...] = _names.VICTIMS
assert set(NAMES) == set(_FACTORIES)


def create(name: str, *, num_classes: int, input_shape: tuple[int, int, int],
           rngs: nnx.Rngs) -> nnx.Module:
  """Builds a freshly initialised victim model.

  Args:
    name: one of :data:`NAMES` (``fnn``, ``fnn-relu``, ``cnn``, ``fast``, ``resnet18``,
      ``resnet34``, ``vgg16``, ``densenet121``, ``wrn-34-10``, ``mobilenetv2``,
      ``vit-small``).
    num_classes: number of output logits (>= 2).
    input_shape: (height, width, channels) of one image.
    rngs: NNX RNG streams; ``params`` initialises weights and ``dropout`` (or
      the default stream) drives dropout in training mode.

  Returns:
    The model, in training mode (call ``model.eval()`` for inference). It maps
    float32 images (N, H, W, C) in [0, 1] to logits (N, num_classes).

  Raises:
    ConfigError: unknown name, or a class count / input shape out of range.

  Example:
    >>> m = create("resnet18", num_classes=10, input_shape=(32, 32, 3),
    ...            rngs=nnx.Rngs(0))
  """
  if name not in _FACTORIES:
    raise ConfigError(f"unknown victim {name!r}; choose one of {', '.join(NAMES)}")
  if num_classes < 2:
    raise ConfigError(f"victim {name!r}: num_classes must be >= 2, got {num_classes}")
  shape = tuple(int(d) for d in input_shape)
  if len(shape) != 3 or min(shape) < 1:
    raise ConfigError(
        f"victim {name!r}: input_shape must be (height, width, channels) >= 1, "
        f"got {input_shape}")
  return _FACTORIES[name](shape, int(num_classes), rngs)


def count_params(model: nnx.Module) -> int:
  """Number of trainable parameters (``nnx.Param`` entries) in ``model``."""
  leaves = jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))
  return int(sum(math.prod(leaf.shape) for leaf in leaves))


def fit_data(model: nnx.Module, x) -> None:
  """Lets ``model`` estimate what it takes from its training images.

  The ``fast`` victim sets its input normalisation and patch-whitening filters
  here; models that estimate nothing from data are left unchanged. Call it
  with the training images only (uint8 NHWC, or float in [0, 1]), never with
  test images.

  Example:
    >>> m = create("fast", num_classes=10, input_shape=(32, 32, 3),
    ...            rngs=nnx.Rngs(0))
    >>> fit_data(m, train_images)  # doctest: +SKIP
  """
  fit = getattr(model, "fit_data", None)
  if fit is not None:
    fit(x)
