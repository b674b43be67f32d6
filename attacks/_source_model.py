"""A small Flax NNX CNN used as the source model of EM and REM.

The papers use a ResNet-18; on CPU that would take hours, so the source model
here is a compact conv net with the two ResNet traits that matter for the
noise: every conv is followed by a normalisation layer, and the head is a
linear layer on globally average-pooled features. Pooling makes the noise a
*translation-robust* shortcut (a feature of the pattern counts wherever it
sits), so it survives a victim's random crops; an earlier version with a dense
layer on the flattened feature map found noise tied to pixel positions, which
a victim trained with crop + flip ignored. Normalisation is what lets the
pooled net learn fast under plain SGD (an earlier pooled version without it
barely learnt in the few hundred steps a CPU run allows).

The normalisation is GroupNorm (4 groups, fewer when a layer has fewer
channels), not the ResNet's BatchNorm: it has no running statistics, so the
model behaves the same in training and evaluation, a batch's noise does not
depend on the other images in the batch, and the model's whole state is its
parameters. It is used functionally: ``init`` returns ``(graphdef, params)``
and :func:`logits` merges them.

Example:
  >>> gdef, params = init(jax.random.key(0), num_classes=10, input_shape=(32, 32, 3))
  >>> out = logits(gdef, params, jnp.zeros((2, 32, 32, 3)))
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx

_GROUPS = 4


class SourceCNN(nnx.Module):
  """3 x [conv3x3 -> GroupNorm -> relu] (w, 2w, 4w channels; 2x2 max-pool between)
  -> global average pool -> linear."""

  def __init__(self, num_classes: int, input_shape: tuple[int, int, int], *, width: int,
               rngs: nnx.Rngs):
    cin = input_shape[-1]
    self.convs, self.norms = nnx.List([]), nnx.List([])
    for ch in (width, 2 * width, 4 * width):
      self.convs.append(nnx.Conv(cin, ch, (3, 3), use_bias=False, rngs=rngs))
      self.norms.append(nnx.GroupNorm(ch, num_groups=math.gcd(_GROUPS, ch), rngs=rngs))
      cin = ch
    self.head = nnx.Linear(cin, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
      if i:
        x = nnx.max_pool(x, (2, 2), (2, 2), padding="SAME")
      x = nnx.relu(norm(conv(x)))
    return self.head(x.mean(axis=(1, 2)))


def init(key: jax.Array, num_classes: int, input_shape: tuple[int, int, int],
         width: int = 32):
  """Builds a fresh model and splits it.

  Args:
    key: PRNG key for the weights.
    num_classes: output classes.
    input_shape: ``(H, W, C)`` of the images.
    width: channels of the first conv (doubled in the second, quadrupled in
      the third, which feeds the pooled linear head).

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
