"""Training and clean-test evaluation of a victim model.

The data-parallel layout follows flax's NNX data-parallel example: parameters
and optimizer state are replicated, each batch is sharded along the leading
axis of a one-axis ``'data'`` mesh, and a single ``jax.jit`` train step runs on
any number of devices (one CPU included) with the same result.

Default recipes (filled in for every ``None`` field of :class:`TrainConfig`):
  * ``resnet18``, ``resnet34``, ``vgg16``, ``densenet121``, ``mobilenetv2``:
    SGD, momentum 0.9, lr 0.1, weight decay 5e-4, cosine schedule, batch 128,
    60 epochs -- the victim training of Huang et al., "Unlearnable Examples",
    ICLR 2021 (also the usual CIFAR recipe, He et al., CVPR 2016).
  * ``wrn-34-10``: SGD, momentum 0.9, lr 0.1, weight decay 5e-4, step schedule
    (x0.1 at 50% and 75% of training), batch 128, 100 epochs (Madry et al.,
    ICLR 2018; Zhang et al., "TRADES", ICML 2019).
  * ``vit-small``: AdamW, lr 1e-3, weight decay 0.05, cosine with 5 warm-up
    epochs, batch 128, 100 epochs (the DeiT recipe, Touvron et al., ICML 2021,
    at CIFAR scale).
  * ``fast``: Nesterov SGD (momentum 0.85), label smoothing 0.2, flip + 2 px
    translation, flip test-time augmentation, a triangular schedule (0.2 lr
    -> lr over the first 20% of the steps, then linearly to 0), batch 512,
    6 epochs: the recipe of airbench (Jordan, "94% on CIFAR-10 in 3.29
    seconds on a single GPU", 2024) in its decoupled units (lr 10 and
    weight decay 0.0153 per 1024 examples), at half its widths and batch
    for 2 CPU cores (see ``victims/_models/_fast.py``).
  * ``fnn`` (MSE loss, as the NTGA paper's FNN), ``fnn-relu``, ``cnn``: Adam
    (Kingma & Ba, ICLR 2015, default lr 1e-3), no weight decay, constant
    schedule, batch 128, 20 epochs. These settings are ours: the NTGA paper
    (Yuan & Wu, ICML 2021) fixes the architectures but not a training recipe.

Preemption: with ``checkpoint_dir`` the full training state is saved with
orbax at the end of every epoch and a restarted call continues from the latest
epoch, finishing with the same metrics as an uninterrupted run.

Several processes (``jax.distributed``): the default mesh spans every device of
every process; each process holds the whole dataset, draws the same shuffles
and builds each global batch from the rows its own devices hold.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from ntga.data._types import Dataset
from ntga.errors import ConfigError, DataError, OutputError
from ntga.victims import _names, adversarial, defenses, models


@dataclasses.dataclass(frozen=True)
class _Recipe:
  optimizer: str
  lr: float
  weight_decay: float
  schedule: str
  batch_size: int
  epochs: int
  loss: str = "ce"
  warmup_epochs: int = 0
  momentum: float = 0.9
  nesterov: bool = False
  label_smoothing: float = 0.0
  tta: str = "none"
  crop_pad: int | None = None


# The fast victim's recipe, after airbench (Jordan 2024): Nesterov SGD with
# momentum 0.85 at 10.0 "per 1024 examples" in its decoupled units, i.e. a
# mean-loss learning rate of 10 / (1 + 1 / (1 - 0.85)) * batch / 1024; weight
# decay 0.0153 per 1024 examples, i.e. a coefficient of 0.0153 / 10 on the
# gradient; label smoothing 0.2; flip + 2 px translation; flip TTA; the
# triangle schedule. Batch 512 (airbench: 1024): on a CPU a smaller batch
# costs no throughput and gives a short run twice the steps.
FAST_MOMENTUM = 0.85
FAST_BATCH = 512
FAST_LR = 10.0 / (1 + 1 / (1 - FAST_MOMENTUM)) * FAST_BATCH / 1024
FAST_WEIGHT_DECAY = 0.0153 / 10.0
FAST_EPOCHS = 6

_SGD_CIFAR = _Recipe("sgd", 0.1, 5e-4, "cosine", 128, 60)
_ADAM_SMALL = _Recipe("adam", 1e-3, 0.0, "constant", 128, 20)
RECIPES: dict[str, _Recipe] = {
    "fnn": dataclasses.replace(_ADAM_SMALL, loss="mse"),
    "fnn-relu": _ADAM_SMALL,
    "cnn": _ADAM_SMALL,
    "resnet18": _SGD_CIFAR,
    "resnet34": _SGD_CIFAR,
    "vgg16": _SGD_CIFAR,
    "densenet121": _SGD_CIFAR,
    "mobilenetv2": _SGD_CIFAR,
    "wrn-34-10": _Recipe("sgd", 0.1, 5e-4, "step", 128, 100),
    "vit-small": _Recipe("adamw", 1e-3, 0.05, "cosine", 128, 100, warmup_epochs=5),
    "fast": _Recipe("sgd", FAST_LR, FAST_WEIGHT_DECAY, "triangle", FAST_BATCH, FAST_EPOCHS,
                    momentum=FAST_MOMENTUM, nesterov=True, label_smoothing=0.2,
                    tta="flip", crop_pad=2),
}

OPTIMIZERS = _names.OPTIMIZERS
SCHEDULES = _names.SCHEDULES
LOSSES = _names.LOSSES


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
  """How to train and evaluate one victim.

  Fields left ``None`` take the victim's recipe (see the module docstring for
  the papers); :meth:`resolved` fills them in.

  Attributes:
    victim: model name, one of :data:`ntga.victims.models.NAMES`.
    defense: one of :data:`ntga.victims.defenses.NAMES`.
    epochs, batch_size, lr, optimizer, schedule, weight_decay, loss,
    warmup_epochs: optimisation settings (``None`` = recipe; a recipe's
      warm-up is capped at a tenth of ``epochs``). ``schedule`` 'triangle'
      rises linearly from 0.2 lr to lr over the first 20% of the steps and
      falls linearly to 0 (airbench).
    momentum, nesterov: SGD momentum (``None`` = recipe: 0.9, or 0.85 for
      ``fast``) and Nesterov's variant (recipe: on for ``fast`` only).
    label_smoothing: weight of the uniform distribution mixed into the
      training targets (recipe: 0.2 for ``fast``, else 0).
    tta: test-time augmentation, 'none' or 'flip' (the mean of the logits
      of each test image and its mirror; recipe: 'flip' for ``fast``).
    augment: 'auto' (crop + flip for 3-channel images >= 16 px, none for
      grayscale digits), 'none', 'crop', 'flip' or 'crop-flip'.
    crop_pad: padding of the random crop; ``None`` = the recipe's (2 px for
      ``fast``) or H // 8 (4 px at 32 px).
    cutout_size: side of the cutout square; ``None`` = H // 2 (16 at 32 px).
    mixup_alpha: mixup's Beta parameter (1.0, Zhang et al. 2018).
    cutmix_alpha, cutmix_prob: CutMix's Beta parameter and probability
      (1.0 and 0.5, Yun et al. 2019).
    at_eps, at_steps, at_step_size: PGD adversarial training; ``None`` eps is
      8/255 (L_inf) or 0.5 (L2); ``None`` step size is 2/255 at eps 8/255
      (eps / 4) for L_inf and 2.5 * eps / steps for L2 (Madry et al. 2018).
    jpeg_quality: JPEG quality for the ``jpeg`` defense (10, Liu et al. 2023).
    bdr_bits: bits kept by the ``bdr`` defense (2, Liu et al. 2023).
    ortho_epochs, ortho_lr: the linear model of the ``ortho`` defense.
    eval_batch_size: batch size of the clean test evaluation.
    mixed_precision: compute the forward/backward pass in bfloat16 (parameters
      and optimizer state stay float32). Off by default.

  Example:
    >>> cfg = TrainConfig(victim="cnn", epochs=5)
    >>> cfg.resolved().optimizer
    'adam'
  """

  victim: str = "resnet18"
  defense: str = "none"
  epochs: int | None = None
  batch_size: int | None = None
  lr: float | None = None
  optimizer: str | None = None
  schedule: str | None = None
  weight_decay: float | None = None
  loss: str | None = None
  warmup_epochs: int | None = None
  momentum: float | None = None
  nesterov: bool | None = None
  label_smoothing: float | None = None
  tta: str | None = None
  augment: str = "auto"
  crop_pad: int | None = None
  cutout_size: int | None = None
  mixup_alpha: float = 1.0
  cutmix_alpha: float = 1.0
  cutmix_prob: float = 0.5
  at_eps: float | None = None
  at_steps: int = 10
  at_step_size: float | None = None
  jpeg_quality: int = 10
  bdr_bits: int = 2
  ortho_epochs: int = 20
  ortho_lr: float = 1e-2
  eval_batch_size: int = 500
  mixed_precision: bool = False

  def resolved(self) -> "TrainConfig":
    """Returns a copy with every ``None`` recipe field filled in and validated.

    Raises:
      ConfigError: unknown victim/defense/optimizer/schedule/loss/augment, or a
        value out of range.
    """
    if self.victim not in RECIPES:
      raise ConfigError(
          f"unknown victim {self.victim!r}; choose one of {', '.join(models.NAMES)}")
    if self.defense not in defenses.NAMES:
      raise ConfigError(
          f"unknown defense {self.defense!r}; choose one of {', '.join(defenses.NAMES)}")
    recipe = RECIPES[self.victim]
    fill = {f: getattr(recipe, f) for f in ("epochs", "batch_size", "lr", "optimizer",
                                            "schedule", "weight_decay", "loss",
                                            "warmup_epochs", "momentum", "nesterov",
                                            "label_smoothing", "tta", "crop_pad")
            if getattr(self, f) is None}
    if self.defense in ("at-linf", "at-l2"):
      if self.at_eps is None:
        fill["at_eps"] = 8 / 255 if self.defense == "at-linf" else 0.5
      eps = fill.get("at_eps", self.at_eps)
      if self.at_step_size is None:
        fill["at_step_size"] = (eps / 4 if self.defense == "at-linf"
                                else 2.5 * eps / max(self.at_steps, 1))
    if self.warmup_epochs is None:
      # The recipe's warm-up is meant for its full schedule: keep it at most a
      # tenth of a shorter run (0 for runs under 10 epochs).
      epochs = fill.get("epochs", self.epochs)
      fill["warmup_epochs"] = min(recipe.warmup_epochs, epochs // 10)
    cfg = dataclasses.replace(self, **fill)
    cfg._validate()
    return cfg

  def _validate(self) -> None:
    checks = [
        (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
        (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}"),
        (self.loss in LOSSES, f"loss must be one of {LOSSES}"),
        (self.augment in defenses.AUGMENTS,
         f"augment must be one of {defenses.AUGMENTS}"),
        (self.epochs >= 1, "epochs must be >= 1"),
        (self.batch_size >= 1, "batch_size must be >= 1"),
        (self.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
        (self.lr > 0, "lr must be > 0"),
        (self.weight_decay >= 0, "weight_decay must be >= 0"),
        (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
        (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
        (self.tta in _names.TTAS, f"tta must be one of {_names.TTAS}"),
        (self.schedule != "triangle" or self.warmup_epochs == 0,
         "the triangle schedule has its own warm-up: warmup_epochs must be 0"),
        (0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
         "warmup_epochs must be smaller than epochs"),
        (self.at_steps >= 1, "at_steps must be >= 1"),
        (self.at_eps is None or self.at_eps > 0, "at_eps must be > 0"),
        (self.mixup_alpha > 0 and self.cutmix_alpha > 0, "mixup/cutmix alpha must be > 0"),
        (0 <= self.cutmix_prob <= 1, "cutmix_prob must be in [0, 1]"),
        (1 <= self.jpeg_quality <= 95, "jpeg_quality must be in [1, 95]"),
        (1 <= self.bdr_bits <= 8, "bdr_bits must be in [1, 8]"),
        (self.ortho_epochs >= 1, "ortho_epochs must be >= 1"),
    ]
    for ok, msg in checks:
      if not ok:
        raise ConfigError(f"TrainConfig: {msg}")


# ------------------------------------------------------------------ pieces

def make_optimizer(cfg: TrainConfig, steps_per_epoch: int
                   ) -> optax.GradientTransformation:
  """The optax optimizer + schedule of a resolved config.

  Weight decay is coupled L2 (added to the gradient) for SGD and Adam and
  decoupled for AdamW, as in the respective papers' code.
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


