"""Bi-level noise generation shared by EM and REM (private implementation).

EM (error-minimizing noise; Huang, Ma, Erfani, Bailey, Wang, "Unlearnable
Examples: Making Personal Data Unexploitable", ICLR 2021) solves

  min_theta min_{||delta||_inf <= eps} E L(f_theta(x + delta), y)

by alternating: train the source model ``train_steps`` SGD steps on the
currently perturbed data, then run PGD on ``delta`` (descending the loss) over the
whole training set; stop when the source model's accuracy on the perturbed
training data exceeds ``stop_accuracy``. Noise is sample-wise (one delta per
image) or class-wise (one per class).

REM (robust error-minimizing noise; Fu, He, Liu, Shen, Tao, "Robust Unlearnable
Examples: Protecting Data Against Adversarial Learning", ICLR 2022) makes the
source model adversarially trained at radius ``rho_a < eps`` and takes an
expectation over transformations (EOT; random crop + flip here):

  min_theta min_delta E_T max_{||rho||_inf <= rho_a} L(f_theta(T(x + delta) + rho), y)

trained for a fixed number of source-model iterations.

Both share this engine; :mod:`attacks.em` and :mod:`attacks.rem` re-export it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from attacks import _common, _source_model
from ntga.errors import ConfigError


def _check_common(cfg):
  _common.check_types(cfg)
  _common.check_range(cfg, "eps", 0.0, 1.0, lo_open=True)
  _common.check_range(cfg, "noise_steps", 1, 1 << 20)
  _common.check_range(cfg, "noise_step_size", 0.0, 1.0, lo_open=True)
  _common.check_range(cfg, "train_steps", 1, 1 << 30)
  _common.check_range(cfg, "batch_size", 1, 1 << 20)
  _common.check_range(cfg, "learning_rate", 0.0, 100.0, lo_open=True)
  _common.check_range(cfg, "momentum", 0.0, 1.0, hi_open=True)
  _common.check_range(cfg, "weight_decay", 0.0, 1.0)
  _common.check_range(cfg, "width", 1, 4096)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EMConfig:
  """Settings of error-minimizing noise (Huang et al., ICLR 2021; CIFAR-10 defaults).

  The defaults are the paper's and take hours on CPU for CIFAR-10; use
  :meth:`cpu` (scaled down) for CPU runs and tests.

  Attributes:
    eps: L_inf radius in [0, 1] units; paper: 8/255.
    mode: "sample" (one noise per image) or "class" (one per class).
    noise_steps: PGD steps per noise update; paper: 20.
    noise_step_size: PGD step; paper: 0.8/255 (eps/10).
    train_steps: source-model SGD steps between noise updates (M); paper: 10.
    stop_accuracy: stop once the source model's accuracy on the perturbed
      training data exceeds this; paper: 0.99.
    max_rounds: safeguard on train/noise rounds if accuracy never exceeds the
      threshold (not in the paper; 1000 is far beyond its typical 10-30 rounds).
    batch_size: minibatch for training and noise updates; paper: 128 (CIFAR).
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
  batch_size: int = 128
  learning_rate: float = 0.1
  momentum: float = 0.9
  weight_decay: float = 5e-4
  width: int = 32

  def __post_init__(self):
    self.validate()

  def validate(self):
    """Raises ConfigError for out-of-range settings."""
    _check_common(self)
    _common.check_choice(self, "mode", ("sample", "class"))
    _common.check_range(self, "stop_accuracy", 0.0, 1.0)
    _common.check_range(self, "max_rounds", 1, 1 << 30)

  @classmethod
  def cpu(cls, **overrides) -> "EMConfig":
    """A CPU-scaled preset: 5 PGD steps of eps/4 and at most 20 rounds.

    Paper values (20 steps of eps/10, up to convergence with a ResNet-18) are
    GPU-hours on CIFAR-10; this preset keeps the algorithm and shrinks the work.
    """
    base = dict(noise_steps=5, noise_step_size=2 / 255, max_rounds=20,
                learning_rate=0.05, width=16)
    return cls(**{**base, **overrides})


