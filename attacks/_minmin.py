"""Bi-level noise generation shared by EM and REM (private implementation).

EM (error-minimizing noise; Huang, Ma, Erfani, Bailey, Wang, "Unlearnable
Examples: Making Personal Data Unexploitable", ICLR 2021, Sec. 3-4) solves

  min_theta min_{||delta||_inf <= eps} E L(f_theta(x + delta), y)

by alternating rounds: train the source model ``train_steps`` SGD steps on the
currently perturbed data, then run PGD on ``delta`` (descending the loss) over the
whole training set; stop as soon as the source model's accuracy on the perturbed
training data exceeds ``stop_accuracy``. Noise is sample-wise (one delta per
image) or class-wise (one per class).

REM (robust error-minimizing noise; Fu, He, Liu, Shen, Tao, "Robust Unlearnable
Examples: Protecting Data Against Adversarial Learning", ICLR 2022, Sec. 4 and
Algorithm 1) solves the min-min-max problem

  min_theta min_delta E_T max_{||rho||_inf <= rho_a} L(f_theta(T(x + delta) + rho), y)

with T random crop + flip (expectation over transformations, EOT). Every
``perturb_freq`` source iterations the noise of the current minibatch is found
afresh by PGD (from a random start) against the adversarially trained model;
the model then takes one adversarial-training step (PGD at radius ``rho_a``) on
the transformed, noised minibatch. After ``total_train_steps`` iterations the
noise of the whole training set is generated once more with the final model.

Both share this engine; :mod:`ntga.attacks.em` and :mod:`ntga.attacks.rem` re-export it.
What differs between them is carried by their config classes, which the
engine calls: the source model's learning rate, the batch it trains on (REM:
transformed and adversarially perturbed), the loss the noise minimises (REM:
expected adversarial loss over transformations) and the outer loop (EM rounds
with a stop rule, REM source iterations then a final noise pass).
Each round (EM) or report interval (REM) is logged on the ``ntga.attacks.minmin``
logger and shown in the tqdm postfix: the source model's accuracy and mean loss
on the perturbed training data, so a user can see whether and when EM stops.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from ntga.attacks import _common, _source_model
from ntga.errors import ConfigError
from ntga.protocol import AttackConfig, RunContext

log = logging.getLogger("ntga.attacks.minmin")


def _check_common(cfg):
  _common.check_types(cfg)
  _common.check_range(cfg, "eps", 0.0, 1.0, lo_open=True)
  _common.check_range(cfg, "noise_steps", 1, 1 << 20)
  _common.check_range(cfg, "noise_step_size", 0.0, 1.0, lo_open=True)
  _common.check_range(cfg, "batch_size", 1, 1 << 20)
  _common.check_range(cfg, "learning_rate", 0.0, 100.0, lo_open=True)
  _common.check_range(cfg, "momentum", 0.0, 1.0, hi_open=True)
  _common.check_range(cfg, "weight_decay", 0.0, 1.0)
  _common.check_range(cfg, "width", 1, 4096)


class _Outcome(NamedTuple):
  """What a config's outer loop returns to :func:`generate`."""

  table: np.ndarray
  params: Any
  accuracy: list
  loss: list
  rounds: int
  stopped: bool
  delta_rows: np.ndarray


