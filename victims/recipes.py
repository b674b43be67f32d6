"""Each victim's default training recipe, and how a config's gaps are filled.

A :class:`ntga.victims.train.TrainConfig` field left ``None`` takes the
victim's recipe:
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
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ntga.errors import ConfigError
from ntga.victims import _names


@dataclasses.dataclass(frozen=True)
class Recipe:
  """One victim's default optimisation settings (see the module docstring)."""

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

_SGD_CIFAR = Recipe("sgd", 0.1, 5e-4, "cosine", 128, 60)
_ADAM_SMALL = Recipe("adam", 1e-3, 0.0, "constant", 128, 20)

#: The recipe of every victim in :data:`ntga.victims.models.NAMES`.
RECIPES: dict[str, Recipe] = {
    "fnn": dataclasses.replace(_ADAM_SMALL, loss="mse"),
    "fnn-relu": _ADAM_SMALL,
    "cnn": _ADAM_SMALL,
    "resnet18": _SGD_CIFAR,
    "resnet34": _SGD_CIFAR,
    "vgg16": _SGD_CIFAR,
    "densenet121": _SGD_CIFAR,
    "mobilenetv2": _SGD_CIFAR,
    "wrn-34-10": Recipe("sgd", 0.1, 5e-4, "step", 128, 100),
    "vit-small": Recipe("adamw", 1e-3, 0.05, "cosine", 128, 100, warmup_epochs=5),
    "fast": Recipe("sgd", FAST_LR, FAST_WEIGHT_DECAY, "triangle", FAST_BATCH, FAST_EPOCHS,
                   momentum=FAST_MOMENTUM, nesterov=True, label_smoothing=0.2,
                   tta="flip", crop_pad=2),
}

#: The TrainConfig fields a recipe fills when they are ``None``.
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Recipe))


def fill(victim: str, given: Mapping[str, Any]) -> dict[str, Any]:
  """The recipe's value of every field in :data:`FIELDS` that ``given`` leaves None.

  A recipe's warm-up is meant for its full schedule, so it is capped at a
  tenth of the run's epochs (0 for runs under 10 epochs).

  Args:
    victim: a victim name.
    given: the config's settings by field name (``None`` = unset).

  Returns:
    The values to fill in, by field name.

  Raises:
    ConfigError: unknown victim.

  Example:
    >>> fill("cnn", {"epochs": 5, "lr": None})["lr"]
    0.001
  """
  if victim not in RECIPES:
    raise ConfigError(f"unknown victim {victim!r}; choose one of {', '.join(_names.VICTIMS)}")
  recipe = RECIPES[victim]
  out = {f: getattr(recipe, f) for f in FIELDS if given.get(f) is None}
  if "warmup_epochs" in out:
    epochs = recipe.epochs if given.get("epochs") is None else given["epochs"]
    out["warmup_epochs"] = min(recipe.warmup_epochs, epochs // 10)
  return out