@dataclasses.dataclass(frozen=True, kw_only=True)
class REMConfig:
  """Settings of robust error-minimizing noise (Fu et al., ICLR 2022; CIFAR-10 defaults).

  The defaults are the paper's and take many GPU-hours on CIFAR-10; use
  :meth:`cpu` for CPU runs and tests. Noise is sample-wise.

  Attributes:
    eps: L_inf radius of the defensive noise; paper: 8/255.
    rho_a: adversarial-training radius of the source model, in [0, eps);
      paper: 4/255.
    adv_steps: PGD steps of the inner maximisation; paper: 10.
    adv_step_size: inner PGD step; paper: rho_a/5 = 0.8/255.
    noise_steps: PGD steps per noise update; paper: 10.
    noise_step_size: noise PGD step; paper: eps/5 = 1.6/255.
    eot_samples: transformations sampled per noise gradient (EOT); paper: 5.
    train_steps: source-model steps between noise updates (M); paper: 10.
    total_train_steps: source-model iterations in all; paper: 5000.
    crop_pad: zero padding of the random-crop transformation; paper: 4.
    flip: random horizontal flips in the transformation; paper: True.
    batch_size: minibatch; paper: 128.
    learning_rate: source SGD learning rate; paper: 0.1.
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
  train_steps: int = 10
  total_train_steps: int = 5000
  crop_pad: int = 4
  flip: bool = True
  batch_size: int = 128
  learning_rate: float = 0.1
  momentum: float = 0.9
  weight_decay: float = 5e-4
  width: int = 32

  def __post_init__(self):
    self.validate()

  def validate(self):
    """Raises ConfigError for out-of-range settings."""
    _check_common(self)
    _common.check_range(self, "rho_a", 0.0, self.eps, hi_open=True)
    _common.check_range(self, "adv_steps", 0, 1 << 20)
    _common.check_range(self, "adv_step_size", 0.0, 1.0)
    _common.check_range(self, "eot_samples", 1, 1 << 10)
    _common.check_range(self, "total_train_steps", 1, 1 << 30)
    _common.check_range(self, "crop_pad", 0, 1 << 10)

  @classmethod
  def cpu(cls, **overrides) -> "REMConfig":
    """A CPU-scaled preset: 3 adversary steps, 3 noise steps, 2 EOT samples,
    100 source iterations (paper: 10, 10, 5 and 5000, GPU-hours on CIFAR-10)."""
    base = dict(adv_steps=3, adv_step_size=4 / 255 / 3, noise_steps=3,
                noise_step_size=8 / 255 / 3, eot_samples=2, total_train_steps=100,
                learning_rate=0.05, width=16)
    return cls(**{**base, **overrides})


class MinMinResult(NamedTuple):
  """What :func:`generate` returns.

  Attributes:
    x: uint8 poisoned images.
    delta: float32 noise table (N or K, H, W, C), before rounding.
    graphdef: source-model structure (for :func:`source_loss`).
    params: trained source-model parameters.
    accuracy: source-model accuracy on the perturbed data after each round.
  """

  x: np.ndarray
  delta: np.ndarray
  graphdef: Any
  params: Any
  accuracy: list


def _optimizer(cfg):
  return optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                     optax.sgd(cfg.learning_rate, momentum=cfg.momentum))


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
  """PGD (ascent) at radius rho_a; returns the adversarial input, gradient-stopped."""
  x = jax.lax.stop_gradient(x)
  r0 = jax.random.uniform(key, x.shape, jnp.float32, -cfg.rho_a, cfg.rho_a)

  def body(_, r):
    g = jax.grad(lambda r: _source_model.loss(gdef, params, jnp.clip(x + r, 0, 1), y))(r)
    return jnp.clip(r + cfg.adv_step_size * jnp.sign(g), -cfg.rho_a, cfg.rho_a)

  r = jax.lax.fori_loop(0, cfg.adv_steps, body, r0)
  return jax.lax.stop_gradient(r)


def _robust(cfg) -> bool:
  return isinstance(cfg, REMConfig)


@functools.partial(jax.jit, static_argnames=("gdef", "cfg"))
def _train_step(gdef, cfg, params, opt_state, xb, yb, key):
  if _robust(cfg):
    k1, k2 = jax.random.split(key)
    xb = _augment(k1, xb, cfg)
    xb = jnp.clip(xb + _adversary(gdef, cfg, params, xb, yb, k2), 0, 1)
  grads = jax.grad(_source_model.loss, argnums=1)(gdef, params, xb, yb)
  updates, opt_state = _optimizer(cfg).update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def _noise_loss(gdef, cfg, params, table, xb, yb, idx, key):
  xd = jnp.clip(xb + table[idx], 0, 1)
  if not _robust(cfg):
    return _source_model.loss(gdef, params, xd, yb)

  def one(k):
    k1, k2 = jax.random.split(k)
    xt = _augment(k1, xd, cfg)
    r = _adversary(gdef, cfg, params, xt, yb, k2)
    return _source_model.loss(gdef, params, jnp.clip(xt + r, 0, 1), yb)

  keys = jax.random.split(key, cfg.eot_samples)
  return jnp.mean(jax.lax.map(one, keys))


@functools.partial(jax.jit, static_argnames=("gdef", "cfg"))
def _noise_update(gdef, cfg, params, table, xb, yb, idx, key):
  """``noise_steps`` of sign-gradient descent on the noise rows used by the batch."""

  def body(i, table):
    g = jax.grad(_noise_loss, argnums=3)(gdef, cfg, params, table, xb, yb, idx,
                                         jax.random.fold_in(key, i))
    return jnp.clip(table - cfg.noise_step_size * jnp.sign(g), -cfg.eps, cfg.eps)

  return jax.lax.fori_loop(0, cfg.noise_steps, body, table)


@functools.partial(jax.jit, static_argnames=("gdef",))
def _predict(gdef, params, xb):
  return jnp.argmax(_source_model.logits(gdef, params, xb), axis=-1)


@functools.partial(jax.jit, static_argnames=("gdef",))
def _batch_loss(gdef, params, xb, yb):
  lg = _source_model.logits(gdef, params, xb)
  return optax.softmax_cross_entropy_with_integer_labels(lg, yb)


def _batches(n: int, bs: int):
  """Index batches covering 0..n-1 in order, the last one wrapped to full size."""
  for s in range(0, n, bs):
    yield np.arange(s, s + bs) % n, min(bs, n - s)


def source_loss(graphdef, params, x, y, batch_size: int = 512) -> float:
  """Mean cross-entropy of a source model on uint8 images ``x`` (labels ``y``).

  Example:
    >>> r = generate(key, x, y, EMConfig.cpu())
    >>> source_loss(r.graphdef, r.params, r.x, y) < source_loss(r.graphdef, r.params, x, y)
  """
  x, y = _common.check_inputs(x, y)
  bs = min(batch_size, len(x))
  total = 0.0
  for idx, valid in _batches(len(x), bs):
    lb = np.asarray(_batch_loss(graphdef, params, _common.as_float(x[idx]), y[idx]))
    total += float(lb[:valid].sum())
  return total / len(x)


def generate(key: jax.Array, x, y, config) -> MinMinResult:
  """Runs EM or REM (by the config's type) and returns noise and source model.

  Args:
    key: PRNG key (model init, batch order, noise init, adversary, EOT).
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    config: :class:`EMConfig` or :class:`REMConfig`.

  Returns:
    A :class:`MinMinResult`.
  """
  x, y = _common.check_inputs(x, y)
  if not isinstance(config, (EMConfig, REMConfig)):
    raise ConfigError(f"expected EMConfig or REMConfig, got {type(config).__name__}")
  config.validate()
  n, k = len(x), _common.num_classes(y)
  robust = _robust(config)
  classwise = not robust and config.mode == "class"
  gdef, params = _source_model.init(jax.random.fold_in(key, 0), k, x.shape[-1], config.width)
  opt_state = _optimizer(config).init(params)
  shape = ((k,) if classwise else (n,)) + x.shape[1:]
  table = np.array(jax.random.uniform(jax.random.fold_in(key, 1), shape, jnp.float32,
                                        -config.eps, config.eps))
  xf = x.astype(np.float32) / 255.0
  bs = min(config.batch_size, n)
  steps_per_epoch = n // bs
  if robust:
    rounds = math.ceil(config.total_train_steps / config.train_steps)
  else:
    rounds = config.max_rounds
  k_perm, k_noise, k_step = (jax.random.fold_in(key, i) for i in (2, 3, 4))
  step, history = 0, []
  perm = None
  for r in tqdm.trange(rounds, desc="rem" if robust else "em", disable=None, leave=False):
    todo = config.train_steps
    if robust:
      todo = min(todo, config.total_train_steps - step)
    for _ in range(todo):
      epoch, pos = divmod(step, steps_per_epoch)
      if pos == 0:
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(k_perm, epoch), n))
      idx = perm[pos * bs:(pos + 1) * bs]
      rows = y[idx] if classwise else idx
      xb = np.clip(xf[idx] + table[rows], 0.0, 1.0)
      params, opt_state = _train_step(gdef, config, params, opt_state, xb, y[idx],
                                      jax.random.fold_in(k_step, step))
      step += 1
    kr = jax.random.fold_in(k_noise, r)
    correct = 0
    for b, (idx, valid) in enumerate(_batches(n, bs)):
      kb = jax.random.fold_in(kr, b)
      if classwise:
        table = np.asarray(_noise_update(gdef, config, params, table, xf[idx], y[idx],
                                         y[idx], kb))
      else:
        sub = _noise_update(gdef, config, params, table[idx], xf[idx], y[idx],
                            np.arange(len(idx)), kb)
        table[idx[:valid]] = np.asarray(sub)[:valid]
      rows = y[idx] if classwise else idx
      xb = np.clip(xf[idx] + table[rows], 0.0, 1.0)
      correct += int((np.asarray(_predict(gdef, params, xb))[:valid] == y[idx[:valid]]).sum())
    history.append(correct / n)
    if not robust and history[-1] > config.stop_accuracy:
      break
  delta_rows = table[y] if classwise else table
  x_p = np.empty_like(x)
  for s in range(0, n, 4096):
    xs = np.clip(xf[s:s + 4096] + delta_rows[s:s + 4096], 0.0, 1.0)
    x_p[s:s + 4096] = _common.to_uint8_within(x[s:s + 4096], xs, config.eps)
  return MinMinResult(x_p, table, gdef, params, history)


def poison(key: jax.Array, x, y, config) -> np.ndarray:
  """EM / REM poisoning: :func:`generate` and keep only the images.

  Args:
    key: PRNG key.
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    config: :class:`EMConfig` or :class:`REMConfig`.

  Returns:
    uint8 images of x's shape, within eps of the clean ones after rounding.
  """
  return generate(key, x, y, config).x