def _augment_ops(cfg: TrainConfig, shape: tuple[int, int, int]) -> tuple[int, bool]:
  """(crop padding, flip?) for the resolved ``augment`` setting."""
  h, w, c = shape
  mode = cfg.augment
  if mode == "auto":
    mode = "crop-flip" if c == 3 and min(h, w) >= 16 else "none"
  pad = cfg.crop_pad if cfg.crop_pad is not None else max(1, h // 8)
  return (pad if "crop" in mode else 0), ("flip" in mode)


def loss_from_targets(logits: jax.Array, targets: jax.Array, kind: str) -> jax.Array:
  """Mean cross-entropy (soft targets) or mean squared error per example."""
  logits = logits.astype(jnp.float32)
  if kind == "mse":
    return jnp.mean(0.5 * jnp.sum((logits - targets) ** 2, axis=-1))
  return jnp.mean(optax.softmax_cross_entropy(logits, targets))


def prepare_train_images(key: jax.Array, x: np.ndarray, y: np.ndarray,
                         num_classes: int, cfg: TrainConfig) -> np.ndarray:
  """Applies the data-level defenses (squeezing, orthogonal projection).

  Returns uint8 images, or float32 images in [0, 1]-units for ``ortho``.
  """
  if cfg.defense == "jpeg":
    return defenses.jpeg_compress(x, cfg.jpeg_quality)
  if cfg.defense == "grayscale":
    return defenses.grayscale(x)
  if cfg.defense == "bdr":
    return defenses.bit_depth_reduction(x, cfg.bdr_bits)
  if cfg.defense == "ortho":
    proj, _ = defenses.orthogonal_projection(
        key, x.astype(np.float32) / 255.0, y, num_classes,
        epochs=cfg.ortho_epochs, lr=cfg.ortho_lr)
    return proj
  return x


def _to_float(x: jax.Array) -> jax.Array:
  if x.dtype == jnp.uint8:
    return x.astype(jnp.float32) / 255.0
  return x.astype(jnp.float32)


def _check_data(train: Dataset, test: Dataset) -> None:
  for name, d in (("train", train), ("test", test)):
    if d.x.ndim != 4 or d.x.dtype != np.uint8:
      raise DataError(f"{name} images must be uint8 NHWC, got {d.x.dtype} {d.x.shape}")
    if len(d.y) != len(d.x):
      raise DataError(f"{name}: {len(d.x)} images but {len(d.y)} labels")
    if len(d.x) == 0:
      raise DataError(f"{name} set is empty")
  if train.x.shape[1:] != test.x.shape[1:]:
    raise DataError(f"train images are {train.x.shape[1:]} but test images are "
                    f"{test.x.shape[1:]} (H, W, C must match)")
  if train.num_classes != test.num_classes:
    raise DataError(f"train has {train.num_classes} classes but test has "
                    f"{test.num_classes}")
  k = train.num_classes
  for name, d in (("train", train), ("test", test)):
    if d.y.min() < 0 or d.y.max() >= k:
      raise DataError(f"{name} labels must lie in [0, {k}), got [{d.y.min()}, {d.y.max()}]")


def default_mesh(batch_size: int) -> jax.sharding.Mesh:
  """A 1-axis 'data' mesh over the most devices that divide ``batch_size``.

  The axis is of type Auto: the compiler propagates shardings, so the train
  step needs no per-op sharding annotations. Over several processes the mesh
  spans all of their devices, so ``batch_size`` must be a multiple of
  ``jax.device_count()``.

  Raises:
    ConfigError: several processes and a batch size their devices do not divide.
  """
  n = jax.device_count()
  if jax.process_count() > 1 and batch_size % n:
    # Every process must own a part of the mesh: use all devices or fail.
    raise ConfigError(f"batch size {batch_size} must be a multiple of the "
                      f"{n} devices of the {jax.process_count()} processes")
  while batch_size % n:
    n -= 1
  return jax.make_mesh((n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:n])


def _auto_mesh(mesh: jax.sharding.Mesh) -> jax.sharding.Mesh:
  """The same devices with a single Auto-typed 'data' axis."""
  if mesh.axis_names != ("data",):
    raise ConfigError(f"the mesh must have exactly one axis named 'data', got "
                      f"{mesh.axis_names}")
  return jax.sharding.Mesh(mesh.devices, ("data",),
                           axis_types=(jax.sharding.AxisType.Auto,))


@dataclasses.dataclass(frozen=True)
class _StepSpec:
  """Everything static about a train/eval step (hashable: a jit cache key)."""
  cfg: TrainConfig
  graph_train: Any
  graph_eval: Any
  num_classes: int
  steps_per_epoch: int
  crop_pad: int
  flip: bool
  cutout_size: int


def _forward(spec: _StepSpec, graphdef, params, rest, x):
  """Logits (float32) and the updated non-parameter state (batch stats, RNG)."""
  dtypes = jax.tree.map(lambda a: a.dtype, rest)
  if spec.cfg.mixed_precision:
    def half(a):
      return a.astype(jnp.bfloat16) if jnp.issubdtype(a.dtype, jnp.floating) else a
    params, rest, x = jax.tree.map(half, (params, rest, x))
  model = nnx.merge(graphdef, params, rest, copy=True)
  logits = model(x).astype(jnp.float32)
  new_rest = nnx.state(model, nnx.Not(nnx.Param))
  if spec.cfg.mixed_precision:  # batch statistics are kept in float32
    new_rest = jax.tree.map(lambda a, d: a.astype(d), new_rest, dtypes)
  return logits, new_rest


def _augment_batch(spec: _StepSpec, key, x, t, params, rest):
  """Standard augmentation, then the batch-level defense, on float images."""
  cfg = spec.cfg
  ka, kb, kc, kd = jax.random.split(key, 4)
  if spec.crop_pad:
    x = defenses.random_crop(ka, x, spec.crop_pad)
  if spec.flip:
    x = defenses.random_flip(kb, x)
  if cfg.defense == "cutout":
    x = defenses.cutout(kc, x, spec.cutout_size)
  elif cfg.defense == "mixup":
    x, t = defenses.mixup(kc, x, t, cfg.mixup_alpha)
  elif cfg.defense == "cutmix":
    x, t = defenses.cutmix(kc, x, t, cfg.cutmix_alpha, cfg.cutmix_prob)
  elif cfg.defense in ("at-linf", "at-l2"):
    # Madry et al.: maximise the training loss of the current model (in
    # training mode; the attack's batch-stat updates are discarded).
    def attack_loss(z):
      return loss_from_targets(_forward(spec, spec.graph_train, params, rest, z)[0],
                               t, cfg.loss)
    x = adversarial.pgd(kd, attack_loss, x, norm=cfg.defense[3:], eps=cfg.at_eps,
                        steps=cfg.at_steps, step_size=cfg.at_step_size)
  return x, t


@functools.partial(jax.jit, static_argnames=("spec",), donate_argnums=(0, 1, 2))
def _train_step(params, rest, opt_state, x, y, step, key, *, spec: _StepSpec):
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
def _eval_step(params, rest, x, y, mask, *, spec: _StepSpec):
  """(number correct, summed cross-entropy) over the unmasked rows of a batch."""
  x = _to_float(x)
  logits, _ = _forward(spec, spec.graph_eval, params, rest, x)
  if spec.cfg.tta == "flip":
    logits = 0.5 * (logits + _forward(spec, spec.graph_eval, params, rest,
                                      x[:, :, ::-1, :])[0])
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
  correct = (jnp.argmax(logits, -1) == y) & mask
  return jnp.sum(correct), jnp.sum(jnp.where(mask, ce, 0.0))


def _initial_state(cfg: TrainConfig, x_train, num_classes: int, steps_per_epoch: int,
                   key_init: jax.Array, key_dropout: jax.Array):
  """(step spec, (params, rest, opt_state), parameter count) of a fresh model.

  The model estimates what it needs from ``x_train`` (the training images
  only) before its state is split off.
  """
  shape = tuple(int(d) for d in x_train.shape[1:])

  # One compiled initialisation instead of one small compilation per
  # parameter shape (eager initialisers compile each shape separately).
  @nnx.jit
  def create(key_init, key_dropout):
    return models.create(cfg.victim, num_classes=num_classes, input_shape=shape,
                         rngs=nnx.Rngs(params=key_init, dropout=key_dropout))

  model = create(key_init, key_dropout)
  models.fit_data(model, x_train)  # the training images only, never the test set
  model.train()
  graph_train, params, rest = nnx.split(model, nnx.Param, ...)
  model.eval()
  graph_eval = nnx.split(model, nnx.Param, ...)[0]
  num_params = models.count_params(model)
  opt_state = jax.jit(make_optimizer(cfg, steps_per_epoch).init)(params)
  pad, flip = _augment_ops(cfg, shape)
  spec = _StepSpec(
      cfg=cfg, graph_train=graph_train, graph_eval=graph_eval,
      num_classes=num_classes, steps_per_epoch=steps_per_epoch, crop_pad=pad,
      flip=flip, cutout_size=cfg.cutout_size if cfg.cutout_size is not None
      else max(1, shape[0] // 2))
  return spec, (params, rest, opt_state), num_params


def train_step_flops(config: TrainConfig, image_shape: tuple[int, int, int],
                     num_classes: int, batch_size: int | None = None) -> float:
  """FLOPs of one compiled training step, as XLA's cost analysis counts them.

  Args:
    config: the training config (``None`` fields take the recipe).
    image_shape: (H, W, C) of the training images.
    num_classes: class count.
    batch_size: images per step; default the config's.

  Returns:
    The floating-point operations of one step (forward, backward, optimizer
    and augmentation) on one device.

  Example:
    >>> train_step_flops(TrainConfig(victim="fast"), (32, 32, 3), 10)  # doctest: +SKIP
  """
  cfg = config.resolved()
  batch = batch_size or cfg.batch_size
  x = np.zeros((batch, *image_shape), np.uint8)
  key = jax.random.key(0)
  spec, (params, rest, opt_state), _ = _initial_state(cfg, x, num_classes, 1,
                                                       key, key)
  compiled = _train_step.lower(params, rest, opt_state, x,
                               np.zeros((batch,), np.int32), 0, key,
                               spec=spec).compile()
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost["flops"])


# ------------------------------------------------------------------ placement

def _host(a: jax.Array) -> np.ndarray:
  """A replicated array's value (also when it spans several processes)."""
  return np.asarray(a.addressable_data(0))


def _put(a: np.ndarray | jax.Array, sharding: NamedSharding) -> jax.Array:
  """A global array with ``sharding`` from a value every process holds whole.

  Each process fills only its own devices' slices, so this works for meshes
  that span several processes (the multi-host case) as well as one.
  """
  if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(_put(jax.random.key_data(a), sharding),
                                    impl=jax.random.key_impl(a))
  a = np.asarray(a)
  return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])


