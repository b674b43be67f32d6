"""DenseNet-121 with a small-image stem.

Reference: Huang et al., "Densely Connected Convolutional Networks", CVPR 2017
(DenseNet-BC: growth rate 32, blocks of 6/12/24/16 bottleneck layers,
compression 0.5). For 28-32 px inputs the 7x7/2 stem and max pool become one
3x3/1 convolution with 2 x growth channels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ntga.victims._models import _common


class DenseLayer(nnx.Module):
  """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k); its output is concatenated."""

  def __init__(self, in_ch: int, growth: int, *, rngs: nnx.Rngs):
    self.bn1 = _common.batch_norm(in_ch, rngs=rngs)
    self.conv1 = _common.conv(in_ch, 4 * growth, 1, rngs=rngs)
    self.bn2 = _common.batch_norm(4 * growth, rngs=rngs)
    self.conv2 = _common.conv(4 * growth, growth, 3, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv1(jax.nn.relu(self.bn1(x)))
    y = self.conv2(jax.nn.relu(self.bn2(y)))
    return jnp.concatenate([x, y], axis=-1)


class Transition(nnx.Module):
  """BN-ReLU-Conv1x1 (compression) then 2x2/2 average pooling."""

  def __init__(self, in_ch: int, out_ch: int, *, rngs: nnx.Rngs):
    self.bn = _common.batch_norm(in_ch, rngs=rngs)
    self.conv = _common.conv(in_ch, out_ch, 1, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return _common.avg_pool_same(self.conv(jax.nn.relu(self.bn(x))), 2, 2)


class DenseNet(nnx.Module):
  """DenseNet-BC; ``blocks=(6, 12, 24, 16)`` and growth 32 give DenseNet-121."""

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               blocks=(6, 12, 24, 16), growth: int = 32, rngs: nnx.Rngs):
    ch = 2 * growth
    self.stem = _common.conv(input_shape[-1], ch, 3, rngs=rngs)
    layers = []
    for b, n in enumerate(blocks):
      for _ in range(n):
        layers.append(DenseLayer(ch, growth, rngs=rngs))
        ch += growth
      if b < len(blocks) - 1:
        layers.append(Transition(ch, ch // 2, rngs=rngs))
        ch //= 2
    self.layers = nnx.List(layers)
    self.bn = _common.batch_norm(ch, rngs=rngs)
    self.head = nnx.Linear(ch, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return _common.preact_head(self, x)