@dataclasses.dataclass(frozen=True, kw_only=True)
class EMConfig(AttackConfig):
  """Settings of error-minimizing noise (Huang et al., ICLR 2021; CIFAR-10 defaults).

  The defaults are the paper's sample-wise CIFAR-10 settings (Sec. 4.1: eps
  8/255, 20 PGD steps of eps/10, M = 10 source steps per round, stop once the
  accuracy on the perturbed training data exceeds 99%; ResNet-18 source trained
  with SGD lr 0.1, momentum 0.9, weight decay 5e-4) and the batch of the
  authors' generation script (512). For class-wise noise the authors'
  published command uses 1 PGD step per batch and stops at 90% accuracy:
  ``EMConfig(mode="class", noise_steps=1, stop_accuracy=0.9)``. Paper settings
  take GPU-hours on CIFAR-10; :meth:`cpu` is a scaled-down preset.

  Attributes:
    eps: L_inf radius in [0, 1] units; paper: 8/255.
    mode: "sample" (one noise per image) or "class" (one per class).
    noise_steps: PGD steps per noise update; paper: 20 (sample-wise).
    noise_step_size: PGD step; paper: 0.8/255 (eps/10).
    train_steps: source-model SGD steps between noise updates (M); paper: 10.
    stop_accuracy: stop once the source model's accuracy on the perturbed
      training data exceeds this; paper: 0.99 (sample-wise).
    max_rounds: safeguard on train/noise rounds if accuracy never exceeds the
      threshold (not in the paper).
    batch_size: minibatch for training and noise updates; authors' script: 512.
    learning_rate: source SGD learning rate; paper: 0.1.
    momentum: SGD momentum; paper: 0.9.
    weight_decay: L2 weight decay; paper: 5e-4.
    width: first-conv channels of the source CNN (paper: a ResNet-18; a small
      CNN here, see attacks._source_model).
  """

  eps: float = 8 / 255
  mode: str = "sample"
  noise_steps: int = 20
  noise_step_size: float = 0.8 / 255
  train_steps: int = 10
  stop_accuracy: float = 0.99
  max_rounds: int = 1000
  batch_size: int = 512
  learning_rate: float = 0.1
  momentum: float = 0.9
  weight_decay: float = 5e-4
  width: int = 32

  preset_names: ClassVar[tuple[str, ...]] = ("paper", "cpu")

  def __post_init__(self):
    self.validate()

  def validate(self):
    """Raises ConfigError for out-of-range settings."""
    _check_common(self)
    _common.check_choice(self, "mode", ("sample", "class"))
    _common.check_range(self, "train_steps", 1, 1 << 30)
    _common.check_range(self, "stop_accuracy", 0.0, 1.0)
    _common.check_range(self, "max_rounds", 1, 1 << 30)

  @classmethod
  def cpu(cls, **overrides) -> "EMConfig":
    """A CPU-scaled preset (minutes for 5,000 MNIST/CIFAR-10 images on 2 cores).

    Same algorithm and stop rule as the paper, less work per round: 4 PGD
    steps of eps/4 (paper: 20 of eps/10), batch 128 (authors: 512), M = 20
    source steps per round (paper: 10; training is cheap next to a noise pass
    over the whole set), at most 16 rounds, and a width-16 source CNN with
    GroupNorm and a pooled head (paper: ResNet-18, see attacks._source_model)
    trained at SGD lr 0.05 (paper: 0.1; at 0.1 this small GroupNorm net
    collapsed to constant output after reaching ~98% on perturbed CIFAR-10).
    With ``mode="class"`` it uses the authors' class-wise values instead: 1
    PGD step per batch and stop at 90% accuracy.

    Example:
      >>> EMConfig.cpu(mode="class").noise_steps
      1
    """
    base = dict(noise_steps=4, noise_step_size=2 / 255, train_steps=20, max_rounds=16,
                batch_size=128, learning_rate=0.05, width=16)
    if overrides.get("mode") == "class":
      base.update(noise_steps=1, stop_accuracy=0.9)
    return cls(**{**base, **overrides})

  # ---- the engine's hooks (EM: plain min-min) ----

  _label = "em"

  def _iterations(self) -> int:
    """Length of the outer loop: at most ``max_rounds`` train/noise rounds."""
    return self.max_rounds

  def _learning_rate(self):
    """The source model's SGD learning rate (constant)."""
    return self.learning_rate

  def _source_batch(self, gdef, params, xb, yb, key):
    """The batch the source model trains on: the perturbed batch as it is."""
    del gdef, params, yb, key
    return xb

  def _noise_objective(self, gdef, params, xd, yb, key):
    """The loss the noise descends: the source model's loss on ``xd``."""
    del key
    return _source_model.loss(gdef, params, xd, yb)

  def _run(self, key, xf, y, gdef, params, bar) -> _Outcome:
    """EM rounds until the stop accuracy (see :func:`_run_em`)."""
    table, params, accs, losses, stopped = _run_em(key, xf, y, self, gdef, params, bar)
    delta_rows = table[y] if self.mode == "class" else table
    return _Outcome(table, params, accs, losses, len(accs), stopped, delta_rows)


