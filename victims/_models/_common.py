"""Shared helpers for the victim models."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from ntga.victims._models._conv import conv_general_dilated


def same_size(size: int, stride: int) -> int:
  """Spatial size after a SAME-padded window op with ``stride``."""
  return int(math.ceil(size / stride))


def max_pool_same(x: jax.Array, window: int, stride: int) -> jax.Array:
  """Max pooling with SAME padding, so any input size >= 1 works."""
  return nnx.max_pool(x, (window, window), strides=(stride, stride), padding="SAME")


def avg_pool_same(x: jax.Array, window: int, stride: int) -> jax.Array:
  """Average pooling with SAME padding, padded cells excluded from the mean."""
  return nnx.avg_pool(
      x, (window, window), strides=(stride, stride), padding="SAME",
      count_include_pad=False)


def global_avg_pool(x: jax.Array) -> jax.Array:
  """Mean over the spatial axes of an NHWC tensor."""
  return jnp.mean(x, axis=(1, 2))


def conv(in_ch: int, out_ch: int, kernel: int, *, rngs: nnx.Rngs, stride: int = 1,
         groups: int = 1, bias: bool = False) -> nnx.Conv:
  """A SAME-padded 2-D convolution with He-normal (fan-out) initialisation.

  Unit-stride layers take their gradient as patch matmuls
  (:mod:`ntga.victims._models._conv`), several times faster than XLA's CPU
  convolution backward pass, with the same values.
  """
  return nnx.Conv(
      in_ch, out_ch, (kernel, kernel), strides=(stride, stride), padding="SAME",
      feature_group_count=groups, use_bias=bias,
      kernel_init=nnx.initializers.variance_scaling(2.0, "fan_out", "normal"),
      conv_general_dilated=conv_general_dilated, rngs=rngs)


def batch_norm(ch: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
  """Batch norm with PyTorch-like momentum (0.9 running-average decay)."""
  return nnx.BatchNorm(ch, momentum=0.9, epsilon=1e-5, rngs=rngs)


def preact_head(model, x: jax.Array) -> jax.Array:
  """stem -> layers -> ReLU(BN) -> global average pool -> linear head.

  The forward pass shared by the pre-activation networks (DenseNet,
  Wide ResNet): ``model`` has ``stem``, ``layers``, ``bn`` and ``head``.
  """
  x = model.stem(x)
  for layer in model.layers:
    x = layer(x)
  x = jax.nn.relu(model.bn(x))
  return model.head(global_avg_pool(x))
