"""The defense registry: one small frozen config per defense.

A defense acts at one or both of two points of training, and its config says
how:

  * :meth:`DefenseConfig.prepare_images` transforms the uint8 training images
    once, before training (squeezing, orthogonal projection), and
    :meth:`DefenseConfig.prepare` also names the test images to evaluate on
    (only ``ortho`` with ``project_test`` changes them);
  * :meth:`DefenseConfig.transform_batch` transforms each float training batch
    and its soft targets inside the jitted step, after the standard crop/flip
    (cutout, mixup, cutmix, adversarial training).

The train step splits each step's key into four streams: 0 crop, 1 flip,
2 batch defenses, 3 adversarial training; :attr:`DefenseConfig.key_stream`
names the one a defense draws from, so a run is reproducible across versions.

Each config holds only its own settings, with the papers' defaults (see
:mod:`ntga.victims.defenses`). ``TrainConfig``'s flat form names a setting
``<flat_prefix><field>`` (``jpeg_quality``, ``at_steps``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import jax
import numpy as np

from ntga import defense_aware
from ntga.errors import ConfigError
from ntga.victims import _augment, _squeeze, adversarial
from ntga.victims._names import ORTHO_AUGMENT, ORTHO_FIT_ON, ORTHO_LINEAR

LossFn = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DefenseConfig:
  """Base of the defense configs: no settings and no effect.

  Subclasses set :attr:`name` (the registry key), :attr:`flat_prefix` and
  override the behaviour they have.

  Example:
    >>> get("jpeg", quality=30).flat_settings()
    {'jpeg_quality': 30}
  """

  name: ClassVar[str] = ""
  #: ``TrainConfig``'s flat key of a field is this prefix + the field's name.
  flat_prefix: ClassVar[str] = ""
  #: Which of the train step's four key streams :meth:`transform_batch` uses.
  key_stream: ClassVar[int] = 2

  def settings(self) -> dict[str, Any]:
    """The config's own settings by field name."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  def flat_settings(self) -> dict[str, Any]:
    """The settings under their flat ``TrainConfig`` names."""
    return {self.flat_prefix + k: v for k, v in self.settings().items()}

  def resolved(self) -> "DefenseConfig":
    """A copy with every ``None`` setting filled in, validated.

    Raises:
      ConfigError: a setting out of range.
    """
    cfg = self._filled()
    for ok, msg in cfg._checks():
      if not ok:
        raise ConfigError(f"defense {cfg.name}: {msg}")
    return cfg

  def _filled(self) -> "DefenseConfig":
    """A copy with the ``None`` settings filled in (before the checks)."""
    return self

  def _checks(self) -> list[tuple[bool, str]]:
    """(condition, message) pairs that a resolved config must satisfy."""
    return []

  def _label(self, field: str) -> str:
    """A setting's name as a user wrote it, for messages: 'quality (jpeg_quality)'."""
    return f"{field} ({self.flat_prefix}{field})"

  def prepare_images(self, key: jax.Array, x: np.ndarray, y: np.ndarray,
                     num_classes: int) -> np.ndarray:
    """The training images this defense trains on (once, before training).

    Args:
      key: PRNG key (only ``ortho`` draws from it).
      x: uint8 training images (N, H, W, C).
      y: int labels (N,).
      num_classes: class count.

    Returns:
      uint8 images, or float32 images in [0, 1] units (``ortho``).
    """
    del key, y, num_classes
    return x

  def prepare(self, key: jax.Array, x: np.ndarray, y: np.ndarray,
              num_classes: int, x_test: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The training images to train on and the test images to evaluate on.

    Args:
      key: PRNG key, as for :meth:`prepare_images`.
      x: uint8 training images (N, H, W, C).
      y: int labels (N,).
      num_classes: class count.
      x_test: uint8 test images (M, H, W, C).

    Returns:
      ``(prepare_images(key, x, y, num_classes), x_test)``: only ``ortho``
      with ``project_test`` changes the test images.
    """
    return self.prepare_images(key, x, y, num_classes), x_test

  def fit_images(self, x: np.ndarray, prepared: np.ndarray) -> np.ndarray:
    """The training images the victim estimates its data statistics from.

    The victim's ``models.fit_data`` (the ``fast`` victim's input
    normalisation and whitening) sees these; training itself uses
    ``prepared``.

    Args:
      x: the uint8 training images as given.
      prepared: :meth:`prepare_images`' result.

    Returns:
      ``prepared`` (``ortho`` may return ``x``).
    """
    del x
    return prepared

  def transform_batch(self, key: jax.Array, x: jax.Array, t: jax.Array,
                      loss_fn: LossFn) -> tuple[jax.Array, jax.Array]:
    """A training batch and its soft targets after this defense (jit-traced).

    Args:
      key: the step's key stream :attr:`key_stream`.
      x: float images (N, H, W, C) in [0, 1], after crop/flip.
      t: soft targets (N, K).
      loss_fn: the current model's training loss of a batch of images
        against ``t`` (adversarial training maximises it).

    Returns:
      ``(images, targets)``.
    """
    del key, loss_fn
    return x, t


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoDefense(DefenseConfig):
  """Trains on the data as given (``none``)."""

  name: ClassVar[str] = "none"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cutout(DefenseConfig):
  """One zeroed square per training image (DeVries & Taylor 2017).

  Attributes:
    size: side of the square; ``None`` = half the image side (16 at 32 px).
  """

  name: ClassVar[str] = "cutout"
  flat_prefix: ClassVar[str] = "cutout_"
  size: int | None = None

  def _checks(self):
    return [(self.size is None or self.size >= 1, f"{self._label('size')} must be >= 1")]

  def transform_batch(self, key, x, t, loss_fn):
    del loss_fn
    size = self.size if self.size is not None else max(1, x.shape[1] // 2)
    return _augment.cutout(key, x, size), t


@dataclasses.dataclass(frozen=True, kw_only=True)
class Mixup(DefenseConfig):
  """Convex combinations of training pairs (Zhang et al. 2018).

  Attributes:
    alpha: Beta(alpha, alpha) parameter of the mixing weight (1.0).
  """

  name: ClassVar[str] = "mixup"
  flat_prefix: ClassVar[str] = "mixup_"
  alpha: float = 1.0

  def _checks(self):
    return [(self.alpha > 0, f"{self._label('alpha')} must be > 0")]

  def transform_batch(self, key, x, t, loss_fn):
    del loss_fn
    return _augment.mixup(key, x, t, self.alpha)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CutMix(DefenseConfig):
  """Boxes pasted between training pairs (Yun et al. 2019).

  Attributes:
    alpha: Beta parameter of the box's area fraction (1.0).
    prob: probability of mixing a batch (0.5, the paper's CIFAR setting).
  """

  name: ClassVar[str] = "cutmix"
  flat_prefix: ClassVar[str] = "cutmix_"
  alpha: float = 1.0
  prob: float = 0.5

  def _checks(self):
    return [(self.alpha > 0, f"{self._label('alpha')} must be > 0"),
            (0 <= self.prob <= 1, f"{self._label('prob')} must be in [0, 1]")]

  def transform_batch(self, key, x, t, loss_fn):
    del loss_fn
    return _augment.cutmix(key, x, t, self.alpha, self.prob)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdversarialTraining(DefenseConfig):
  """PGD adversarial training (Madry et al. 2018); base of ``at-linf``/``at-l2``.

  Each batch is replaced by PGD examples that maximise the current model's
  training loss (in training mode; the attack's batch-stat updates are
  discarded).

  Attributes:
    eps: radius in [0, 1] units; ``None`` = 8/255 (L_inf) or 0.5 (L2).
    steps: PGD steps (10).
    step_size: ``None`` = eps / 4 (L_inf: 2/255 at 8/255) or
      2.5 * eps / steps (L2).
  """

  flat_prefix: ClassVar[str] = "at_"
  key_stream: ClassVar[int] = 3
  norm: ClassVar[str] = ""
  default_eps: ClassVar[float] = 0.0
  eps: float | None = None
  steps: int = 10
  step_size: float | None = None

  def _filled(self):
    eps = self.default_eps if self.eps is None else self.eps
    step_size = self.step_size
    if step_size is None:
      step_size = eps / 4 if self.norm == "linf" else 2.5 * eps / max(self.steps, 1)
    return dataclasses.replace(self, eps=eps, step_size=step_size)

  def _checks(self):
    return [(self.steps >= 1, f"{self._label('steps')} must be >= 1"),
            (self.eps is None or self.eps > 0, f"{self._label('eps')} must be > 0")]

  def transform_batch(self, key, x, t, loss_fn):
    return adversarial.pgd(key, loss_fn, x, norm=self.norm, eps=self.eps,
                           steps=self.steps, step_size=self.step_size), t


@dataclasses.dataclass(frozen=True, kw_only=True)
class AtLinf(AdversarialTraining):
  """L_inf PGD adversarial training (``at-linf``); see the base class."""

  name: ClassVar[str] = "at-linf"
  norm: ClassVar[str] = "linf"
  default_eps: ClassVar[float] = 8 / 255


@dataclasses.dataclass(frozen=True, kw_only=True)
class AtL2(AdversarialTraining):
  """L2 PGD adversarial training (``at-l2``); see the base class."""

  name: ClassVar[str] = "at-l2"
  norm: ClassVar[str] = "l2"
  default_eps: ClassVar[float] = 0.5


@dataclasses.dataclass(frozen=True, kw_only=True)
class AtNFgsm(DefenseConfig):
  """Single-step L_inf adversarial training with N-FGSM (``at-nfgsm``).

  de Jorge et al., "Make Some Noise: Reliable and Efficient Single-Step
  Adversarial Training", NeurIPS 2022 (code: github.com/pdejorge/N-FGSM):
  each batch is replaced by one sign step of size eps from a uniform start in
  2 eps, not projected back onto the eps-ball (see
  :func:`ntga.victims.adversarial.nfgsm`). It costs one extra gradient per
  example, like FGSM adversarial training (``at-linf`` with ``steps=1``), but
  the paper shows it free of FGSM's catastrophic overfitting. FGSM training
  of the ``fast`` victim at 4/255 ended between 25% and 51% clean accuracy
  over three seeds (``benchmarks/RESULTS.md``, ``seed_methods_cifar``, column
  ``fgsm-at-4/255``); ``at_fast_screen`` sets the two side by side.

  Attributes:
    eps: radius in [0, 1] units; ``None`` = 8/255.
    noise: half-width of the uniform start in units of eps (2.0).
    step_size: ``None`` = eps (the paper's).
  """

  name: ClassVar[str] = "at-nfgsm"
  flat_prefix: ClassVar[str] = "at_"
  key_stream: ClassVar[int] = 3
  eps: float | None = None
  noise: float = 2.0
  step_size: float | None = None

  def _filled(self):
    eps = 8 / 255 if self.eps is None else self.eps
    return dataclasses.replace(
        self, eps=eps, step_size=eps if self.step_size is None else self.step_size)

  def _checks(self):
    return [(self.eps > 0, f"{self._label('eps')} must be > 0"),
            (self.noise >= 0, f"{self._label('noise')} must be >= 0"),
            (self.step_size > 0, f"{self._label('step_size')} must be > 0")]

  def transform_batch(self, key, x, t, loss_fn):
    return adversarial.nfgsm(key, loss_fn, x, eps=self.eps, noise=self.noise,
                             step_size=self.step_size), t


@dataclasses.dataclass(frozen=True, kw_only=True)
class Jpeg(DefenseConfig):
  """JPEG-compresses the training images (Liu et al. 2023).

  Attributes:
    quality: JPEG quality in [1, 95] (10).
  """

  name: ClassVar[str] = "jpeg"
  flat_prefix: ClassVar[str] = "jpeg_"
  quality: int = defense_aware.JPEG_QUALITY

  def _checks(self):
    return [(1 <= self.quality <= 95, f"{self._label('quality')} must be in [1, 95]")]

  def prepare_images(self, key, x, y, num_classes):
    del key, y, num_classes
    return _squeeze.jpeg_compress(x, self.quality)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Grayscale(DefenseConfig):
  """Greys the training images (Liu et al. 2023)."""

  name: ClassVar[str] = "grayscale"

  def prepare_images(self, key, x, y, num_classes):
    del key, y, num_classes
    return _squeeze.grayscale(x)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BitDepthReduction(DefenseConfig):
  """Quantises the training images' pixels (Liu et al. 2023).

  Attributes:
    bits: bits kept per pixel, in [1, 8] (2).
  """

  name: ClassVar[str] = "bdr"
  flat_prefix: ClassVar[str] = "bdr_"
  bits: int = 2

  def _checks(self):
    return [(1 <= self.bits <= 8, f"{self._label('bits')} must be in [1, 8]")]

  def prepare_images(self, key, x, y, num_classes):
    del key, y, num_classes
    return _squeeze.bit_depth_reduction(x, self.bits)


@dataclasses.dataclass(frozen=True, kw_only=True)
class OrthogonalProjection(DefenseConfig):
  """Projects class-wise linear directions out (Sandoval-Segura et al. 2023).

  Sandoval-Segura, Singla, Geiping, Goldblum, Goldstein, "What Can We Learn
  from Unlearnable Datasets?", NeurIPS 2023; code:
  github.com/psandovalsegura/learn-from-unlearnable. The training images are
  replaced once by their projection
  (:func:`ntga.victims.defenses.orthogonal_projection`), kept as floats, and
  then go through the victim's usual pipeline like any training images: the
  victim's crop/flip augmentation (``TrainConfig.augment``) and its input
  normalisation. As in the authors' ``orthogonal_projection_step_2.py``, that
  normalisation is the one of the data set, not of the projected images (they
  use the fixed CIFAR-10 mean/std for the projected training images and the
  unprojected test images alike): the victim estimates its data statistics
  (``models.fit_data``: the ``fast`` victim's per-channel mean/std and
  whitening) from the training images before the projection. Test images are
  not projected by default (``project_test``). The authors' step 2 trains on
  the projected images with strong augmentation by default, and so does this
  defense
  (``augment='authors'``): a random rotation (+-10 degrees), shear (+-10
  degrees) and scale (0.8-1.2), colour jitter (brightness, contrast and
  saturation 0.2), and CutMix (beta 1, probability 0.5); see
  :func:`ntga.victims._augment.rotate_shear_scale` and
  :func:`~ntga.victims._augment.color_jitter`. Their crop and flip come
  from the victim's own ``augment`` setting, which runs first here (the
  authors crop and flip after the jitter). What it costs on clean CIFAR-10:
  ``ortho_cifar_full`` in ``benchmarks/RESULTS.md``.

  Attributes:
    linear: how the linear model is trained: 'sgd' (default, the authors':
      SGD lr 0.1, batches of 1024 in one fixed class-mixed order, step
      decay) or 'adam' (this
      library's earlier definition: Adam lr 1e-2, shuffled batches of 256).
    epochs: training epochs of the linear model (20).
    lr: its learning rate (default 0.1 for 'sgd', 1e-2 for 'adam').
    batch_size: its batch size (default 1024 for 'sgd', 256 for 'adam').
    fit_on: the training images the victim estimates its input normalisation
      from: 'unprojected' (default, as the authors' fixed data set
      normalisation) or 'projected' (this library's earlier behaviour).
    augment: 'authors' (default: the strong augmentation above, per batch)
      or 'victim' (only the victim's own ``augment``; this library's
      earlier behaviour).
    project_test: also project the test images with the same basis before
      evaluating (default False, as the authors' released step 2 runs: it
      parses a ``--project-test`` flag but never uses it). A variant, to ask
      how much of the defense's cost comes from test images keeping the
      directions that training images lost. Not combinable with the
      victim's ``robust_eps`` (the robust accuracy attacks images in
      [0, 1]).

  The earlier definition is ``linear='adam', fit_on='projected',
  augment='victim'``.

  Example:
    >>> TrainConfig.from_flat(victim="fast", defense="ortho")  # authors' default
    >>> defenses.get("ortho", linear="adam", fit_on="projected", augment="victim")  # earlier
  """

  name: ClassVar[str] = "ortho"
  flat_prefix: ClassVar[str] = "ortho_"
  linear: str = "sgd"
  epochs: int = 20
  lr: float | None = None
  batch_size: int | None = None
  fit_on: str = "unprojected"
  augment: str = "authors"
  project_test: bool = False

  def _filled(self):
    if self.linear not in ORTHO_LINEAR:
      return self  # _checks reports it
    lr, batch = _squeeze._ORTHO_DEFAULTS[self.linear]
    return dataclasses.replace(
        self, lr=lr if self.lr is None else self.lr,
        batch_size=batch if self.batch_size is None else self.batch_size)

  def _checks(self):
    return [(self.linear in ORTHO_LINEAR,
             f"{self._label('linear')} must be one of "
             f"{', '.join(ORTHO_LINEAR)}, got {self.linear!r}"),
            (self.epochs >= 1, f"{self._label('epochs')} must be >= 1"),
            (self.lr is not None and self.lr > 0, f"{self._label('lr')} must be > 0"),
            (self.batch_size is not None and self.batch_size >= 1,
             f"{self._label('batch_size')} must be >= 1"),
            (self.fit_on in ORTHO_FIT_ON, f"{self._label('fit_on')} must be one of "
             f"{', '.join(ORTHO_FIT_ON)}, got {self.fit_on!r}"),
            (self.augment in ORTHO_AUGMENT, f"{self._label('augment')} must be one of "
             f"{', '.join(ORTHO_AUGMENT)}, got {self.augment!r}"),
            (isinstance(self.project_test, bool),
             f"{self._label('project_test')} must be true or false")]

  def _project(self, key, x, y, num_classes):
    cfg = self.resolved()
    return _squeeze.orthogonal_projection(
        key, x.astype(np.float32) / 255.0, y, num_classes, linear=cfg.linear,
        epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size)

  def prepare_images(self, key, x, y, num_classes):
    return self._project(key, x, y, num_classes)[0]

  def prepare(self, key, x, y, num_classes, x_test):
    proj, q = self._project(key, x, y, num_classes)
    if not self.project_test:
      return proj, x_test
    return proj, _squeeze.project_out(x_test.astype(np.float32) / 255.0, q)

  def fit_images(self, x, prepared):
    return x if self.fit_on == "unprojected" else prepared

  def transform_batch(self, key, x, t, loss_fn):
    del loss_fn
    if self.augment == "victim":
      return x, t
    kg, kc, km = jax.random.split(key, 3)
    x = _augment.color_jitter(kc, _augment.rotate_shear_scale(kg, x))
    return _augment.cutmix(km, x, t, 1.0, 0.5)


REGISTRY: dict[str, type[DefenseConfig]] = {
    cls.name: cls for cls in (NoDefense, Cutout, Mixup, CutMix, AtLinf, AtL2, AtNFgsm,
                              Jpeg, Grayscale, BitDepthReduction, OrthogonalProjection)}


def _field_names(cls: type[DefenseConfig]) -> tuple[str, ...]:
  return tuple(f.name for f in dataclasses.fields(cls))


def _class(name: str) -> type[DefenseConfig]:
  if name not in REGISTRY:
    raise ConfigError(f"unknown defense {name!r}; choose one of {', '.join(REGISTRY)}")
  return REGISTRY[name]


def get(name: str, **settings: Any) -> DefenseConfig:
  """The config of defense ``name`` with ``settings`` (by field name).

  Args:
    name: one of :data:`ntga.victims.defenses.NAMES`.
    **settings: the defense's own settings; the rest keep their defaults.

  Returns:
    The (unresolved) config.

  Raises:
    ConfigError: unknown defense or a setting the defense does not have.

  Example:
    >>> get("at-linf", steps=1, step_size=10 / 255).resolved().eps  # 8/255
    0.03137254901960784
  """
  cls = _class(name)
  fields = _field_names(cls)
  unknown = sorted(set(settings) - set(fields))
  if unknown:
    raise ConfigError(f"defense {name} has no setting {', '.join(unknown)}; its "
                      f"settings: {', '.join(fields) or 'none'}")
  return cls(**settings)


def flat_keys(name: str) -> tuple[str, ...]:
  """The flat ``TrainConfig`` names of defense ``name``'s settings.

  Example:
    >>> flat_keys("cutmix")
    ('cutmix_alpha', 'cutmix_prob')
  """
  cls = _class(name)
  return tuple(cls.flat_prefix + f for f in _field_names(cls))


def from_flat(name: str, **flat: Any) -> DefenseConfig:
  """The config of defense ``name`` from settings under their flat names.

  Raises:
    ConfigError: unknown defense or a key that is not one of its flat names.

  Example:
    >>> from_flat("jpeg", jpeg_quality=30) == get("jpeg", quality=30)
    True
  """
  cls = _class(name)
  own = flat_keys(name)
  unknown = sorted(set(flat) - set(own))
  if unknown:
    raise ConfigError(f"{', '.join(unknown)}: not a setting of defense {name} "
                      f"(its settings: {', '.join(own) or 'none'})")
  n = len(cls.flat_prefix)
  return cls(**{k[n:]: v for k, v in flat.items()})
