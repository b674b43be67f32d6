"""How to train one victim: optimisation settings plus one defense config.

:class:`TrainConfig` is also reachable as :class:`ntga.victims.train.TrainConfig`.
Its fields left ``None`` take the victim's recipe (:mod:`ntga.victims.recipes`);
its ``defense`` is one config from the registry of :mod:`ntga.victims.defenses`.

Benchmarks and the CLI describe a config as one flat dict (``defense`` as a
name beside its settings: ``{"victim": "cnn", "defense": "jpeg",
"jpeg_quality": 30}``); :meth:`TrainConfig.from_flat` and
:meth:`TrainConfig.to_flat` convert.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ntga.errors import ConfigError
from ntga.victims import _names, defenses, recipes

OPTIMIZERS = _names.OPTIMIZERS
SCHEDULES = _names.SCHEDULES
LOSSES = _names.LOSSES


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
  """How to train and evaluate one victim.

  Fields left ``None`` take the victim's recipe (see
  :mod:`ntga.victims.recipes` for the papers); :meth:`resolved` fills them in.

  Attributes:
    victim: model name, one of :data:`ntga.victims.models.NAMES`.
    defense: one defense config, e.g. ``defenses.get("jpeg", quality=30)``
      (default: no defense). For a defense by name use :meth:`from_flat`.
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
    eval_batch_size: batch size of the clean test evaluation.
    mixed_precision: compute the forward/backward pass in bfloat16 (parameters,
      optimizer state and BatchNorm's running statistics stay float32). Off
      by default.
    robust_eps: if set, after the last epoch also measure the robust test
      accuracy: PGD-10 with step robust_eps / 4 from a random start (Madry
      et al.) in the L_inf ball of this radius, in [0, 1] units, against the
      evaluation-mode model without test-time augmentation. ``None`` (default):
      not measured.

  Example:
    >>> cfg = TrainConfig(victim="cnn", epochs=5)
    >>> cfg.resolved().optimizer
    'adam'
    >>> TrainConfig.from_flat(victim="cnn", defense="jpeg", jpeg_quality=30).defense
    Jpeg(quality=30)
  """

  victim: str = "resnet18"
  defense: defenses.DefenseConfig = defenses.NoDefense()
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
  eval_batch_size: int = 500
  mixed_precision: bool = False
  robust_eps: float | None = None

  def __post_init__(self):
    if not isinstance(self.defense, defenses.DefenseConfig):
      raise ConfigError(f"TrainConfig: defense must be a defense config "
                        f"(defenses.get(name, ...)), got {self.defense!r}; for a "
                        f"name use TrainConfig.from_flat(defense=...)")

  @classmethod
  def from_flat(cls, **settings: Any) -> "TrainConfig":
    """A config from flat settings: ``defense`` as a name beside its settings.

    Accepts every field of this class, ``defense`` (a name, default 'none')
    and that defense's settings under their flat names (``jpeg_quality``,
    ``at_eps``, ``at_steps``, ``at_step_size``, ``at_noise``, ``bdr_bits``,
    ``ortho_epochs``, ``ortho_lr``, ``cutout_size``, ``mixup_alpha``,
    ``cutmix_alpha``, ``cutmix_prob``).

    Args:
      **settings: the flat settings.

    Returns:
      The (unresolved) config.

    Raises:
      ConfigError: unknown defense, or a key that is neither a field nor a
        setting of the chosen defense (e.g. ``at_steps`` with 'jpeg').

    Example:
      >>> TrainConfig.from_flat(victim="cnn", defense="at-linf", at_steps=1).defense
      AtLinf(eps=None, steps=1, step_size=None)
    """
    name = settings.pop("defense", "none")
    if not isinstance(name, str):
      raise ConfigError(f"TrainConfig: flat defense must be a name, got {name!r}")
    own = {f.name for f in dataclasses.fields(cls)} - {"defense"}
    theirs = defenses.flat_keys(name)
    unknown = sorted(k for k in settings if k not in own and k not in theirs)
    if unknown:
      raise ConfigError(
          f"TrainConfig: {', '.join(unknown)} is neither a TrainConfig setting nor "
          f"a setting of defense {name} ({', '.join(theirs) or 'it has none'})")
    defense = defenses.from_flat(name, **{k: v for k, v in settings.items()
                                          if k not in own})
    return cls(defense=defense, **{k: v for k, v in settings.items() if k in own})

  def to_flat(self) -> dict[str, Any]:
    """The flat form: every field, ``defense`` as its name, then its settings.

    ``TrainConfig.from_flat(**cfg.to_flat()) == cfg``.

    Example:
      >>> TrainConfig(victim="cnn").to_flat()["defense"]
      'none'
    """
    out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    out["defense"] = self.defense.name
    return {**out, **self.defense.flat_settings()}

  def resolved(self) -> "TrainConfig":
    """Returns a copy with every ``None`` field filled in and validated.

    Raises:
      ConfigError: unknown victim/optimizer/schedule/loss/augment, or a value
        (also of the defense's settings) out of range.
    """
    fill = recipes.fill(self.victim, {f: getattr(self, f) for f in recipes.FIELDS})
    cfg = dataclasses.replace(self, defense=self.defense.resolved(), **fill)
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
        (self.robust_eps is None or 0 < self.robust_eps <= 1,
         "robust_eps must be in (0, 1]"),
        (self.robust_eps is None or not getattr(self.defense, "project_test", False),
         "robust_eps cannot be combined with ortho's project_test (the robust "
         "accuracy attacks test images in [0, 1])"),
        (self.lr > 0, "lr must be > 0"),
        (self.weight_decay >= 0, "weight_decay must be >= 0"),
        (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
        (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
        (self.tta in _names.TTAS, f"tta must be one of {_names.TTAS}"),
        (self.schedule != "triangle" or self.warmup_epochs == 0,
         "the triangle schedule has its own warm-up: warmup_epochs must be 0"),
        (0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
         "warmup_epochs must be smaller than epochs"),
    ]
    for ok, msg in checks:
      if not ok:
        raise ConfigError(f"TrainConfig: {msg}")