@dataclasses.dataclass(frozen=True, kw_only=True)
class REMConfig(AttackConfig):
  """Settings of robust error-minimizing noise (Fu et al., ICLR 2022; CIFAR-10 defaults).

  The defaults are the paper's CIFAR-10 settings (Sec. 5.1 and the authors'
  generation script): eps 8/255, noise PGD 10 steps of eps/5 with a random
  start, adversarial training radius rho_a 4/255 with PGD 10 steps of rho_a/5,
  5 EOT samples (crop with 4-pixel padding + horizontal flip), 5000 source
  iterations of batch 128, SGD lr 0.1 decayed by 0.1 every 2000 iterations,
  momentum 0.9, weight decay 5e-4; the minibatch's noise is regenerated at every
  iteration. Noise is sample-wise. These take many GPU-hours; :meth:`cpu` is a
  scaled-down preset.

  Attributes:
    eps: L_inf radius of the defensive noise; paper: 8/255.
    rho_a: adversarial-training radius of the source model, in [0, eps);
      paper: 4/255.
    adv_steps: PGD steps of the inner maximisation; paper: 10.
    adv_step_size: inner PGD step; paper: rho_a/5 = 0.8/255.
    noise_steps: PGD steps per noise update; paper: 10.
    noise_step_size: noise PGD step; paper: eps/5 = 1.6/255.
    eot_samples: transformations sampled per noise gradient (EOT); paper: 5.
    perturb_freq: regenerate the current minibatch's noise every this many
      source iterations; paper: 1.
    total_train_steps: source-model iterations; paper: 5000.
    lr_decay_steps: multiply the learning rate by ``lr_decay_rate`` every this
      many iterations; paper: 2000.
    lr_decay_rate: paper: 0.1.
    crop_pad: zero padding of the random-crop transformation; paper: 4.
    flip: random horizontal flips in the transformation; paper: True.
    batch_size: minibatch; paper: 128.
    learning_rate: initial source SGD learning rate; paper: 0.1.
    momentum: SGD momentum; paper: 0.9.
    weight_decay: L2 weight decay; paper: 5e-4.
    width: first-conv channels of the source CNN (paper: ResNet-18).
  """

  eps: float = 8 / 255
  rho_a: float = 4 / 255
  adv_steps: int = 10
  adv_step_size: float = 0.8 / 255
  noise_steps: int = 10
  noise_step_size: float = 1.6 / 255
  eot_samples: int = 5
  perturb_freq: int = 1
  total_train_steps: int = 5000
  lr_decay_steps: int = 2000
  lr_decay_rate: float = 0.1
  crop_pad: int = 4
  flip: bool = True
  batch_size: int = 128
  learning_rate: float = 0.1
  momentum: float = 0.9
  weight_decay: float = 5e-4
  width: int = 32

  preset_names: ClassVar[tuple[str, ...]] = ("paper", "cpu")

  def __post_init__(self):
    self.validate()

  def validate(self):
    """Raises ConfigError for out-of-range settings."""
    _check_common(self)
    _common.check_range(self, "rho_a", 0.0, self.eps, hi_open=True)
    _common.check_range(self, "adv_steps", 0, 1 << 20)
    _common.check_range(self, "adv_step_size", 0.0, 1.0)
    _common.check_range(self, "eot_samples", 1, 1 << 10)
    _common.check_range(self, "perturb_freq", 1, 1 << 30)
    _common.check_range(self, "total_train_steps", 1, 1 << 30)
    _common.check_range(self, "lr_decay_steps", 1, 1 << 30)
    _common.check_range(self, "lr_decay_rate", 0.0, 1.0, lo_open=True)
    _common.check_range(self, "crop_pad", 0, 1 << 10)

  @classmethod
  def cpu(cls, **overrides) -> "REMConfig":
    """A CPU-scaled preset (minutes for 5,000 MNIST/CIFAR-10 images on 2 cores).

    Same algorithm; adversary 2 steps of rho_a/2, noise 3 steps of eps/3, 1 EOT
    sample, the minibatch noise regenerated every 2nd iteration, 160 source
    iterations (lr decay after 120), a width-16 source CNN with GroupNorm and
    a pooled head (paper: 10 steps, 10 steps, 5 samples, every iteration, 5000
    iterations with decay every 2000, ResNet-18). Learning rate, momentum and
    weight decay are the paper's.
    """
    base = dict(adv_steps=2, adv_step_size=2 / 255, noise_steps=3,
                noise_step_size=8 / 255 / 3, eot_samples=1, perturb_freq=2,
                total_train_steps=160, lr_decay_steps=120, width=16)
    return cls(**{**base, **overrides})

  # ---- the engine's hooks (REM: min-min-max with EOT) ----

  _label = "rem"

  def _iterations(self) -> int:
    """Length of the outer loop: ``total_train_steps`` source iterations."""
    return self.total_train_steps

  def _learning_rate(self):
    """The source model's SGD learning rate, decayed in steps."""
    return optax.exponential_decay(self.learning_rate, self.lr_decay_steps,
                                   self.lr_decay_rate, staircase=True)

  def _source_batch(self, gdef, params, xb, yb, key):
    """Adversarial training: the transformed batch plus a PGD perturbation."""
    k1, k2 = jax.random.split(key)
    xb = _augment(k1, xb, self)
    return jnp.clip(xb + _adversary(gdef, self, params, xb, yb, k2), 0, 1)

  def _noise_objective(self, gdef, params, xd, yb, key):
    """Expected adversarial loss over ``eot_samples`` random transformations."""

    def one(k):
      k1, k2 = jax.random.split(k)
      xt = _augment(k1, xd, self)
      r = _adversary(gdef, self, params, xt, yb, k2)
      return _source_model.loss(gdef, params, jnp.clip(xt + r, 0, 1), yb)

    keys = jax.random.split(key, self.eot_samples)
    return jnp.mean(jax.lax.map(one, keys))

  def _run(self, key, xf, y, gdef, params, bar) -> _Outcome:
    """Source iterations, then the final noise (see :func:`_run_rem`)."""
    table, params, accs, losses = _run_rem(key, xf, y, self, gdef, params, bar)
    return _Outcome(table, params, accs, losses, self.total_train_steps, False, table)