def _put_tree(tree, sharding: NamedSharding):
  return jax.tree.map(lambda a: _put(a, sharding), tree)


# ------------------------------------------------------------------ checkpoints

_SCHEDULE_FREE = ("constant",)  # schedules whose step sizes ignore `epochs`


def _fingerprint(key: jax.Array, x_train, y_train, test: Dataset,
                 cfg: TrainConfig) -> str:
  """Identifies a run up to its epoch count (data, key and settings)."""
  h = hashlib.sha256()
  settings = dataclasses.asdict(cfg)
  settings.pop("epochs")
  h.update(json.dumps(settings, sort_keys=True).encode())
  h.update(np.asarray(jax.random.key_data(key)).tobytes())
  for a in (x_train, y_train, test.x, test.y):
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


def _flat_state(tree) -> dict[str, jax.Array]:
  """The leaves of (params, rest, opt_state) by position; PRNG keys as raw data."""
  leaves = jax.tree.leaves(tree)
  return {f"{i:05d}": (jax.random.key_data(a)
                       if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a)
          for i, a in enumerate(leaves)}


def _unflat_state(template, flat: dict[str, jax.Array]):
  """Inverse of :func:`_flat_state` with ``template``'s structure and key impls."""
  leaves, treedef = jax.tree.flatten(template)
  out = []
  for i, t in enumerate(leaves):
    a = flat[f"{i:05d}"]
    if jnp.issubdtype(t.dtype, jax.dtypes.prng_key):
      a = jax.random.wrap_key_data(a, impl=jax.random.key_impl(t))
    out.append(a)
  return jax.tree.unflatten(treedef, out)


