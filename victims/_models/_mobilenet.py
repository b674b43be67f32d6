"""MobileNetV2 for small images.

Reference: Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018 (Table 2). For 28-32 px inputs the stem and the first
two strided stages use stride 1 (32 px -> 4 px at the end instead of 1 px).
"""

from __future__ import annotations

import jax
from flax import nnx

from ntga.victims._models import _common

# (expansion t, channels c, repeats n, first stride s); strides adapted to 32 px.
_CFG = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nnx.Module):
  """Expand 1x1 -> depthwise 3x3 -> linear project 1x1 (+ residual)."""

  def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int, *,
               rngs: nnx.Rngs):
    hidden = in_ch * expand
    if expand != 1:
      self.expand = _common.conv(in_ch, hidden, 1, rngs=rngs)
      self.expand_bn = _common.batch_norm(hidden, rngs=rngs)
    else:
      self.expand = None
      self.expand_bn = None
    self.dw = _common.conv(hidden, hidden, 3, stride=stride, groups=hidden,
                           rngs=rngs)
    self.dw_bn = _common.batch_norm(hidden, rngs=rngs)
    self.project = _common.conv(hidden, out_ch, 1, rngs=rngs)
    self.project_bn = _common.batch_norm(out_ch, rngs=rngs)
    self.residual = stride == 1 and in_ch == out_ch

  def __call__(self, x: jax.Array) -> jax.Array:
    y = x
    if self.expand is not None:
      y = jax.nn.relu6(self.expand_bn(self.expand(y)))
    y = jax.nn.relu6(self.dw_bn(self.dw(y)))
    y = self.project_bn(self.project(y))
    return x + y if self.residual else y


class MobileNetV2(nnx.Module):
  """MobileNetV2 (width multiplier 1.0) with a 3x3/1 stem."""

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               rngs: nnx.Rngs):
    self.stem = _common.conv(input_shape[-1], 32, 3, rngs=rngs)
    self.stem_bn = _common.batch_norm(32, rngs=rngs)
    layers, in_ch = [], 32
    for t, c, n, s in _CFG:
      for i in range(n):
        layers.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t, rngs=rngs))
        in_ch = c
    self.layers = nnx.List(layers)
    self.last = _common.conv(in_ch, 1280, 1, rngs=rngs)
    self.last_bn = _common.batch_norm(1280, rngs=rngs)
    self.head = nnx.Linear(1280, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = jax.nn.relu6(self.stem_bn(self.stem(x)))
    for layer in self.layers:
      x = layer(x)
    x = jax.nn.relu6(self.last_bn(self.last(x)))
    return self.head(_common.global_avg_pool(x))
