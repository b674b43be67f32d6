"""Bi-level noise generation shared by EM and REM (private implementation).

**EM** (error-minimizing noise; Huang, Ma, Erfani, Bailey, Wang, "Unlearnable
Examples: Making Personal Data Unexploitable", ICLR 2021, Sec. 3-4; authors'
code github.com/HanxunH/Unlearnable-Examples, perturbation.py and toolbox.py)
solves

  min_theta min_{||delta||_inf <= eps} E L(f_theta(x + delta), y)

by alternating rounds. What the authors' sample-wise loop
(``sample_wise_perturbation``) computes, and what :class:`EMConfig` does by
default:

* the noise starts at zero (``random_start`` is off by default);
* a round trains the source model (``model.train()``: BatchNorm on batch
  statistics) ``train_step`` = 10 SGD steps on the perturbed images, the
  batches taken in the stored (shuffled) order of CIFAR-10 from an iterator
  that carries over between rounds and restarts when it runs out (here: a
  seeded permutation drawn once, since this library's loaders return data
  sorted by class); each step's gradient is clipped to
  global norm 5 (``trainer.train_batch``: ``clip_grad_norm_(..., grad_clip)``
  with the config's 5.0);
* then, with the model in eval mode (BatchNorm on running statistics), every
  image's noise takes ``num_steps`` = 20 sign-gradient *descent* steps of
  0.8/255 (``PerturbationTool.min_min_attack``). The gradient is taken with
  respect to the clamped image ``p = clamp(x + eta, 0, 1)`` itself, and the
  step is applied to it: ``eta <- clamp(p - a * sign(grad_p L) - x, -eps,
  eps)``, ``p <- clamp(x + eta, 0, 1)``. So a clipped pixel still gets a
  gradient, and the noise a step starts from is what the clamp left of it;
* the round ends with the source model's accuracy (eval mode) on the whole
  perturbed training set; the loop stops once its error is below
  ``universal_stop_error`` (0.01 in the published sample-wise command: accuracy
  above 99%).

Class-wise noise (``perturb_type classwise``, ``universal_perturbation``):
each image of a batch takes the per-image steps above from its class's noise,
and each class's noise becomes the clamped mean of its images' results
(published command: 1 step, stop at 90% accuracy, on a 20% subset of the
training set with shuffled batches; here on every image given, the noise
pass in data order).

The authors train on ``images + noise`` without a clamp (at most one step
outside [0, 1]); here the model always sees ``clip(x + delta, 0, 1)``.

**REM** (robust error-minimizing noise; Fu, He, Liu, Shen, Tao, "Robust
Unlearnable Examples: Protecting Data Against Adversarial Learning", ICLR
2022, Sec. 4 and Algorithm 1; authors' code
github.com/fshp971/robust-unlearnable-examples, generate_robust_em.py and
attacks/robust_workers.py) solves the min-min-max problem

  min_theta min_delta E_T max_{||rho||_inf <= rho_a} L(f_theta(T(x + delta) + rho), y)

with T a random crop (4 px zero padding) + horizontal flip, drawn per image.
What ``generate_robust_em.py`` computes, and what :class:`REMConfig` does:

* a source iteration draws a shuffled batch (drop last); every
  ``perturb_freq`` iterations its noise is found afresh
  (``RobustMinimaxPGDDefender.perturb``): from a uniform random start in the
  eps-ball, ``pgd_steps`` = 10 sign-descent steps of 1.6/255 on the sum over
  ``samp_num`` = 5 draws of T of the loss at the adversarial example of
  ``T(clamp(x + delta))``; the adversarial example (PGD ascent, 10 steps of
  0.8/255 at radius 4/255 from a uniform random start, projected onto the ball
  and [0, 1] after every step) is held fixed, so the noise's gradient is the
  loss gradient at the adversarial image carried back through T (Danskin), and
  zero where ``clamp(x + delta)`` clips (PyTorch's clamp). The noise is stored
  rounded to whole grey levels (int8);
* the model (eval mode for every PGD) then takes one SGD step in train mode
  on the adversarial example (same PGD) of ``T(x + noise)``; the learning
  rate is multiplied by 0.1 every 2000 of the 5000 iterations;
* after the last iteration every image's noise is generated once more with
  the final model (the authors' pass skips the shuffled loader's last partial
  batch; here every image gets it).

Both share this engine; :mod:`ntga.attacks.em` and :mod:`ntga.attacks.rem`
re-export it. What differs between them is carried by their config classes
(:class:`MinMinConfig` holds the fields they share), which the engine calls:
the source model's learning-rate schedule, the batch it trains on (REM:
transformed and adversarially perturbed), the loss the noise minimises (REM:
the expected adversarial loss over transformations) and the outer loop (EM
rounds with a stop rule, REM source iterations then a final noise pass).

Progress: each EM round and each REM report (every tenth of the iterations)
is logged on the ``ntga.attacks.minmin`` logger and shown in the tqdm postfix:
the round, the source model's accuracy on the perturbed training data and on
the clean images of a fixed subset (:data:`MONITOR_IMAGES` of them), and the
noise saturation (the fraction of noise entries at +-eps);
:class:`MinMinResult` returns them as per-round lists. Given a
``checkpoint_dir`` (``ntga poison`` passes ``OUT/.checkpoints``), a run saves
its state after every EM round and at every REM report and tenth of REM's
final noise pass, and a killed run resumes from there to the same output
(:class:`_Resume`).

Earlier definitions of this library stay reachable as named options:
``source_model="groupnorm-cnn"`` (with its ``width``), ``noise_init="uniform"``
(EM), ``clamp_gradient="stop"`` (EM), ``grad_clip=0`` (EM),
``batch_order="shuffle"`` (EM sample-wise), ``class_update="sign-sum"`` (EM
class-wise), ``adversary="clipped"`` and ``round_noise=False`` (REM).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from ntga import io
from ntga.attacks import _common, _source_model
from ntga.errors import ConfigError
from ntga.protocol import AttackConfig, RunContext

log = logging.getLogger("ntga.attacks.minmin")

#: The clean-data accuracy in the progress is measured on this many training
#: images (a fixed subset: every (N // this)-th image, so that data sorted by
#: class gives every class; eval mode).
MONITOR_IMAGES = 1000

_NOISE_INITS = ("zero", "uniform")
_CLAMP_GRADIENTS = ("through", "stop")


# ---------------------------------------------------------------------------
# Configs.


@dataclasses.dataclass(frozen=True, kw_only=True)
class MinMinConfig(AttackConfig):
  """The settings EM and REM share (a base class; use :class:`EMConfig` or :class:`REMConfig`).

  Attributes:
    eps: L_inf radius of the noise in [0, 1] units; both papers: 8/255.
    noise_steps: sign-gradient steps per noise update.
    noise_step_size: the step.
    noise_init: where the noise's descent starts: ``"zero"`` or
      ``"uniform"`` in the eps-ball (EM: once, before the first round; REM:
      at every regeneration).
    clamp_gradient: ``"through"``: the gradient is taken with respect to the
      clamped image ``clip(x + delta, 0, 1)`` and the step applied to it (EM's
      ``min_min_attack``), so clipped pixels move too; ``"stop"``: the
      gradient of ``L(clip(x + delta))`` with respect to ``delta``, zero
      where a pixel is clipped (REM's code, PyTorch's clamp).
    batch_size: source-model minibatch, and the batch of a noise update.
    learning_rate: the source model's SGD learning rate; both papers: 0.1.
    momentum: SGD momentum; both papers: 0.9.
    weight_decay: coupled L2 weight decay; both papers: 5e-4.
    grad_clip: clip the source model's gradient to this global L2 norm
      before each step (EM's code: 5.0); 0: no clipping (REM's code).
    source_model: a model of :mod:`ntga.victims.models` (both papers:
      ``"resnet18"``), BatchNorm in train mode for the SGD steps and in eval
      mode everywhere else, or ``"groupnorm-cnn"``, this library's earlier
      small GroupNorm CNN (see ``attacks/_source_model.py``).
    width: first-layer channels of ``"groupnorm-cnn"`` (None: 32); must be
      None for every other source model.

  Example:
    >>> EMConfig(source_model="groupnorm-cnn", width=16).noise_init
    'zero'
    >>> REMConfig(width=16)  # ConfigError: width is the GroupNorm CNN's only
  """

  eps: float = 8 / 255
  noise_steps: int = 20
  noise_step_size: float = 0.8 / 255
  noise_init: str = "zero"
  clamp_gradient: str = "through"
  batch_size: int = 512
  learning_rate: float = 0.1
  momentum: float = 0.9
  weight_decay: float = 5e-4
  grad_clip: float = 0.0
  source_model: str = "resnet18"
  width: int | None = None

  def __post_init__(self):
    self.validate()

  def validate(self):
    """Raises ConfigError for out-of-range or inapplicable settings."""
    _common.check_types(self)
    _common.check_range(self, "eps", 0.0, 1.0, lo_open=True)
    _common.check_range(self, "noise_steps", 1, 1 << 20)
    _common.check_range(self, "noise_step_size", 0.0, 1.0, lo_open=True)
    _common.check_choice(self, "noise_init", _NOISE_INITS)
    _common.check_choice(self, "clamp_gradient", _CLAMP_GRADIENTS)
    _common.check_range(self, "batch_size", 1, 1 << 20)
    _common.check_range(self, "learning_rate", 0.0, 100.0, lo_open=True)
    _common.check_range(self, "momentum", 0.0, 1.0, hi_open=True)
    _common.check_range(self, "weight_decay", 0.0, 1.0)
    _common.check_range(self, "grad_clip", 0.0, 1e9)
    if isinstance(self.width, bool) or not isinstance(self.width, (int, type(None))):
      raise ConfigError(f"{type(self).__name__}.width={self.width!r} must be an int or None")
    _source_model.check_name(self.source_model, self.width, type(self).__name__)

  # ---- the engine's hooks, overridden by EM and REM ----

  _label: ClassVar[str] = "minmin"

  def _noise_objective(self, net, params, rest, xd, yb, key):
    """The loss the noise descends: the source model's eval-mode loss on ``xd``."""
    del key
    return _source_model.loss(net, params, rest, xd, yb)

  def _source_batch(self, net, params, rest, xb, yb, key):
    """The batch the source model trains on: the perturbed batch as it is."""
    del net, params, rest, yb, key
    return xb

  def _learning_rate(self):
    """The source model's SGD learning rate (constant)."""
    return self.learning_rate

  def _compiled(self):
    """This config with the settings only the host loop reads set to fixed
    values: the static argument of the compiled steps, so that configs that
    differ only there share compilations."""
    return dataclasses.replace(self, noise_init="zero")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EMConfig(MinMinConfig):
  """Settings of error-minimizing noise (Huang et al., ICLR 2021; CIFAR-10 defaults).

  The defaults are the authors' published sample-wise CIFAR-10 command and
  code (github.com/HanxunH/Unlearnable-Examples: README, perturbation.py,
  configs/cifar10/resnet18.yaml): eps 8/255, 20 steps of 0.8/255 from zero
  noise with the gradient taken at the clamped image, M = 10 source steps per
  round on batches of 512 walked in one fixed order, stop once the accuracy on the
  perturbed training data exceeds 99%, a ResNet-18 source model trained with
  SGD lr 0.1, momentum 0.9, weight decay 5e-4 and gradients clipped to norm
  5. For class-wise noise the published command uses 1 step per batch and
  stops at 90% accuracy: ``EMConfig(mode="class", noise_steps=1,
  stop_accuracy=0.9)``. The paper's settings take GPU-hours on CIFAR-10;
  :meth:`cpu` is the preset for a CPU. Fields shared with REM: see
  :class:`MinMinConfig`.

  Attributes:
    mode: "sample" (one noise per image) or "class" (one per class).
    train_steps: source-model SGD steps per round (M); paper: 10.
    stop_accuracy: stop once the source model's accuracy on the perturbed
      training data exceeds this; paper: 0.99 (sample-wise).
    max_rounds: safeguard on rounds if accuracy never exceeds the threshold
      (not in the paper).
    batch_order: order of the source model's training batches: ``"fixed"``
      (one seeded permutation, walked in order and carried over between
      rounds: the authors' sample-wise loader walks CIFAR-10's stored order,
      itself shuffled, without reshuffling; this library's loaders return
      data sorted by class, hence the permutation) or ``"shuffle"`` (a new
      permutation each epoch, last partial batch dropped: their class-wise
      loader). None: ``"fixed"`` for sample-wise, ``"shuffle"`` for
      class-wise noise.
    class_update: class-wise only (None: ``"mean"``): ``"mean"``, each
      class's noise becomes the clamped mean of its batch images' per-image
      updates (the authors' ``universal_perturbation``); ``"sign-sum"``, one
      sign step on the gradient summed over the class's images (this
      library's earlier rule).
  """

  mode: str = "sample"
  train_steps: int = 10
  stop_accuracy: float = 0.99
  max_rounds: int = 1000
  grad_clip: float = 5.0
  batch_order: str | None = None
  class_update: str | None = None

  preset_names: ClassVar[tuple[str, ...]] = ("paper", "cpu")

  def validate(self):
    """Raises ConfigError for out-of-range or inapplicable settings."""
    super().validate()
    _common.check_choice(self, "mode", ("sample", "class"))
    _common.check_range(self, "train_steps", 1, 1 << 30)
    _common.check_range(self, "stop_accuracy", 0.0, 1.0)
    _common.check_range(self, "max_rounds", 1, 1 << 30)
    if self.batch_order is not None:
      _common.check_choice(self, "batch_order", ("fixed", "shuffle"))
    if self.class_update is not None:
      if self.mode != "class":
        raise ConfigError("EMConfig.class_update applies only to mode='class'; drop it")
      _common.check_choice(self, "class_update", ("mean", "sign-sum"))

  @classmethod
  def cpu(cls, **overrides) -> "EMConfig":
    """The preset for a CPU: the authors' algorithm with a smaller source model.

    Everything is the paper's and the authors' code's (zero start, gradient at
    the clamped image, BatchNorm in train mode for the SGD steps and eval mode
    for the noise, M = 10 steps per round on batches of 512 in one fixed
    order, gradient clipping at norm 5, SGD lr 0.1, stop above 99% accuracy on
    the perturbed data) except:

    * the source model is the ``fast`` victim's architecture
      (``victims/_models/_fast.py``, its whitening fitted on the clean
      training images) instead of a ResNet-18, about 1/10 of its cost;
    * 10 noise steps of 1.6/255 per round instead of 20 of 0.8/255: the same
      reach per round (2 eps), half the cost; the noise carries over between
      rounds, as in the paper;
    * at most 10 rounds.

    Cost (measured here on CIFAR-10 images with 2 cores shared with other
    jobs; CPU time of the whole process): a noise step costs ~4.7 ms of CPU
    per image, a training step ~6.3 ms per image, an evaluation ~1.3 ms, so
    a round on N images costs ~(32 + 0.048 N) CPU-seconds: ~8.6 CPU-minutes
    for N = 10,000 and at most ~86 CPU-minutes for the 10 rounds, about 40
    minutes of wall time on 2 idle cores (wall time ~ CPU time / 2.2 there:
    a 50,000-image epoch of the ``fast`` victim costs ~5.3 CPU-minutes here
    and takes 2-2.5 minutes per ``victims/_models/_fast.py``). On 1,000
    images a round of 5 steps took 58 CPU-seconds (the formula: 56).

    What it does to the ``fast`` victim: ``seed_methods_cifar`` in
    ``benchmarks/RESULTS.md``.

    With ``mode="class"`` it uses the authors' class-wise values instead: 1
    step of 0.8/255 per batch, stop at 90% accuracy.

    Example:
      >>> EMConfig.cpu(mode="class").noise_steps
      1
    """
    base = dict(noise_steps=10, noise_step_size=1.6 / 255, max_rounds=10, source_model="fast")
    if overrides.get("mode") == "class":
      base.update(noise_steps=1, noise_step_size=0.8 / 255, stop_accuracy=0.9)
    return cls(**{**base, **overrides})

  # ---- the engine's hooks (EM: plain min-min) ----

  _label: ClassVar[str] = "em"

  def _iterations(self) -> int:
    """Length of the outer loop: at most ``max_rounds`` train/noise rounds."""
    return self.max_rounds

  def _batch_order(self) -> str:
    """``batch_order``, or the authors' order for the mode."""
    return self.batch_order or ("fixed" if self.mode == "sample" else "shuffle")

  def _class_update(self) -> str:
    """``class_update``, or the authors' rule."""
    return self.class_update or "mean"

  def _compiled(self):
    """See :meth:`MinMinConfig._compiled`."""
    return dataclasses.replace(super()._compiled(), mode="sample", train_steps=1,
                               stop_accuracy=0.0, max_rounds=1, batch_order=None,
                               class_update=None)

  def _run(self, key, xf, y, source, bar, resume) -> "_Outcome":
    """EM rounds until the stop accuracy (see :func:`_run_em`)."""
    return _run_em(key, xf, y, self, source, bar, resume)