class _EpochCheckpoints:
  """The training state after each epoch, saved with orbax under a folder.

  orbax writes every checkpoint into a temporary folder and renames it when it
  is complete, so a run killed mid-save leaves the previous epoch intact. The
  latest two epochs are kept.
  """

  def __init__(self, folder: str | os.PathLike, fingerprint: str, epochs: int,
               schedule_free: bool):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    self._ocp = ocp
    self.folder = os.path.abspath(os.fspath(folder))
    self.fingerprint = fingerprint
    self.epochs = epochs
    self.schedule_free = schedule_free
    self.manager = ocp.CheckpointManager(
        self.folder, options=ocp.CheckpointManagerOptions(
            max_to_keep=2, create=True, enable_async_checkpointing=False,
            cleanup_tmp_directories=True))

  def restore(self, template, sharding: NamedSharding):
    """(epoch, state, meta) of the latest checkpoint, or None if there is none.

    Raises:
      OutputError: the checkpoints belong to another run, or cannot be continued
        to ``epochs``.
    """
    ocp = self._ocp
    step = self.manager.latest_step()
    if step is None:
      return None
    meta = self.manager.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore()))["meta"]
    if meta.get("fingerprint") != self.fingerprint:
      raise OutputError(f"{self.folder} holds checkpoints of a different run (data, "
                        "seed or settings differ); remove it or choose another folder")
    if step > self.epochs:
      raise OutputError(f"{self.folder} holds a checkpoint after epoch {step}, "
                        f"beyond the {self.epochs} epochs asked for")
    if meta["epochs"] != self.epochs and not self.schedule_free:
      raise OutputError(f"{self.folder} holds checkpoints of a {meta['epochs']}-epoch "
                        f"run whose learning-rate schedule depends on the epoch "
                        f"count; it cannot continue as a {self.epochs}-epoch run")
    flat = _flat_state(template)
    abstract = {k: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding)
                for k, a in flat.items()}
    state = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract)))["state"]
    return step, _unflat_state(template, state), meta

  def save(self, epoch: int, state, hist: dict[str, list], elapsed_s: float) -> None:
    ocp = self._ocp
    meta = {"fingerprint": self.fingerprint, "epochs": self.epochs,
            "epoch": epoch, "hist": hist, "elapsed_s": elapsed_s}
    self.manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(_flat_state(state)),
        meta=ocp.args.JsonSave(meta)))
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


