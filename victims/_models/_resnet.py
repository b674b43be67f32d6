"""ResNet-18/34 and WideResNet-34-10 with small-image stems.

References:
  He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
  (basic blocks; 18 = [2, 2, 2, 2], 34 = [3, 4, 6, 3]). For 28-32 px inputs the
  ImageNet 7x7/2 stem and max pool are replaced by one 3x3/1 convolution, the
  usual CIFAR adaptation used by the unlearnable-examples literature.
  Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016 (pre-activation
  blocks; depth 34 = 3 groups of 5 blocks, widen factor 10), the model of
  Madry et al., ICLR 2018 and later adversarial-training work.
"""

from __future__ import annotations

from typing import Sequence

import jax
from flax import nnx

from ntga.victims._models import _common


class BasicBlock(nnx.Module):
  """Two 3x3 convolutions with batch norm and an identity/projection shortcut."""

  def __init__(self, in_ch: int, out_ch: int, stride: int, *, rngs: nnx.Rngs):
    self.conv1 = _common.conv(in_ch, out_ch, 3, stride=stride, rngs=rngs)
    self.bn1 = _common.batch_norm(out_ch, rngs=rngs)
    self.conv2 = _common.conv(out_ch, out_ch, 3, rngs=rngs)
    self.bn2 = _common.batch_norm(out_ch, rngs=rngs)
    if stride != 1 or in_ch != out_ch:
      self.proj = _common.conv(in_ch, out_ch, 1, stride=stride, rngs=rngs)
      self.proj_bn = _common.batch_norm(out_ch, rngs=rngs)
    else:
      self.proj = None
      self.proj_bn = None

  def __call__(self, x: jax.Array) -> jax.Array:
    y = jax.nn.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    shortcut = x if self.proj is None else self.proj_bn(self.proj(x))
    return jax.nn.relu(y + shortcut)


class ResNet(nnx.Module):
  """A CIFAR-style ResNet of basic blocks (widths 64, 128, 256, 512)."""

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               blocks: Sequence[int], rngs: nnx.Rngs):
    c = input_shape[-1]
    self.stem = _common.conv(c, 64, 3, rngs=rngs)
    self.stem_bn = _common.batch_norm(64, rngs=rngs)
    layers, in_ch = [], 64
    for stage, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
      for i in range(n):
        stride = 2 if stage > 0 and i == 0 else 1
        layers.append(BasicBlock(in_ch, width, stride, rngs=rngs))
        in_ch = width
    self.layers = nnx.List(layers)
    self.head = nnx.Linear(in_ch, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = jax.nn.relu(self.stem_bn(self.stem(x)))
    for layer in self.layers:
      x = layer(x)
    return self.head(_common.global_avg_pool(x))


class WideBlock(nnx.Module):
  """A pre-activation wide residual block (BN-ReLU-conv twice)."""

  def __init__(self, in_ch: int, out_ch: int, stride: int, *, rngs: nnx.Rngs):
    self.bn1 = _common.batch_norm(in_ch, rngs=rngs)
    self.conv1 = _common.conv(in_ch, out_ch, 3, stride=stride, rngs=rngs)
    self.bn2 = _common.batch_norm(out_ch, rngs=rngs)
    self.conv2 = _common.conv(out_ch, out_ch, 3, rngs=rngs)
    if stride != 1 or in_ch != out_ch:
      self.proj = _common.conv(in_ch, out_ch, 1, stride=stride, rngs=rngs)
    else:
      self.proj = None

  def __call__(self, x: jax.Array) -> jax.Array:
    a = jax.nn.relu(self.bn1(x))
    y = self.conv1(a)
    y = self.conv2(jax.nn.relu(self.bn2(y)))
    shortcut = x if self.proj is None else self.proj(a)
    return y + shortcut


class WideResNet(nnx.Module):
  """WRN-depth-widen: 3 groups of (depth - 4) / 6 pre-activation blocks."""

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               depth: int = 34, widen: int = 10, rngs: nnx.Rngs):
    n = (depth - 4) // 6
    c = input_shape[-1]
    self.stem = _common.conv(c, 16, 3, rngs=rngs)
    layers, in_ch = [], 16
    for stage, width in enumerate((16 * widen, 32 * widen, 64 * widen)):
      for i in range(n):
        stride = 2 if stage > 0 and i == 0 else 1
        layers.append(WideBlock(in_ch, width, stride, rngs=rngs))
        in_ch = width
    self.layers = nnx.List(layers)
    self.bn = _common.batch_norm(in_ch, rngs=rngs)
    self.head = nnx.Linear(in_ch, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return _common.preact_head(self, x)