@dataclasses.dataclass(frozen=True, kw_only=True)
class REMConfig(MinMinConfig):
  """Settings of robust error-minimizing noise (Fu et al., ICLR 2022; CIFAR-10 defaults).

  The defaults are the authors' CIFAR-10 generation script
  (github.com/fshp971/robust-unlearnable-examples, scripts/cifar10/gen_rem.sh):
  eps 8/255, noise PGD 10 steps of 1.6/255 from a uniform random start,
  adversarial training radius rho_a 4/255 with PGD 10 steps of 0.8/255 from a
  random start, 5 EOT samples (crop with 4 px zero padding + horizontal flip),
  5000 source iterations of batch 128, SGD lr 0.1 times 0.1 every 2000
  iterations, momentum 0.9, weight decay 5e-4, no gradient clipping, the
  minibatch's noise regenerated at every iteration and stored in whole grey
  levels, a ResNet-18 source model. Noise is sample-wise. These take many
  GPU-hours; :meth:`cpu` is the preset for a CPU. Fields shared with EM: see
  :class:`MinMinConfig`.

  Attributes:
    rho_a: adversarial-training radius of the source model, in [0, eps);
      paper: 4/255.
    adv_steps: PGD steps of the inner maximisation; paper: 10.
    adv_step_size: inner PGD step; paper: rho_a/5 = 0.8/255.
    adversary: ``"projected"``: the adversarial image is projected onto the
      rho_a-ball and [0, 1] after every step, and the noise's gradient is the
      loss gradient at it (the authors' code); ``"clipped"``: the
      perturbation is kept in the ball only, the model sees ``clip(x + r, 0,
      1)`` and no gradient passes where that clips (this library's earlier
      rule).
    eot_samples: transformations sampled per noise gradient (EOT); paper: 5.
    perturb_freq: regenerate the current minibatch's noise every this many
      source iterations; paper: 1.
    total_train_steps: source-model iterations; paper: 5000.
    lr_decay_steps: multiply the learning rate by ``lr_decay_rate`` every this
      many iterations; paper: 2000.
    lr_decay_rate: paper: 0.1.
    crop_pad: zero padding of the random-crop transformation; paper: 4.
    flip: random horizontal flips in the transformation; paper: True.
    round_noise: store the noise rounded to whole grey levels, as the
      authors' int8 table does (False: float noise, the earlier rule).
  """

  noise_steps: int = 10
  noise_step_size: float = 1.6 / 255
  noise_init: str = "uniform"
  clamp_gradient: str = "stop"
  batch_size: int = 128
  rho_a: float = 4 / 255
  adv_steps: int = 10
  adv_step_size: float = 0.8 / 255
  adversary: str = "projected"
  eot_samples: int = 5
  perturb_freq: int = 1
  total_train_steps: int = 5000
  lr_decay_steps: int = 2000
  lr_decay_rate: float = 0.1
  crop_pad: int = 4
  flip: bool = True
  round_noise: bool = True

  preset_names: ClassVar[tuple[str, ...]] = ("paper", "cpu")

  def validate(self):
    """Raises ConfigError for out-of-range settings."""
    super().validate()
    _common.check_range(self, "rho_a", 0.0, self.eps, hi_open=True)
    _common.check_range(self, "adv_steps", 0, 1 << 20)
    _common.check_range(self, "adv_step_size", 0.0, 1.0)
    _common.check_choice(self, "adversary", ("projected", "clipped"))
    _common.check_range(self, "eot_samples", 1, 1 << 10)
    _common.check_range(self, "perturb_freq", 1, 1 << 30)
    _common.check_range(self, "total_train_steps", 1, 1 << 30)
    _common.check_range(self, "lr_decay_steps", 1, 1 << 30)
    _common.check_range(self, "lr_decay_rate", 0.0, 1.0, lo_open=True)
    _common.check_range(self, "crop_pad", 0, 1 << 10)

  @classmethod
  def cpu(cls, **overrides) -> "REMConfig":
    """The preset for a CPU: the authors' algorithm, smaller and shorter.

    The same algorithm as the paper (noise regenerated for every minibatch at
    every iteration from a random start, EOT over crop + flip, the projected
    PGD adversary at rho_a = 4/255, BatchNorm in train mode for the steps and
    eval mode for every PGD, SGD lr 0.1 decayed by 0.1 at 40% and 80% of the
    iterations, noise in whole grey levels, eps 8/255), with less work:

    * the ``fast`` victim's architecture as source model (ResNet-18 in the
      paper, ~10x its cost);
    * noise: 5 steps of 3.2/255 (paper: 10 of 1.6/255, the same reach of
      2 eps), 2 EOT samples (paper: 5);
    * adversary: 4 steps of 2/255 (paper: 10 of 0.8/255, the same reach of
      2 rho_a);
    * 400 source iterations of batch 128, the learning rate decayed at 160
      and 320 (paper: 5000, decayed at 2000 and 4000): 5 epochs of a
      10,000-image set (paper: 12.8 epochs of CIFAR-10).

    Per image of a batch, a regeneration is 5 x 2 x (4 + 1) = 50
    forward-backward passes (paper: 550; this library's earlier preset: 9)
    and a training step 5 (paper: 11; earlier: 3); over the run (50 + 5) x
    400 = 22,000 per batch position, ~18x the earlier preset (160
    iterations, regeneration every 2nd: 1,200) and ~1/130 of the paper (2.8
    million).

    Cost (measured here on CIFAR-10 with 2 cores shared with other jobs, CPU
    time): a batch's regeneration takes ~23 CPU-seconds (179 ms per image)
    and a training step ~2.7 (21 ms per image), so the 400 iterations take
    ~171 CPU-minutes and the final pass over 10,000 images ~30 more: ~200
    CPU-minutes, about 1.5 hours of wall time on 2 idle cores.

    What it does to the ``fast`` victim: ``seed_methods_cifar`` in
    ``benchmarks/RESULTS.md``.

    Example:
      >>> REMConfig.cpu().total_train_steps, REMConfig.cpu(eot_samples=5).eot_samples
      (400, 5)
    """
    base = dict(source_model="fast", noise_steps=5, noise_step_size=3.2 / 255, eot_samples=2,
                adv_steps=4, adv_step_size=2 / 255, total_train_steps=400,
                lr_decay_steps=160)
    return cls(**{**base, **overrides})

  # ---- the engine's hooks (REM: min-min-max with EOT) ----

  _label: ClassVar[str] = "rem"

  def _iterations(self) -> int:
    """Length of the outer loop: ``total_train_steps`` source iterations."""
    return self.total_train_steps

  def _compiled(self):
    """See :meth:`MinMinConfig._compiled`."""
    return dataclasses.replace(super()._compiled(), total_train_steps=1, perturb_freq=1,
                               round_noise=True)

  def _learning_rate(self):
    """The source model's SGD learning rate, decayed in steps."""
    return optax.exponential_decay(self.learning_rate, self.lr_decay_steps,
                                   self.lr_decay_rate, staircase=True)

  def _source_batch(self, net, params, rest, xb, yb, key):
    """Adversarial training: the adversarial example of the transformed batch."""
    k1, k2 = jax.random.split(key)
    xt = _augment(k1, xb, self)
    return _adversarial_image(net, self, params, rest, xt, yb, k2)

  def _noise_objective(self, net, params, rest, xd, yb, key):
    """Mean over ``eot_samples`` transformations of the loss at the adversarial
    example (held fixed: Danskin's gradient)."""

    def one(k):
      k1, k2 = jax.random.split(k)
      xt = _augment(k1, xd, self)
      adv = _adversarial_image(net, self, params, rest, xt, yb, k2)
      if self.adversary == "projected":
        x_in = xt + jax.lax.stop_gradient(adv - xt)
      else:
        x_in = adv
      return _source_model.loss(net, params, rest, x_in, yb)

    keys = jax.random.split(key, self.eot_samples)
    return jnp.mean(jax.lax.map(one, keys))

  def _run(self, key, xf, y, source, bar, resume) -> "_Outcome":
    """Source iterations, then the final noise (see :func:`_run_rem`)."""
    return _run_rem(key, xf, y, self, source, bar, resume)


