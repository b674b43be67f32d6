"""Tests for victims.models: forward passes, parameter counts, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ntga.errors import ConfigError
from ntga.victims import models

FAST = ("fnn", "fnn-relu", "cnn", "resnet18", "vgg16")
BIG = ("resnet34", "densenet121", "wrn-34-10", "mobilenetv2", "vit-small")


def _forward(name, shape, n, num_classes=10):
  model = models.create(name, num_classes=num_classes, input_shape=shape,
                        rngs=nnx.Rngs(0))
  model.eval()
  x = jax.random.uniform(jax.random.key(1), (n,) + shape)
  return np.asarray(nnx.jit(lambda m, z: m(z))(model, x))


def test_names_cover_the_issue():
  assert set(models.NAMES) == set(FAST) | set(BIG) | {"fast"}  # tests/test_victims_fast.py


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("name", FAST)
def test_forward_fast_models(name, shape):
  out = _forward(name, shape, 2)
  assert out.shape == (2, 10)
  assert np.all(np.isfinite(out))
  assert not np.allclose(out[0], out[1])  # depends on the input


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("name", BIG)
def test_forward_big_models(name, shape):
  out = _forward(name, shape, 1)
  assert out.shape == (1, 10)
  assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", ["cnn", "resnet18", "vit-small"])
def test_any_size_channels_and_classes(name):
  """8x8 inputs (digits) and 5 channels / 3 classes do not break the stems."""
  abstract = nnx.eval_shape(lambda: models.create(
      name, num_classes=3, input_shape=(8, 8, 5), rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(abstract)
  out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state,
                       jax.ShapeDtypeStruct((2, 8, 8, 5), jnp.float32))
  assert out.shape == (2, 3)


def _abstract_params(name, shape=(32, 32, 3), k=10):
  abstract = nnx.eval_shape(lambda: models.create(
      name, num_classes=k, input_shape=shape, rngs=nnx.Rngs(0)))
  return models.count_params(abstract)


@pytest.mark.parametrize("name,low,high", [
    ("resnet18", 11.1e6, 11.3e6),     # He et al. CIFAR variant: 11.17M
    ("resnet34", 21.2e6, 21.4e6),
    ("vgg16", 14.6e6, 14.8e6),
    ("densenet121", 6.8e6, 7.1e6),
    ("wrn-34-10", 46.0e6, 46.3e6),    # Zagoruyko & Komodakis: 46.2M
    ("mobilenetv2", 2.1e6, 2.4e6),
    ("vit-small", 21.0e6, 21.8e6),
])
def test_parameter_counts(name, low, high):
  assert low <= _abstract_params(name) <= high


def test_cnn_and_fnn_sizes():
  # fnn: 784*512 + 3*512*512 + 512*10 weights, plus biases.
  assert _abstract_params("fnn", (28, 28, 1)) == (784 * 512 + 512 + 3 * (512 * 512 + 512)
                                                  + 512 * 10 + 10)
  # cnn at 28x28: two SAME max pools leave 7x7x64 features for Dense 384.
  cnn = _abstract_params("cnn", (28, 28, 1))
  assert cnn > 7 * 7 * 64 * 384


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="resnet99"), "unknown victim"),
    (dict(name="cnn", num_classes=1), "num_classes"),
    (dict(name="cnn", input_shape=(8, 8)), "input_shape"),
])
def test_bad_arguments(kwargs, match):
  args = dict(num_classes=10, input_shape=(8, 8, 1), rngs=nnx.Rngs(0)) | kwargs
  name = args.pop("name")
  with pytest.raises(ConfigError, match=match):
    models.create(name, **args)