class MinMinResult(NamedTuple):
  """What :func:`generate` returns.

  Attributes:
    x: uint8 poisoned images.
    delta: float32 noise table (N or K, H, W, C), before rounding.
    graphdef: source-model structure (for :func:`source_loss`).
    params: trained source-model parameters.
    accuracy: source-model accuracy on the perturbed training data after each
      EM round (REM: after the final noise generation, one entry).
    loss: mean source-model cross-entropy on the perturbed data, same points.
    rounds: EM rounds run (REM: source iterations run).
    stopped: EM reached ``stop_accuracy`` (REM: always False).
  """

  x: np.ndarray
  delta: np.ndarray
  graphdef: Any
  params: Any
  accuracy: list
  loss: list
  rounds: int
  stopped: bool


def _optimizer(cfg):
  return optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                     optax.sgd(cfg._learning_rate(), momentum=cfg.momentum))  # pylint: disable=protected-access


def _augment(key, x, cfg):
  """Random crop (zero pad ``crop_pad``) and horizontal flip, per image."""
  b, h, w, c = x.shape
  kc, kf = jax.random.split(key)
  p = cfg.crop_pad
  if p:
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    offs = jax.random.randint(kc, (b, 2), 0, 2 * p + 1)
    x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c)))(xp, offs)
  if cfg.flip:
    f = jax.random.bernoulli(kf, 0.5, (b,))
    x = jnp.where(f[:, None, None, None], x[:, :, ::-1, :], x)
  return x