# ---------------------------------------------------------------------------
# Results.


class MinMinResult(NamedTuple):
  """What :func:`generate` returns.

  The per-round lists have one entry per EM round; for REM one per report
  (every tenth of the iterations) and a last one after the final noise pass.

  Attributes:
    x: uint8 poisoned images.
    delta: float32 noise table (N or K, H, W, C), before rounding.
    source: the trained source model (:class:`ntga.attacks._source_model.Source`;
      for :func:`source_loss`).
    accuracy: the source model's accuracy (eval mode) on the perturbed
      training data (REM: with the noise found so far).
    loss: its mean cross-entropy there.
    clean_accuracy: its accuracy on the clean images of a fixed subset of
      :data:`MONITOR_IMAGES` training images (every (N // 1000)-th).
    saturation: the fraction of noise entries at +-eps (REM: of the images
      whose noise has been generated).
    rounds: EM rounds run (REM: source iterations run).
    stopped: EM reached ``stop_accuracy`` (REM: always False).
  """

  x: np.ndarray
  delta: np.ndarray
  source: _source_model.Source
  accuracy: list
  loss: list
  clean_accuracy: list
  saturation: list
  rounds: int
  stopped: bool


class _Outcome(NamedTuple):
  """What a config's outer loop returns to :func:`generate`."""

  table: np.ndarray
  delta_rows: np.ndarray
  source: _source_model.Source
  history: dict
  rounds: int
  stopped: bool