# ------------------------------------------------------------------ the loop

def train_and_evaluate(key: jax.Array, train: Dataset, test: Dataset,
                       config: TrainConfig, *, progress: bool = True,
                       mesh: jax.sharding.Mesh | None = None,
                       checkpoint_dir: str | os.PathLike | None = None
                       ) -> dict[str, Any]:
  """Trains ``config.victim`` on ``train`` and tracks clean ``test`` accuracy.

  Deterministic for a given key: the model init, epoch shuffles, augmentation,
  dropout and PGD starts all derive from ``key`` by ``fold_in`` (shuffles by
  epoch, augmentation by global step), so the result does not depend on the
  mesh size (up to float reassociation) nor on where a run was interrupted.

  Under ``jax.distributed`` every process calls this with the same arguments
  and the same (whole) data; the mesh spans all processes' devices.

  Args:
    key: PRNG key.
    train: training split (uint8 NHWC, possibly poisoned).
    test: clean test split with the same image shape and class count.
    config: a :class:`TrainConfig` (``None`` fields take the victim's recipe).
    progress: show a tqdm bar per epoch.
    mesh: a 1-axis ``'data'`` mesh; default :func:`default_mesh`. Its size must
      divide the batch size.
    checkpoint_dir: if given, the training state (parameters, batch
      statistics, RNG counters, optimizer state, epoch and the per-epoch
      metrics) is saved there with orbax after every epoch (the latest two are
      kept), and a call that finds a checkpoint of the same run continues after
      its epoch. With a ``constant`` schedule and no warm-up a finished run can
      be extended by calling again with more ``epochs``. Over several processes
      the folder must be on a file system they share.

  Returns:
    A dict with ``final_test_accuracy`` and ``peak_test_accuracy`` (fractions),
    ``peak_epoch`` (1-based), per-epoch lists ``test_accuracy``, ``test_loss``,
    ``train_loss``, ``train_accuracy``, ``epoch_time_s`` and ``train_time_s``
    (the epoch's training steps alone, evaluation excluded); ``wall_clock_s``,
    ``num_params``, ``num_devices``, ``n_train``, ``n_test``, ``steps_per_epoch``
    ``resumed_from_epoch`` (0 unless continued from a checkpoint) and
    ``config`` (the resolved config as a dict).

  Raises:
    DataError: mismatched image shapes, class counts or labels.
    ConfigError: a bad config.
    OutputError: ``checkpoint_dir`` holds checkpoints of a different run.

  Example:
    >>> from ntga import data
    >>> m = train_and_evaluate(jax.random.key(0), data.load("digits", "train"),
    ...                        data.load("digits", "test"),
    ...                        TrainConfig(victim="cnn", epochs=3))
    >>> m["final_test_accuracy"]  # doctest: +SKIP
  """
  start = time.perf_counter()
  cfg = config.resolved()
  _check_data(train, test)
  shape = tuple(int(d) for d in train.x.shape[1:])
  k = train.num_classes
  n_train = len(train.x)
  batch = min(cfg.batch_size, n_train)
  mesh = _auto_mesh(mesh) if mesh is not None else default_mesh(batch)
  n_dev = mesh.devices.size
  batch -= batch % n_dev
  if batch == 0:
    raise ConfigError(f"batch size {cfg.batch_size} is smaller than the {n_dev} "
                      "devices of the mesh")
  steps = n_train // batch
  eval_batch = max(n_dev, cfg.eval_batch_size - cfg.eval_batch_size % n_dev)

  k_init, k_drop, k_prep, k_shuffle, k_step = (jax.random.fold_in(key, i)
                                                for i in range(5))
  x_train = prepare_train_images(k_prep, train.x, train.y, k, cfg)
  y_train = np.asarray(train.y, np.int32)

  spec, (params, rest, opt_state), num_params = _initial_state(
      cfg, x_train, k, steps, k_init, k_drop)
  replicated = NamedSharding(mesh, P())
  sharded = NamedSharding(mesh, P("data"))
  params, rest, opt_state = _put_tree((params, rest, opt_state), replicated)

  n_test = len(test.x)
  n_eval = math.ceil(n_test / eval_batch) * eval_batch
  x_test = np.zeros((n_eval,) + shape, np.uint8)
  x_test[:n_test] = test.x
  y_test = np.zeros((n_eval,), np.int32)
  y_test[:n_test] = test.y
  mask_test = np.arange(n_eval) < n_test
  # The test batches go to the devices once; each evaluation dispatches every
  # batch and reads the two sums back once at the end.
  test_batches = [tuple(_put(a[i:i + eval_batch], sharded)
                        for a in (x_test, y_test, mask_test))
                  for i in range(0, n_eval, eval_batch)]

  def evaluate(params, rest):
    correct, loss = 0, 0.0
    for xb, yb, mb in test_batches:
      c, l = _eval_step(params, rest, xb, yb, mb, spec=spec)
      correct, loss = correct + c, loss + l
    return float(_host(correct)) / n_test, float(_host(loss)) / n_test

  hist = {key_: [] for key_ in ("test_accuracy", "test_loss", "train_loss",
                                "train_accuracy", "epoch_time_s", "train_time_s")}
  first_epoch, earlier_s = 0, 0.0
  store = None
  if checkpoint_dir is not None:
    store = _EpochCheckpoints(
        checkpoint_dir, _fingerprint(key, x_train, y_train, test, cfg), cfg.epochs,
        schedule_free=cfg.schedule in _SCHEDULE_FREE and cfg.warmup_epochs == 0)
    found = store.restore((params, rest, opt_state), replicated)
    if found is not None:
      first_epoch, (params, rest, opt_state), meta = found
      hist = {k_: list(meta["hist"].get(k_, [])) for k_ in hist}
      earlier_s = float(meta["elapsed_s"])
  progress = progress and jax.process_index() == 0
  for epoch in range(first_epoch, cfg.epochs):
    t0 = time.perf_counter()
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(k_shuffle, epoch),
                                             n_train))
    losses, accs = [], []
    bar = tqdm(range(steps), desc=f"{cfg.victim} epoch {epoch + 1}/{cfg.epochs}",
               disable=not progress, leave=False)
    for s in bar:
      idx = perm[s * batch:(s + 1) * batch]
      xb, yb = _put(x_train[idx], sharded), _put(y_train[idx], sharded)
      params, rest, opt_state, loss, acc = _train_step(
          params, rest, opt_state, xb, yb, epoch * steps + s, k_step, spec=spec)
      losses.append(loss)
      accs.append(acc)
      if s:  # keep one step in flight: the bar counts finished steps
        losses[-2].block_until_ready()
    jax.block_until_ready(params)
    train_s = time.perf_counter() - t0
    test_acc, test_loss = evaluate(params, rest)
    hist["train_loss"].append(float(np.mean([_host(v) for v in losses])))
    hist["train_accuracy"].append(float(np.mean([_host(v) for v in accs])))
    hist["test_accuracy"].append(test_acc)
    hist["test_loss"].append(test_loss)
    hist["epoch_time_s"].append(time.perf_counter() - t0)
    hist["train_time_s"].append(train_s)
    if progress:
      tqdm.write(f"{cfg.victim} epoch {epoch + 1}/{cfg.epochs}: train loss "
                 f"{hist['train_loss'][-1]:.4f} acc {hist['train_accuracy'][-1]:.4f}"
                 f" | test acc {test_acc:.4f}")
    if store is not None:
      store.save(epoch + 1, (params, rest, opt_state), hist,
                 earlier_s + time.perf_counter() - start)
  if store is not None:
    store.close()

  peak = int(np.argmax(hist["test_accuracy"]))
  return {
      "final_test_accuracy": hist["test_accuracy"][-1],
      "peak_test_accuracy": hist["test_accuracy"][peak],
      "peak_epoch": peak + 1,
      **hist,
      "wall_clock_s": earlier_s + time.perf_counter() - start,
      "num_params": num_params,
      "num_devices": n_dev,
      "n_train": n_train,
      "n_test": n_test,
      "batch_size": batch,
      "steps_per_epoch": steps,
      "resumed_from_epoch": first_epoch,
      "config": dataclasses.asdict(cfg),
  }
