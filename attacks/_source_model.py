"""A small Flax NNX CNN used as the source model of EM and REM.

The papers use a ResNet-18; on CPU that would take hours, so the source model
here is a compact conv net (two conv blocks and a linear head on globally pooled
features) that accepts any image size and channel count. It has no batch norm
or dropout, so its whole state is its parameters and it is used functionally:
``init`` returns ``(graphdef, params)`` and :func:`logits` merges them.

Example:
  >>> gdef, params = init(jax.random.key(0), num_classes=10, channels=3)
  >>> out = logits(gdef, params, jnp.zeros((2, 32, 32, 3)))
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx


class SourceCNN(nnx.Module):
  """conv3x3(w)-relu-pool2 -> conv3x3(2w)-relu-pool2 -> conv3x3(4w)-relu -> mean -> linear."""

  def __init__(self, num_classes: int, channels: int, *, width: int, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(channels, width, (3, 3), rngs=rngs)
    self.conv2 = nnx.Conv(width, 2 * width, (3, 3), rngs=rngs)
    self.conv3 = nnx.Conv(2 * width, 4 * width, (3, 3), rngs=rngs)
    self.head = nnx.Linear(4 * width, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = nnx.max_pool(nnx.relu(self.conv1(x)), (2, 2), (2, 2), padding="SAME")
    x = nnx.max_pool(nnx.relu(self.conv2(x)), (2, 2), (2, 2), padding="SAME")
    x = nnx.relu(self.conv3(x))
    return self.head(jnp.mean(x, axis=(1, 2)))


def init(key: jax.Array, num_classes: int, channels: int, width: int = 32):
  """Builds a fresh model and splits it.

  Args:
    key: PRNG key for the weights.
    num_classes: output classes.
    channels: input channels.
    width: channels of the first conv (doubled per block).

  Returns:
    ``(graphdef, params)``: the static structure and the parameter pytree.
  """
  model = SourceCNN(num_classes, channels, width=width, rngs=nnx.Rngs(params=key))
  return nnx.split(model)


def logits(graphdef, params, x: jax.Array) -> jax.Array:
  """Class scores of images ``x`` (float32 in [0, 1], NHWC)."""
  return nnx.merge(graphdef, params)(x)


def loss(graphdef, params, x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy of the model on ``(x, y)``."""
  return optax.softmax_cross_entropy_with_integer_labels(logits(graphdef, params, x), y).mean()