# ---------------------------------------------------------------------------
# The compiled pieces.


def _optimizer(cfg):
  parts = [optax.clip_by_global_norm(cfg.grad_clip)] if cfg.grad_clip else []
  return optax.chain(*parts, optax.add_decayed_weights(cfg.weight_decay),
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


def _adversarial_image(net, cfg, params, rest, x, y, key):
  """The PGD (ascent) adversarial example of ``x`` at radius rho_a (eval mode).

  ``"projected"`` (authors' ``PGDAttacker``): from ``x`` plus a uniform
  random start, sign steps, each followed by projection onto the ball around
  ``x`` and onto [0, 1]; returned gradient-stopped. ``"clipped"`` (earlier
  rule): the perturbation ``r`` (gradient-stopped) is kept in the ball only
  and the result is ``clip(x + r, 0, 1)``, differentiable in ``x``.
  """
  xs = jax.lax.stop_gradient(x)
  r0 = jax.random.uniform(key, x.shape, jnp.float32, -cfg.rho_a, cfg.rho_a)
  if cfg.adversary == "projected":

    def body(_, adv):
      g = jax.grad(lambda a: _source_model.loss(net, params, rest, a, y))(adv)
      adv = jnp.clip(adv + cfg.adv_step_size * jnp.sign(g), xs - cfg.rho_a, xs + cfg.rho_a)
      return jnp.clip(adv, 0, 1)

    adv = jax.lax.fori_loop(0, cfg.adv_steps, body, jnp.clip(xs + r0, 0, 1))
    return jax.lax.stop_gradient(adv)

  def body_clipped(_, r):
    g = jax.grad(lambda r: _source_model.loss(net, params, rest, jnp.clip(xs + r, 0, 1), y))(r)
    return jnp.clip(r + cfg.adv_step_size * jnp.sign(g), -cfg.rho_a, cfg.rho_a)

  r = jax.lax.stop_gradient(jax.lax.fori_loop(0, cfg.adv_steps, body_clipped, r0))
  return jnp.clip(x + r, 0, 1)  # (the gradient reaches x where the clip does not bind)


@functools.partial(jax.jit, static_argnames=("net", "cfg"))
def _train_step(net, cfg, params, rest, opt_state, xb, yb, key):
  """One SGD step in train mode (REM: on the adversarial, transformed batch).

  Returns the new params, rest and optimizer state, and the batch accuracy.
  """
  xb = cfg._source_batch(net, params, rest, xb, yb, key)  # pylint: disable=protected-access

  def loss(p):
    lg, new_rest = _source_model.train_logits(net, p, rest, xb)
    return optax.softmax_cross_entropy_with_integer_labels(lg, yb).mean(), (lg, new_rest)

  (_, (lg, new_rest)), grads = jax.value_and_grad(loss, has_aux=True)(params)
  updates, opt_state = _optimizer(cfg).update(grads, opt_state, params)
  acc = jnp.mean(jnp.argmax(lg, -1) == yb)
  return optax.apply_updates(params, updates), new_rest, opt_state, acc


def _through_clip(z):
  """``clip(z, 0, 1)`` whose gradient is the identity (straight through the clamp)."""
  return z + jax.lax.stop_gradient(jnp.clip(z, 0, 1) - z)


@functools.partial(jax.jit, static_argnames=("net", "cfg", "per_image"))
def _noise_update(net, cfg, params, rest, table, xb, yb, idx, key, per_image):
  """``noise_steps`` sign-gradient *descent* steps on the noise rows a batch uses.

  Args:
    table: noise rows; image ``j`` of the batch uses ``table[idx[j]]``.
    per_image: each image has its own row (``idx`` is ``arange``); with
      ``clamp_gradient="through"`` each step then starts from what the clamp
      leaves of the noise, as the authors' ``min_min_attack`` does.
  """
  # pylint: disable=protected-access
  def body(i, table):
    k = jax.random.fold_in(key, i)
    if cfg.clamp_gradient == "stop":
      obj = lambda t: cfg._noise_objective(net, params, rest, jnp.clip(xb + t[idx], 0, 1), yb, k)
    elif per_image:
      table = jnp.clip(xb + table, 0, 1) - xb
      obj = lambda t: cfg._noise_objective(net, params, rest, xb + t[idx], yb, k)
    else:
      obj = lambda t: cfg._noise_objective(net, params, rest, _through_clip(xb + t[idx]), yb, k)
    g = jax.grad(obj)(table)
    return jnp.clip(table - cfg.noise_step_size * jnp.sign(g), -cfg.eps, cfg.eps)

  return jax.lax.fori_loop(0, cfg.noise_steps, body, table)


@functools.partial(jax.jit, static_argnames=("net",))
def _eval_batch(net, params, rest, xb, yb):
  """Per-example eval-mode cross-entropy and correctness of the source model."""
  lg = _source_model.eval_logits(net, params, rest, xb)
  return (optax.softmax_cross_entropy_with_integer_labels(lg, yb),
          jnp.argmax(lg, -1) == yb)


# ---------------------------------------------------------------------------
# Host-side loops.


def _batches(n: int, bs: int):
  """Index batches covering 0..n-1 in order, the last one wrapped to full size."""
  for s in range(0, n, bs):
    yield np.arange(s, s + bs) % n, min(bs, n - s)


def _evaluate(source, xf, y, rows, bs):
  """Mean loss and accuracy of the source model on ``clip(xf + rows, 0, 1)``.

  ``rows`` is a noise array broadcastable to one batch or a function of the
  batch indices.
  """
  net, params, rest = source
  loss, correct = 0.0, 0
  for idx, valid in _batches(len(xf), bs):
    noise = rows(idx) if callable(rows) else rows
    xb = np.clip(xf[idx] + noise, 0.0, 1.0)
    lb, cb = _eval_batch(net, params, rest, xb, y[idx])
    loss += float(np.asarray(lb)[:valid].sum())
    correct += int(np.asarray(cb)[:valid].sum())
  return loss / len(xf), correct / len(xf)


def _saturation(table: np.ndarray, eps: float) -> float:
  """Fraction of noise entries at +-eps (within float32 rounding)."""
  if table.size == 0:
    return 0.0
  return float(np.mean(np.abs(table) >= np.float32(eps) * (1 - 1e-6)))


def source_loss(source: _source_model.Source, x, y, batch_size: int = 512) -> float:
  """Mean eval-mode cross-entropy of a source model on uint8 images ``x`` (labels ``y``).

  Args:
    source: ``MinMinResult.source``.
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    batch_size: evaluation batch.

  Returns:
    The mean cross-entropy.

  Example:
    >>> r = generate(key, x, y, EMConfig.cpu())
    >>> source_loss(r.source, r.x, y) < source_loss(r.source, x, y)
  """
  x, y = _common.check_inputs(x, y)
  xf = x.astype(np.float32) / 255.0
  zero = np.zeros((1,) + x.shape[1:], np.float32)
  loss, _ = _evaluate(source, xf, y, zero, min(batch_size, len(x)))
  return loss


class _Batcher:
  """Yields training minibatch indices.

  ``"shuffle"``: seeded per-epoch permutations (``fold_in`` by epoch), the
  last partial batch dropped. ``"fixed"``: one seeded permutation drawn once
  and walked in order, pass after pass, the last batch of a pass wrapped to
  full size with the first images of the order.
  """

  def __init__(self, key, n, bs, order="shuffle"):
    self.key, self.n, self.bs, self.order = key, n, bs, order
    self.step, self.perm = 0, None
    if order == "fixed":
      self.perm = np.asarray(jax.random.permutation(key, n))

  def seek(self, step: int) -> None:
    """Continues as if :meth:`next` had been called ``step`` times."""
    self.step = step
    if self.order == "shuffle" and step % (self.n // self.bs):
      epoch = step // (self.n // self.bs)
      self.perm = np.asarray(jax.random.permutation(jax.random.fold_in(self.key, epoch), self.n))

  def next(self) -> np.ndarray:
    if self.order == "fixed":
      pos = self.step % -(-self.n // self.bs)
      self.step += 1
      return self.perm[np.arange(pos * self.bs, (pos + 1) * self.bs) % self.n]
    epoch, pos = divmod(self.step, self.n // self.bs)
    if pos == 0:
      self.perm = np.asarray(jax.random.permutation(jax.random.fold_in(self.key, epoch), self.n))
    self.step += 1
    return self.perm[pos * self.bs:(pos + 1) * self.bs]


def _monitor_rows(n: int) -> np.ndarray:
  """The fixed subset of training rows whose clean accuracy the progress shows."""
  return np.arange(0, n, max(1, n // MONITOR_IMAGES))[:MONITOR_IMAGES]


class _Monitor:
  """Per-round progress: accuracies, loss and saturation, logged and kept."""

  def __init__(self, label, xf, y, bs, bar):
    self.label, self.bar, self.bs = label, bar, bs
    pick = _monitor_rows(len(xf))
    self.xc, self.yc = xf[pick], y[pick]
    self.history = {"accuracy": [], "loss": [], "clean_accuracy": [], "saturation": []}

  def record(self, what, source, loss, acc, saturation):
    _, clean = _evaluate(source, self.xc, self.yc, np.zeros((1,) + self.xc.shape[1:], np.float32),
                         min(self.bs, len(self.xc)))
    for k, v in (("accuracy", acc), ("loss", loss), ("clean_accuracy", clean),
                 ("saturation", saturation)):
      self.history[k].append(v)
    self.bar.set_postfix_str(f"{what}, acc {acc:.3f}, clean {clean:.3f}, sat {saturation:.3f}")
    log.info("%s %s: source accuracy on perturbed data %.4f, on clean data %.4f "
             "(%d images), noise saturation %.4f, loss %.4f",
             self.label, what, acc, clean, len(self.xc), saturation, loss)

  def state(self) -> dict[str, np.ndarray]:
    """The history so far, as arrays for :class:`_Resume`."""
    return {f"history_{k}": np.asarray(v, np.float64) for k, v in self.history.items()}

  def restore(self, values: dict[str, np.ndarray]) -> None:
    self.history = {k: [float(v) for v in values[f"history_{k}"]] for k in self.history}


class _Resume:
  """A run's state in ``checkpoint_dir/minmin_state.npz``, so that a killed run resumes.

  Saved (atomically) after every EM round, at every REM report (a tenth of
  the iterations) and every tenth of REM's final noise pass: the noise, the
  source model's parameters, statistics and optimizer state, the counters
  and the progress history. Every random draw of a run is keyed by its
  step's index (``fold_in``), so a resumed run computes what an
  uninterrupted one does, bit for bit. The folder is claimed for one run
  (:func:`ntga.io.claim_checkpoints`: config, key, images and labels).
  """

  def __init__(self, folder, fingerprint: str):
    self.path = io.claim_checkpoints(folder, fingerprint) / "minmin_state.npz"

  def save(self, values: dict, trees) -> None:
    """Writes ``values`` (name -> array) and the arrays of the pytree ``trees``."""
    packed = {f"v_{k}": np.asarray(v) for k, v in values.items()}
    for i, leaf in enumerate(jax.tree_util.tree_leaves(trees)):
      if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
      packed[f"t_{i}"] = np.asarray(leaf)
    io.atomic_write(self.path, lambda f: np.savez(f, **packed))

  def load(self, trees):
    """``(values, trees)`` as saved, the pytree rebuilt in the structure of
    ``trees``; None if nothing was saved."""
    if not self.path.exists():
      return None
    leaves, treedef = jax.tree_util.tree_flatten(trees)
    with np.load(self.path) as z:
      values = {k[2:]: z[k] for k in z.files if k.startswith("v_")}
      restored = []
      for i, leaf in enumerate(leaves):
        a = z[f"t_{i}"]
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
          restored.append(jax.random.wrap_key_data(a, impl=jax.random.key_impl(leaf)))
        else:
          restored.append(jnp.asarray(a, leaf.dtype))
    return values, jax.tree_util.tree_unflatten(treedef, restored)


def _init_noise(key, shape, cfg):
  if cfg.noise_init == "uniform":
    return np.array(jax.random.uniform(key, shape, jnp.float32, -cfg.eps, cfg.eps))
  return np.zeros(shape, np.float32)


def _em_noise_pass(table, source, xf, y, cfg, key):
  """One round's noise update over the whole training set, batch by batch, in order."""
  net, params, rest = source
  kcfg = cfg._compiled()  # pylint: disable=protected-access
  bs = min(cfg.batch_size, len(xf))
  for b, (idx, valid) in enumerate(_batches(len(xf), bs)):
    kb = jax.random.fold_in(key, b)
    yb = y[idx]
    if cfg.mode == "sample":
      sub = _noise_update(net, kcfg, params, rest, table[idx], xf[idx], yb,
                          np.arange(len(idx)), kb, per_image=True)
      table[idx[:valid]] = np.asarray(sub)[:valid]
    elif cfg._class_update() == "sign-sum":  # pylint: disable=protected-access
      table = np.asarray(_noise_update(net, kcfg, params, rest, table, xf[idx], yb, yb, kb,
                                       per_image=False))
    else:
      rows = np.asarray(_noise_update(net, kcfg, params, rest, table[yb], xf[idx], yb,
                                      np.arange(len(idx)), kb, per_image=True))
      rows, yv = rows[:valid], yb[:valid]
      for k in np.unique(yv):
        table[k] = np.clip(rows[yv == k].mean(0), -cfg.eps, cfg.eps)
  return table


def _run_em(key, xf, y, cfg, source, bar, resume) -> _Outcome:
  """EM rounds until the accuracy on the perturbed data exceeds ``stop_accuracy``."""
  n, k = len(xf), int(y.max()) + 1
  classwise = cfg.mode == "class"
  table = _init_noise(jax.random.fold_in(key, 1), ((k,) if classwise else (n,)) + xf.shape[1:],
                      cfg)
  net, params, rest = source
  opt_state = _optimizer(cfg).init(params)
  bs = min(cfg.batch_size, n)
  batcher = _Batcher(jax.random.fold_in(key, 2), n, bs, cfg._batch_order())  # pylint: disable=protected-access
  k_noise, k_step = jax.random.fold_in(key, 3), jax.random.fold_in(key, 4)
  monitor = _Monitor("em", xf, y, bs, bar)
  kcfg = cfg._compiled()  # pylint: disable=protected-access
  step, start, stopped = 0, 0, False
  saved = resume.load((params, rest, opt_state)) if resume else None
  if saved is not None:
    values, (params, rest, opt_state) = saved
    table, step, start = values["table"], int(values["step"]), int(values["round"])
    stopped = bool(values["stopped"])
    batcher.seek(int(values["batcher"]))
    monitor.restore(values)
    bar.update(start)
    log.info("em resumed after round %d", start)
  rows_of = (lambda idx: table[y[idx]]) if classwise else (lambda idx: table[idx])
  for r in range(start, 0 if stopped else cfg.max_rounds):
    for _ in range(cfg.train_steps):
      idx = batcher.next()
      xb = np.clip(xf[idx] + rows_of(idx), 0.0, 1.0)
      params, rest, opt_state, _ = _train_step(net, kcfg, params, rest, opt_state, xb, y[idx],
                                               jax.random.fold_in(k_step, step))
      step += 1
    source = _source_model.Source(net, params, rest)
    table = _em_noise_pass(table, source, xf, y, cfg, jax.random.fold_in(k_noise, r))
    loss, acc = _evaluate(source, xf, y, rows_of, bs)
    monitor.record(f"round {r + 1}", source, loss, acc, _saturation(table, cfg.eps))
    stopped = acc > cfg.stop_accuracy
    if resume:
      resume.save({"table": table, "step": step, "round": r + 1, "stopped": stopped,
                   "batcher": batcher.step, **monitor.state()}, (params, rest, opt_state))
    bar.update(1)
    if stopped:
      log.info("em stopped after %d rounds (accuracy %.4f > %.4f)", r + 1, acc,
               cfg.stop_accuracy)
      break
  if not stopped:
    log.info("em ran all %d rounds without reaching accuracy %.4f", cfg.max_rounds,
             cfg.stop_accuracy)
  rounds = len(monitor.history["accuracy"])
  return _Outcome(table, table[y] if classwise else table,
                  _source_model.Source(net, params, rest), monitor.history, rounds, stopped)


def _rem_noise(source, cfg, xf, y, idx, key):
  """Fresh REM noise for the images ``idx`` (from ``noise_init``), stored rounded if asked."""
  net, params, rest = source
  start = _init_noise(jax.random.fold_in(key, 0), xf[idx].shape, cfg)
  d = np.asarray(_noise_update(net, cfg._compiled(), params, rest, start, xf[idx], y[idx],  # pylint: disable=protected-access
                               np.arange(len(idx)), jax.random.fold_in(key, 1), per_image=True))
  return np.round(d * 255) / 255 if cfg.round_noise else d


def _run_rem(key, xf, y, cfg, source, bar, resume) -> _Outcome:
  """REM source iterations, then the final noise pass."""
  n = len(xf)
  table = np.zeros_like(xf)
  seen = np.zeros(n, bool)
  net, params, rest = source
  opt_state = _optimizer(cfg).init(params)
  bs = min(cfg.batch_size, n)
  batcher = _Batcher(jax.random.fold_in(key, 2), n, bs)
  k_noise, k_step, k_final = (jax.random.fold_in(key, i) for i in (3, 4, 5))
  report = max(1, cfg.total_train_steps // 10)
  final_batches = list(_batches(n, bs))
  final_report = max(1, len(final_batches) // 10)
  monitor = _Monitor("rem", xf, y, bs, bar)
  kcfg = cfg._compiled()  # pylint: disable=protected-access
  recent, start, final_done = [], 0, 0
  saved = resume.load((params, rest, opt_state)) if resume else None
  if saved is not None:
    values, (params, rest, opt_state) = saved
    table, seen = values["table"], values["seen"]
    start, final_done = int(values["step"]), int(values["final_batches"])
    batcher.seek(start)
    monitor.restore(values)
    bar.update(start)
    log.info("rem resumed at iteration %d, final pass batch %d", start, final_done)

  def save(step, final):  # only where ``recent`` is empty: right after a report
    if resume:
      resume.save({"table": table, "seen": seen, "step": step, "final_batches": final,
                   **monitor.state()}, (params, rest, opt_state))

  for step in range(start, cfg.total_train_steps):
    idx = batcher.next()
    if (step + 1) % cfg.perturb_freq == 0:
      table[idx] = _rem_noise(_source_model.Source(net, params, rest), cfg, xf, y, idx,
                              jax.random.fold_in(k_noise, step))
      seen[idx] = True
    xb = np.clip(xf[idx] + table[idx], 0.0, 1.0)
    params, rest, opt_state, acc = _train_step(net, kcfg, params, rest, opt_state, xb, y[idx],
                                               jax.random.fold_in(k_step, step))
    recent.append(acc)
    bar.update(1)
    if (step + 1) % report == 0:
      source = _source_model.Source(net, params, rest)
      adv_acc = float(np.mean(np.asarray(recent)))
      recent = []
      loss, acc_p = _evaluate(source, xf, y, lambda i: table[i], bs)
      log.info("rem step %d/%d: source accuracy on its adversarial training batches %.4f",
               step + 1, cfg.total_train_steps, adv_acc)
      monitor.record(f"step {step + 1}/{cfg.total_train_steps}", source, loss, acc_p,
                     _saturation(table[seen], cfg.eps))
      save(step + 1, 0)
  source = _source_model.Source(net, params, rest)
  for b in range(final_done, len(final_batches)):
    idx, valid = final_batches[b]
    sub = _rem_noise(source, cfg, xf, y, idx, jax.random.fold_in(k_final, b))
    table[idx[:valid]] = sub[:valid]
    if (b + 1) % final_report == 0 and b + 1 < len(final_batches):
      save(cfg.total_train_steps, b + 1)
  loss, acc = _evaluate(source, xf, y, lambda i: table[i], bs)
  monitor.record("final noise", source, loss, acc, _saturation(table, cfg.eps))
  return _Outcome(table, table, source, monitor.history, cfg.total_train_steps, False)


# ---------------------------------------------------------------------------
# Entry points.


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
      ``progress`` shows the round / iteration bar on a terminal; with
      ``checkpoint_dir``, the run's state is saved there as it goes
      (:class:`_Resume`) and a run of the same config, key and data resumes
      from it.

  Returns:
    A :class:`MinMinResult` (poisoned images, noise, source model, and the
    per-round progress).

  Example:
    >>> r = generate(jax.random.key(0), x, y, EMConfig.cpu())
    >>> r.stopped, r.rounds, r.accuracy[-1], r.clean_accuracy[-1], r.saturation[-1]
  """
  x, y = _common.check_inputs(x, y, context.num_classes)
  if not isinstance(config, (EMConfig, REMConfig)):
    raise ConfigError(f"expected EMConfig or REMConfig, got {type(config).__name__}")
  config.validate()
  if len(x) == 0:
    raise ConfigError("EM/REM need at least one training image")
  source = _source_model.Source(*_source_model.init(
      jax.random.fold_in(key, 0), config.source_model, _common.num_classes(y), x,
      config.width))
  xf = x.astype(np.float32) / 255.0
  resume = None
  if context.checkpoint_dir is not None:
    resume = _Resume(context.checkpoint_dir, io.run_fingerprint(config, key, x, y))
  # pylint: disable=protected-access
  with tqdm.tqdm(total=config._iterations(), desc=config._label,
                 disable=None if context.progress else True, leave=False) as bar:
    run = config._run(key, xf, y, source, bar, resume)
  # pylint: enable=protected-access
  x_p = np.empty_like(x)
  for s in range(0, len(x), 4096):
    xs = np.clip(xf[s:s + 4096] + run.delta_rows[s:s + 4096], 0.0, 1.0)
    x_p[s:s + 4096] = _common.to_uint8_within(x[s:s + 4096], xs, config.eps)
  h = run.history
  return MinMinResult(x_p, run.table, run.source, h["accuracy"], h["loss"],
                      h["clean_accuracy"], h["saturation"], run.rounds, run.stopped)


def poison(key: jax.Array, x, y, config, context: RunContext = RunContext()) -> np.ndarray:
  """EM / REM poisoning: :func:`generate` and keep only the images.

  Progress (per round: the source model's accuracy on the perturbed and on
  clean data, the noise saturation; the stop) is logged on the
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
