"""VGG-16 with batch norm for small images.

Reference: Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015 (configuration D). The small-image
variant keeps the 13 convolutions (with batch norm, Ioffe & Szegedy 2015) and
replaces the three 4096-wide layers with one linear classifier on the pooled
512 features, as is usual for CIFAR-10.
"""

from __future__ import annotations

import jax
from flax import nnx

from ntga.victims._models import _common

_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M")


class VGG(nnx.Module):
  """VGG with batch norm; "M" entries are 2x2/2 SAME max pools."""

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               cfg=_VGG16, rngs: nnx.Rngs):
    in_ch = input_shape[-1]
    convs, bns = [], []
    self.cfg = tuple(cfg)
    for item in cfg:
      if item == "M":
        continue
      convs.append(_common.conv(in_ch, item, 3, rngs=rngs))
      bns.append(_common.batch_norm(item, rngs=rngs))
      in_ch = item
    self.convs = nnx.List(convs)
    self.bns = nnx.List(bns)
    self.head = nnx.Linear(in_ch, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    i = 0
    for item in self.cfg:
      if item == "M":
        x = _common.max_pool_same(x, 2, 2)
      else:
        x = jax.nn.relu(self.bns[i](self.convs[i](x)))
        i += 1
    return self.head(_common.global_avg_pool(x))
