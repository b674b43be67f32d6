"""A small Flax NNX CNN used as the source model of EM and REM.

The papers use a ResNet-18; on CPU that would take hours, so the source model
here is a compact conv net: two conv blocks, then a dense layer on the
flattened feature map (sized from the input shape). An earlier version pooled
the features globally before its linear head; with SGD it learnt so slowly
(32-43% training accuracy on 2,000 MNIST images after 100 steps of batch 128,
against 97-99% for this one) that EM never approached its stop accuracy and
its noise did not become a shortcut. The price of the dense layer: noise found
against it is tied to pixel positions, so a victim trained with random crops
largely ignores sample-wise EM noise (see benchmarks/attacks_victims.py). It
has no batch norm or dropout, so its whole state is its parameters and it is
used functionally: ``init`` returns ``(graphdef, params)`` and :func:`logits`
merges them.

Example:
  >>> gdef, params = init(jax.random.key(0), num_classes=10, input_shape=(32, 32, 3))
  >>> out = logits(gdef, params, jnp.zeros((2, 32, 32, 3)))
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx


class SourceCNN(nnx.Module):
  """conv3x3(w)-relu-pool2 -> conv3x3(2w)-relu-pool2 -> flatten -> dense(4w)-relu -> linear."""

  def __init__(self, num_classes: int, input_shape: tuple[int, int, int], *, width: int,
               rngs: nnx.Rngs):
    h, w, c = input_shape
    self.conv1 = nnx.Conv(c, width, (3, 3), rngs=rngs)
    self.conv2 = nnx.Conv(width, 2 * width, (3, 3), rngs=rngs)
    flat = -(-h // 4) * -(-w // 4) * 2 * width  # two SAME 2x2 pools: ceil(h/4) x ceil(w/4)
    self.dense = nnx.Linear(flat, 8 * width, rngs=rngs)
    self.head = nnx.Linear(8 * width, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = nnx.max_pool(nnx.relu(self.conv1(x)), (2, 2), (2, 2), padding="SAME")
    x = nnx.max_pool(nnx.relu(self.conv2(x)), (2, 2), (2, 2), padding="SAME")
    x = nnx.relu(self.dense(x.reshape((x.shape[0], -1))))
    return self.head(x)


def init(key: jax.Array, num_classes: int, input_shape: tuple[int, int, int],
         width: int = 32):
  """Builds a fresh model and splits it.

  Args:
    key: PRNG key for the weights.
    num_classes: output classes.
    input_shape: ``(H, W, C)`` of the images.
    width: channels of the first conv (doubled in the second; the dense layer
      has ``8 * width`` units).

  Returns:
    ``(graphdef, params)``: the static structure and the parameter pytree.
  """
  model = SourceCNN(num_classes, tuple(input_shape), width=width, rngs=nnx.Rngs(params=key))
  return nnx.split(model)


def logits(graphdef, params, x: jax.Array) -> jax.Array:
  """Class scores of images ``x`` (float32 in [0, 1], NHWC)."""
  return nnx.merge(graphdef, params)(x)


def loss(graphdef, params, x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy of the model on ``(x, y)``."""
  return optax.softmax_cross_entropy_with_integer_labels(logits(graphdef, params, x), y).mean()