def _adversary(gdef, cfg, params, x, y, key):
  """PGD (ascent) at radius rho_a from a random start; gradient-stopped."""
  x = jax.lax.stop_gradient(x)
  r0 = jax.random.uniform(key, x.shape, jnp.float32, -cfg.rho_a, cfg.rho_a)

  def body(_, r):
    g = jax.grad(lambda r: _source_model.loss(gdef, params, jnp.clip(x + r, 0, 1), y))(r)
    return jnp.clip(r + cfg.adv_step_size * jnp.sign(g), -cfg.rho_a, cfg.rho_a)

  r = jax.lax.fori_loop(0, cfg.adv_steps, body, r0)
  return jax.lax.stop_gradient(r)


@functools.partial(jax.jit, static_argnames=("gdef", "cfg"))
def _train_step(gdef, cfg, params, opt_state, xb, yb, key):
  """One SGD step (REM: on the adversarial, transformed batch); returns batch accuracy too."""
  xb = cfg._source_batch(gdef, params, xb, yb, key)  # pylint: disable=protected-access

  def loss(p):
    lg = _source_model.logits(gdef, p, xb)
    return optax.softmax_cross_entropy_with_integer_labels(lg, yb).mean(), lg

  (_, lg), grads = jax.value_and_grad(loss, has_aux=True)(params)
  updates, opt_state = _optimizer(cfg).update(grads, opt_state, params)
  acc = jnp.mean(jnp.argmax(lg, -1) == yb)
  return optax.apply_updates(params, updates), opt_state, acc


def _noise_loss(gdef, cfg, params, table, xb, yb, idx, key):
  xd = jnp.clip(xb + table[idx], 0, 1)
  return cfg._noise_objective(gdef, params, xd, yb, key)  # pylint: disable=protected-access


@functools.partial(jax.jit, static_argnames=("gdef", "cfg"))
def _noise_update(gdef, cfg, params, table, xb, yb, idx, key):
  """``noise_steps`` of sign-gradient *descent* on the noise rows used by the batch."""

  def body(i, table):
    g = jax.grad(_noise_loss, argnums=3)(gdef, cfg, params, table, xb, yb, idx,
                                         jax.random.fold_in(key, i))
    return jnp.clip(table - cfg.noise_step_size * jnp.sign(g), -cfg.eps, cfg.eps)

  return jax.lax.fori_loop(0, cfg.noise_steps, body, table)


@functools.partial(jax.jit, static_argnames=("gdef",))
def _eval_batch(gdef, params, xb, yb):
  """Per-example cross-entropy and correctness of the source model."""
  lg = _source_model.logits(gdef, params, xb)
  return (optax.softmax_cross_entropy_with_integer_labels(lg, yb),
          jnp.argmax(lg, -1) == yb)


def _batches(n: int, bs: int):
  """Index batches covering 0..n-1 in order, the last one wrapped to full size."""
  for s in range(0, n, bs):
    yield np.arange(s, s + bs) % n, min(bs, n - s)


def _evaluate(gdef, params, xf, y, table, rows_of, bs):
  """Mean loss and accuracy of the source model on ``clip(x + table[rows])``."""
  loss, correct = 0.0, 0
  for idx, valid in _batches(len(xf), bs):
    xb = np.clip(xf[idx] + table[rows_of(idx)], 0.0, 1.0)
    lb, cb = _eval_batch(gdef, params, xb, y[idx])
    loss += float(np.asarray(lb)[:valid].sum())
    correct += int(np.asarray(cb)[:valid].sum())
  return loss / len(xf), correct / len(xf)


def source_loss(graphdef, params, x, y, batch_size: int = 512) -> float:
  """Mean cross-entropy of a source model on uint8 images ``x`` (labels ``y``).

  Example:
    >>> r = generate(key, x, y, EMConfig.cpu())
    >>> source_loss(r.graphdef, r.params, r.x, y) < source_loss(r.graphdef, r.params, x, y)
  """
  x, y = _common.check_inputs(x, y)
  xf = x.astype(np.float32) / 255.0
  zero = np.zeros((1,) + x.shape[1:], np.float32)
  loss, _ = _evaluate(graphdef, params, xf, y, zero, lambda idx: np.zeros(len(idx), int),
                      min(batch_size, len(x)))
  return loss


