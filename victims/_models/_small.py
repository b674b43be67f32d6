"""The NTGA paper's small victims: a fully connected net and a small CNN.

Reference: Yuan & Wu, "Neural Tangent Generalization Attacks", ICML 2021,
Section 5 (FNN: 4 hidden Dense(512) layers with erf; CNN: two
[Conv 64 5x5, ReLU, MaxPool 3/2, BatchNorm] blocks, Dense 384, Dense 192).
"""

from __future__ import annotations

import math

import jax
from flax import nnx

from ntga.victims._models import _common
from ntga.victims._models._conv import conv_general_dilated


class FNN(nnx.Module):
  """A multilayer perceptron on flattened images.

  With ``activation=jax.lax.erf`` and the NTK-style initialisation
  (weight variance 1.76 / fan-in, bias variance 0.18) this is the paper's FNN;
  with ReLU and He initialisation it is the ``fnn-relu`` victim.
  """

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               depth: int = 4, width: int = 512, activation=jax.lax.erf,
               ntk_init: bool = True, rngs: nnx.Rngs):
    if ntk_init:
      w_init = nnx.initializers.variance_scaling(1.76, "fan_in", "normal")
      b_init = nnx.initializers.normal(math.sqrt(0.18))
    else:
      w_init = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")
      b_init = nnx.initializers.zeros_init()
    d_in = math.prod(input_shape)
    layers = []
    for _ in range(depth):
      layers.append(nnx.Linear(d_in, width, kernel_init=w_init, bias_init=b_init,
                               rngs=rngs))
      d_in = width
    self.hidden = nnx.List(layers)
    self.out = nnx.Linear(d_in, num_classes, rngs=rngs)
    self.activation = activation

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.reshape((x.shape[0], -1))
    for layer in self.hidden:
      x = self.activation(layer(x))
    return self.out(x)


class SmallCNN(nnx.Module):
  """The NTGA paper's CNN victim.

  Two blocks of [Conv 64 5x5 SAME, ReLU, MaxPool 3x3 stride 2 SAME, BatchNorm],
  then Dense 384 + ReLU, Dropout 0.5, Dense 192 + ReLU, Dense ``num_classes``.
  SAME padding keeps every input size >= 1 pixel valid (8x8 -> 4x4 -> 2x2).
  """

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               rngs: nnx.Rngs):
    h, w, c = input_shape
    self.conv1 = nnx.Conv(c, 64, (5, 5), padding="SAME", rngs=rngs,
                          conv_general_dilated=conv_general_dilated)
    self.bn1 = _common.batch_norm(64, rngs=rngs)
    self.conv2 = nnx.Conv(64, 64, (5, 5), padding="SAME", rngs=rngs,
                          conv_general_dilated=conv_general_dilated)
    self.bn2 = _common.batch_norm(64, rngs=rngs)
    for _ in range(2):
      h, w = _common.same_size(h, 2), _common.same_size(w, 2)
    self.fc1 = nnx.Linear(h * w * 64, 384, rngs=rngs)
    self.dropout = nnx.Dropout(0.5, rngs=rngs)
    self.fc2 = nnx.Linear(384, 192, rngs=rngs)
    self.out = nnx.Linear(192, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2)):
      x = bn(_common.max_pool_same(jax.nn.relu(conv(x)), 3, 2))
    x = x.reshape((x.shape[0], -1))
    x = self.dropout(jax.nn.relu(self.fc1(x)))
    x = jax.nn.relu(self.fc2(x))
    return self.out(x)
