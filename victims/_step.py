"""The compiled pieces of victim training: optimizer, train step, eval step.

A single ``jax.jit`` train step runs on any number of devices (one CPU
included) with the same result; everything static about it is one hashable
:class:`StepSpec`, the jit cache key. Public names are re-exported by
:mod:`ntga.victims.train`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ntga.victims import adversarial, defenses, models
from ntga.victims.config import TrainConfig


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int
                   ) -> optax.GradientTransformation:
  """The optax optimizer + schedule of a resolved config.

  Weight decay is coupled L2 (added to the gradient) for SGD and Adam and
  decoupled for AdamW, as in the respective papers' code.

  Example:
    >>> tx = make_optimizer(TrainConfig(victim="cnn").resolved(), 100)
  """
  total = cfg.epochs * steps_per_epoch
  warm = cfg.warmup_epochs * steps_per_epoch
  if cfg.schedule == "constant":
    main = optax.constant_schedule(cfg.lr)
  elif cfg.schedule == "triangle":
    peak = max(1, int(0.2 * total))
    main = optax.join_schedules(
        [optax.linear_schedule(0.2 * cfg.lr, cfg.lr, peak),
         optax.linear_schedule(cfg.lr, 0.0, max(total - peak, 1))], [peak])
  elif cfg.schedule == "cosine":
    main = optax.cosine_decay_schedule(cfg.lr, max(total - warm, 1))
  else:
    main = optax.piecewise_constant_schedule(
        cfg.lr, {int(total * 0.5): 0.1, int(total * 0.75): 0.1})
  sched = main if warm == 0 else optax.join_schedules(
      [optax.linear_schedule(0.0, cfg.lr, warm), main], [warm])
  if cfg.optimizer == "sgd":
    base = optax.sgd(sched, momentum=cfg.momentum or None, nesterov=cfg.nesterov)
  elif cfg.optimizer == "adam":
    base = optax.adam(sched)
  else:
    return optax.adamw(sched, weight_decay=cfg.weight_decay)
  if cfg.weight_decay:
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay), base)
  return base


def loss_from_targets(logits: jax.Array, targets: jax.Array, kind: str) -> jax.Array:
  """Mean cross-entropy (soft targets) or mean squared error per example.

  Example:
    >>> loss_from_targets(jnp.zeros((2, 10)), jnp.eye(10)[:2], "ce")  # log(10)
  """
  logits = logits.astype(jnp.float32)
  if kind == "mse":
    return jnp.mean(0.5 * jnp.sum((logits - targets) ** 2, axis=-1))
  return jnp.mean(optax.softmax_cross_entropy(logits, targets))


def augment_ops(cfg: TrainConfig, shape: tuple[int, int, int]) -> tuple[int, bool]:
  """(crop padding, flip?) for the resolved ``augment`` setting."""
  h, w, c = shape
  mode = cfg.augment
  if mode == "auto":
    mode = "crop-flip" if c == 3 and min(h, w) >= 16 else "none"
  pad = cfg.crop_pad if cfg.crop_pad is not None else max(1, h // 8)
  return (pad if "crop" in mode else 0), ("flip" in mode)


def _to_float(x: jax.Array) -> jax.Array:
  if x.dtype == jnp.uint8:
    return x.astype(jnp.float32) / 255.0
  return x.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """Everything static about a train/eval step (hashable: a jit cache key)."""
  cfg: TrainConfig
  graph_train: Any
  graph_eval: Any
  num_classes: int
  steps_per_epoch: int
  crop_pad: int
  flip: bool


def _forward(spec: StepSpec, graphdef, params, rest, x):
  """Logits (float32) and the updated non-parameter state (batch stats, RNG)."""
  dtypes = jax.tree.map(lambda a: a.dtype, rest)
  if spec.cfg.mixed_precision:
    # bfloat16 compute: the parameters, the input and the data statistics
    # (input normalisation, whitening) are cast; BatchNorm's running
    # statistics stay float32 and are updated in float32, while the layer
    # normalises in bfloat16 (its ``dtype``).
    def half(a):
      return a.astype(jnp.bfloat16) if jnp.issubdtype(a.dtype, jnp.floating) else a
    running, other = nnx.split_state(rest, nnx.BatchStat, ...)
    params, other, x = jax.tree.map(half, (params, other, x))
    rest = nnx.merge_state(running, other)
  model = nnx.merge(graphdef, params, rest, copy=True)
  if spec.cfg.mixed_precision:
    for _, module in nnx.iter_modules(model):
      if isinstance(module, nnx.BatchNorm):
        module.dtype = jnp.bfloat16
  logits = model(x).astype(jnp.float32)
  new_rest = nnx.state(model, nnx.Not(nnx.Param))
  if spec.cfg.mixed_precision:  # the state keeps its own dtypes
    new_rest = jax.tree.map(lambda a, d: a.astype(d), new_rest, dtypes)
  return logits, new_rest


def _augment_batch(spec: StepSpec, key, x, t, params, rest):
  """Standard augmentation, then the batch-level defense, on float images.

  The step key splits into four streams (see
  :attr:`ntga.victims.defenses.DefenseConfig.key_stream`).
  """
  cfg = spec.cfg
  streams = jax.random.split(key, 4)
  if spec.crop_pad:
    x = defenses.random_crop(streams[0], x, spec.crop_pad)
  if spec.flip:
    x = defenses.random_flip(streams[1], x)

  def train_loss(z):  # the current model's training loss (adversarial training)
    return loss_from_targets(_forward(spec, spec.graph_train, params, rest, z)[0],
                             t, cfg.loss)

  return cfg.defense.transform_batch(streams[cfg.defense.key_stream], x, t,
                                     train_loss)


@functools.partial(jax.jit, static_argnames=("spec",), donate_argnums=(0, 1, 2))
def train_step(params, rest, opt_state, x, y, step, key, *, spec: StepSpec):
  """One optimizer step on a (sharded) batch; returns new state, loss, accuracy."""
  cfg = spec.cfg
  x = _to_float(x)
  t = jax.nn.one_hot(y, spec.num_classes, dtype=jnp.float32)
  x, t = _augment_batch(spec, jax.random.fold_in(key, step), x, t, params, rest)

  if cfg.label_smoothing:
    t = optax.smooth_labels(t, cfg.label_smoothing)

  def loss_fn(p):
    logits, new_rest = _forward(spec, spec.graph_train, p, rest, x)
    return loss_from_targets(logits, t, cfg.loss), (logits, new_rest)

  (loss, (logits, new_rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  tx = make_optimizer(cfg, spec.steps_per_epoch)
  updates, opt_state = tx.update(grads, opt_state, params)
  params = optax.apply_updates(params, updates)
  acc = jnp.mean(jnp.argmax(logits, -1) == y)
  return params, new_rest, opt_state, loss, acc


@functools.partial(jax.jit, static_argnames=("spec",))
def eval_step(params, rest, x, y, mask, *, spec: StepSpec):
  """(number correct, summed cross-entropy) over the unmasked rows of a batch."""
  x = _to_float(x)
  logits, _ = _forward(spec, spec.graph_eval, params, rest, x)
  if spec.cfg.tta == "flip":
    logits = 0.5 * (logits + _forward(spec, spec.graph_eval, params, rest,
                                      x[:, :, ::-1, :])[0])
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
  correct = (jnp.argmax(logits, -1) == y) & mask
  return jnp.sum(correct), jnp.sum(jnp.where(mask, ce, 0.0))


@functools.partial(jax.jit, static_argnames=("spec", "eps"))
def robust_eval_step(params, rest, x, y, mask, key, *, spec: StepSpec, eps: float):
  """Number of unmasked rows still classified right after PGD-10 at L_inf ``eps``.

  The attack maximises the evaluation-mode model's cross-entropy (10 steps
  of eps / 4 from a random start, :func:`ntga.victims.adversarial.pgd`); no
  test-time augmentation.
  """
  x = _to_float(x)

  def loss(z):
    logits, _ = _forward(spec, spec.graph_eval, params, rest, z)
    return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, y))

  x_adv = adversarial.pgd(key, loss, x, norm="linf", eps=eps, steps=10)
  logits, _ = _forward(spec, spec.graph_eval, params, rest, x_adv)
  return jnp.sum((jnp.argmax(logits, -1) == y) & mask)


@functools.lru_cache(maxsize=None)
def _creator(victim: str, num_classes: int, shape: tuple[int, ...]):
  """A compiled ``(key_init, key_dropout) -> model`` for one victim and shape.

  One compiled initialisation instead of one small compilation per parameter
  shape (eager initialisers compile each shape separately), kept so that
  later trainings of the same victim and shape do not compile it again.
  """

  @nnx.jit
  def create(key_init, key_dropout):
    return models.create(victim, num_classes=num_classes, input_shape=shape,
                         rngs=nnx.Rngs(params=key_init, dropout=key_dropout))

  return create


def initial_state(cfg: TrainConfig, x_train: np.ndarray, num_classes: int,
                  steps_per_epoch: int, key_init: jax.Array, key_dropout: jax.Array):
  """(step spec, (params, rest, opt_state), parameter count) of a fresh model.

  The model estimates what it needs from ``x_train`` (the training images
  only) before its state is split off.
  """
  shape = tuple(int(d) for d in x_train.shape[1:])
  model = _creator(cfg.victim, num_classes, shape)(key_init, key_dropout)
  models.fit_data(model, x_train)  # the training images only, never the test set
  model.train()
  graph_train, params, rest = nnx.split(model, nnx.Param, ...)
  model.eval()
  graph_eval = nnx.split(model, nnx.Param, ...)[0]
  num_params = models.count_params(model)
  opt_state = jax.jit(make_optimizer(cfg, steps_per_epoch).init)(params)
  pad, flip = augment_ops(cfg, shape)
  spec = StepSpec(cfg=cfg, graph_train=graph_train, graph_eval=graph_eval,
                  num_classes=num_classes, steps_per_epoch=steps_per_epoch,
                  crop_pad=pad, flip=flip)
  return spec, (params, rest, opt_state), num_params