class _Batcher:
  """Yields minibatch indices of seeded per-epoch permutations (fold_in by epoch)."""

  def __init__(self, key, n, bs):
    self.key, self.n, self.bs, self.step, self.perm = key, n, bs, 0, None

  def next(self) -> np.ndarray:
    epoch, pos = divmod(self.step, self.n // self.bs)
    if pos == 0:
      self.perm = np.asarray(jax.random.permutation(jax.random.fold_in(self.key, epoch), self.n))
    self.step += 1
    return self.perm[pos * self.bs:(pos + 1) * self.bs]


def _run_em(key, xf, y, cfg, gdef, params, bar):
  """EM rounds; returns (table, params, accuracy, loss, stopped)."""
  n, k = len(xf), int(y.max()) + 1
  classwise = cfg.mode == "class"
  shape = ((k,) if classwise else (n,)) + xf.shape[1:]
  table = np.array(jax.random.uniform(jax.random.fold_in(key, 1), shape, jnp.float32,
                                      -cfg.eps, cfg.eps))
  rows_of = (lambda idx: y[idx]) if classwise else (lambda idx: idx)
  opt_state = _optimizer(cfg).init(params)
  bs = min(cfg.batch_size, n)
  batcher = _Batcher(jax.random.fold_in(key, 2), n, bs)
  k_noise, k_step = jax.random.fold_in(key, 3), jax.random.fold_in(key, 4)
  accs, losses, step = [], [], 0
  for r in bar:
    for _ in range(cfg.train_steps):
      idx = batcher.next()
      xb = np.clip(xf[idx] + table[rows_of(idx)], 0.0, 1.0)
      params, opt_state, _ = _train_step(gdef, cfg, params, opt_state, xb, y[idx],
                                         jax.random.fold_in(k_step, step))
      step += 1
    kr = jax.random.fold_in(k_noise, r)
    for b, (idx, valid) in enumerate(_batches(n, bs)):
      kb = jax.random.fold_in(kr, b)
      if classwise:
        table = np.asarray(_noise_update(gdef, cfg, params, table, xf[idx], y[idx], y[idx], kb))
      else:
        sub = _noise_update(gdef, cfg, params, table[idx], xf[idx], y[idx],
                            np.arange(len(idx)), kb)
        table[idx[:valid]] = np.asarray(sub)[:valid]
    loss, acc = _evaluate(gdef, params, xf, y, table, rows_of, bs)
    accs.append(acc)
    losses.append(loss)
    bar.set_postfix(acc=f"{acc:.3f}", loss=f"{loss:.3f}")
    log.info("em round %d: source accuracy on perturbed data %.4f, loss %.4f",
             r + 1, acc, loss)
    if acc > cfg.stop_accuracy:
      log.info("em stopped after %d rounds (accuracy %.4f > %.4f)", r + 1, acc,
               cfg.stop_accuracy)
      return table, params, accs, losses, True
  log.info("em ran all %d rounds without reaching accuracy %.4f", len(accs),
           cfg.stop_accuracy)
  return table, params, accs, losses, False


def _rem_noise(gdef, cfg, params, xf, y, idx, key):
  """Fresh REM noise for the images ``idx``: PGD from a uniform random start."""
  start = jax.random.uniform(jax.random.fold_in(key, 0), xf[idx].shape, jnp.float32,
                             -cfg.eps, cfg.eps)
  return _noise_update(gdef, cfg, params, start, xf[idx], y[idx], np.arange(len(idx)),
                       jax.random.fold_in(key, 1))


def _run_rem(key, xf, y, cfg, gdef, params, bar):
  """REM source iterations, then the final noise; returns (table, params, acc, loss)."""
  n = len(xf)
  table = np.zeros_like(xf)
  opt_state = _optimizer(cfg).init(params)
  bs = min(cfg.batch_size, n)
  batcher = _Batcher(jax.random.fold_in(key, 2), n, bs)
  k_noise, k_step, k_final = (jax.random.fold_in(key, i) for i in (3, 4, 5))
  report = max(1, cfg.total_train_steps // 10)
  recent = []
  for step in bar:
    idx = batcher.next()
    if (step + 1) % cfg.perturb_freq == 0:
      table[idx] = np.asarray(_rem_noise(gdef, cfg, params, xf, y, idx,
                                         jax.random.fold_in(k_noise, step)))
    xb = np.clip(xf[idx] + table[idx], 0.0, 1.0)
    params, opt_state, acc = _train_step(gdef, cfg, params, opt_state, xb, y[idx],
                                         jax.random.fold_in(k_step, step))
    recent.append(acc)
    if (step + 1) % report == 0:
      mean_acc = float(np.mean(np.asarray(recent)))
      recent = []
      bar.set_postfix(adv_acc=f"{mean_acc:.3f}")
      log.info("rem step %d/%d: source accuracy on adversarial noised batches %.4f",
               step + 1, cfg.total_train_steps, mean_acc)
  for b, (idx, valid) in enumerate(_batches(n, bs)):
    sub = _rem_noise(gdef, cfg, params, xf, y, idx, jax.random.fold_in(k_final, b))
    table[idx[:valid]] = np.asarray(sub)[:valid]
  loss, acc = _evaluate(gdef, params, xf, y, table, lambda idx: idx, bs)
  log.info("rem final noise: source accuracy on perturbed data %.4f, loss %.4f", acc, loss)
  return table, params, [acc], [loss]


def generate(key: jax.Array, x, y, config, context: RunContext = RunContext()
             ) -> MinMinResult:
  """Runs EM or REM (as the config class defines) and returns noise and source model.

  Args:
    key: PRNG key (model init, batch order, noise init, adversary, EOT).
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    config: :class:`EMConfig` or :class:`REMConfig`.
    context: labels must lie below ``num_classes`` (the source model and the
      class-wise noise table are sized by the labels present, ``max(y) + 1``);
      ``progress`` shows the round / iteration bar on a terminal. Nothing is
      checkpointed: ``checkpoint_dir`` is not used.

  Returns:
    A :class:`MinMinResult` (poisoned images, noise, source model, and the
    source model's accuracy / loss on the perturbed data per round).

  Example:
    >>> r = generate(jax.random.key(0), x, y, EMConfig.cpu())
    >>> r.stopped, r.rounds, r.accuracy[-1]
  """
  x, y = _common.check_inputs(x, y, context.num_classes)
  if not isinstance(config, (EMConfig, REMConfig)):
    raise ConfigError(f"expected EMConfig or REMConfig, got {type(config).__name__}")
  config.validate()
  if len(x) == 0:
    raise ConfigError("EM/REM need at least one training image")
  gdef, params = _source_model.init(jax.random.fold_in(key, 0), _common.num_classes(y),
                                    x.shape[1:], config.width)
  xf = x.astype(np.float32) / 255.0
  # pylint: disable=protected-access
  with tqdm.trange(config._iterations(), desc=config._label,
                   disable=None if context.progress else True, leave=False) as bar:
    run = config._run(key, xf, y, gdef, params, bar)
  # pylint: enable=protected-access
  x_p = np.empty_like(x)
  for s in range(0, len(x), 4096):
    xs = np.clip(xf[s:s + 4096] + run.delta_rows[s:s + 4096], 0.0, 1.0)
    x_p[s:s + 4096] = _common.to_uint8_within(x[s:s + 4096], xs, config.eps)
  return MinMinResult(x_p, run.table, gdef, run.params, run.accuracy, run.loss,
                      run.rounds, run.stopped)


def poison(key: jax.Array, x, y, config, context: RunContext = RunContext()) -> np.ndarray:
  """EM / REM poisoning: :func:`generate` and keep only the images.

  Progress (per-round source accuracy and loss, the stop) is logged on the
  ``ntga.attacks.minmin`` logger; call :func:`generate` to get it back as data.

  Args:
    key: PRNG key.
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    config: :class:`EMConfig` or :class:`REMConfig`.
    context: see :func:`generate` (labels' range and the progress bar).

  Returns:
    uint8 images of x's shape, within eps of the clean ones after rounding.

  Example:
    >>> x_p = poison(jax.random.key(0), x, y, EMConfig.cpu(), RunContext(progress=True))
  """
  return generate(key, x, y, config, context).x
