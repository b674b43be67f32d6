"""The source models of EM and REM, used functionally (private implementation).

Both papers train a ResNet-18 with BatchNorm as the source model, in PyTorch's
train mode for its SGD steps and in eval mode (running statistics) whenever
the noise or an adversarial example is computed and when its accuracy is
measured (Huang et al., github.com/HanxunH/Unlearnable-Examples,
perturbation.py: ``model.train()`` before ``trainer.train_batch``,
``model.eval()`` before ``min_min_attack``; Fu et al.,
github.com/fshp971/robust-unlearnable-examples, attacks/robust_workers.py and
pgd_attacker.py: ``model.eval()`` in every PGD, ``model.train()`` for the
step). This module does the same with any model of :mod:`ntga.victims.models`
(``"resnet18"``, ``"fast"``, ...): :func:`init` builds the model, lets it fit
what it takes from the training images (``fast``'s input normalisation and
patch whitening, from the clean images EM/REM are given) and splits it into a
static :class:`Net` (the train-mode and the eval-mode graph) and its state
(``params``: the trained weights; ``rest``: BatchNorm running statistics and
data statistics). :func:`train_logits` runs train mode and returns the
updated ``rest``; :func:`eval_logits` runs eval mode and leaves it alone.

``"groupnorm-cnn"`` is the earlier source model of this library, kept as a
named option: 3 x [conv3x3 -> GroupNorm -> relu] (``width``, 2 x ``width``,
4 x ``width`` channels, 2x2 max pool between) -> global average pool ->
linear. It has no running statistics (``rest`` is empty and both modes are
the same function). On CIFAR-10 at width 16 it met EM's 99% stop rule on the
perturbed data while scoring 28.6% on the clean training images: it learnt
the noise, not the images, which made weak noise.

Example:
  >>> net, params, rest = init(jax.random.key(0), "fast", num_classes=10,
  ...                          x_fit=x_train)
  >>> out, rest = train_logits(net, params, rest, jnp.zeros((2, 32, 32, 3)))
  >>> out = eval_logits(net, params, rest, jnp.zeros((2, 32, 32, 3)))
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
from flax import nnx

from ntga.errors import ConfigError
from ntga.victims import models

#: The earlier GroupNorm CNN's name (the only source model ``width`` applies to).
GROUPNORM_CNN = "groupnorm-cnn"
#: Every accepted ``source_model``: the victims' models and the GroupNorm CNN.
NAMES: tuple[str, ...] = tuple(models.NAMES) + (GROUPNORM_CNN,)
#: ``width`` of the GroupNorm CNN when none is given.
DEFAULT_WIDTH = 32

_GROUPS = 4


class SourceCNN(nnx.Module):
  """3 x [conv3x3 -> GroupNorm -> relu] (w, 2w, 4w channels; 2x2 max-pool between)
  -> global average pool -> linear (the ``"groupnorm-cnn"`` source model)."""

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


@dataclasses.dataclass(frozen=True)
class Net:
  """The static structure of a source model (hashable: a jit cache key).

  Attributes:
    name: the ``source_model`` it was built from.
    graph_train: the train-mode graph (BatchNorm on batch statistics,
      updating its running averages).
    graph_eval: the eval-mode graph (BatchNorm on its running averages).
  """

  name: str
  graph_train: Any
  graph_eval: Any


class Source(NamedTuple):
  """A source model: structure and state (what :func:`ntga.attacks.em.generate` returns).

  Attributes:
    net: the :class:`Net`.
    params: the trained weights (``nnx.Param`` state).
    rest: everything else: BatchNorm running statistics, data statistics.
  """

  net: Net
  params: Any
  rest: Any


def check_name(name: str, width: int | None, owner: str) -> None:
  """Raises ConfigError for an unknown model or a ``width`` it does not take.

  Args:
    name: a ``source_model`` setting.
    width: the ``width`` setting (None: the model's own).
    owner: the config class's name, for the message.
  """
  if name not in NAMES:
    raise ConfigError(f"{owner}.source_model={name!r} is not one of {list(NAMES)}")
  if width is not None and name != GROUPNORM_CNN:
    raise ConfigError(f"{owner}.width applies only to source_model={GROUPNORM_CNN!r}, "
                      f"not {name!r}; drop it")
  if width is not None and not 1 <= width <= 4096:
    raise ConfigError(f"{owner}.width={width!r} is out of range, expected [1, 4096]")


@functools.lru_cache(maxsize=None)
def _creator(name: str, num_classes: int, shape: tuple[int, int, int]):
  """A compiled constructor of a victim model (one compilation per model and shape)."""

  @nnx.jit
  def create(k):
    return models.create(name, num_classes=num_classes, input_shape=shape,
                         rngs=nnx.Rngs(params=k, dropout=jax.random.fold_in(k, 1)))

  return create


def init(key: jax.Array, name: str, num_classes: int, x_fit: np.ndarray,
         width: int | None = None) -> tuple[Net, Any, Any]:
  """Builds a fresh source model and splits it into structure and state.

  Args:
    key: PRNG key of the weights.
    name: one of :data:`NAMES`.
    num_classes: output classes.
    x_fit: the training images (uint8 or float in [0, 1], NHWC): their shape
      sizes the model and a model that estimates statistics from its data
      (``fast``) fits them here.
    width: the GroupNorm CNN's first-layer channels (default
      :data:`DEFAULT_WIDTH`); must be None for the other models.

  Returns:
    ``(net, params, rest)``.

  Example:
    >>> net, params, rest = init(jax.random.key(0), "groupnorm-cnn", 4, x, width=8)
  """
  check_name(name, width, "source model")
  shape = tuple(int(d) for d in x_fit.shape[1:])
  if name == GROUPNORM_CNN:
    model = SourceCNN(num_classes, shape, width=width or DEFAULT_WIDTH,
                      rngs=nnx.Rngs(params=key))
  else:
    model = _creator(name, max(num_classes, 2), shape)(key)
    models.fit_data(model, x_fit)
  model.train()
  graph_train, params, rest = nnx.split(model, nnx.Param, ...)
  model.eval()
  graph_eval = nnx.split(model, nnx.Param, ...)[0]
  return Net(name, graph_train, graph_eval), params, rest


def train_logits(net: Net, params, rest, x: jax.Array) -> tuple[jax.Array, Any]:
  """Train-mode class scores of ``x`` (float32 [0, 1] NHWC) and the updated ``rest``."""
  model = nnx.merge(net.graph_train, params, rest, copy=True)
  out = model(x)
  return out, nnx.state(model, nnx.Not(nnx.Param))


def eval_logits(net: Net, params, rest, x: jax.Array) -> jax.Array:
  """Eval-mode class scores of ``x`` (float32 [0, 1] NHWC)."""
  return nnx.merge(net.graph_eval, params, rest, copy=True)(x)


def loss(net: Net, params, rest, x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean eval-mode softmax cross-entropy of the model on ``(x, y)``."""
  return optax.softmax_cross_entropy_with_integer_labels(
      eval_logits(net, params, rest, x), y).mean()

