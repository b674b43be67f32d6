"""The attack registry: one explicit dict mapping a name to its poison function.

Every attack is a pure function ``poison(key, x, y, config) -> x_poisoned`` with
``x`` uint8 NHWC, ``y`` int64 and ``config`` a frozen keyword-only dataclass whose
defaults come from the method's paper. ``ntga poison --attack NAME`` looks the
name up here (through :func:`ntga.attacks.get`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class Attack:
  """A registered poisoning method.

  Attributes:
    name: the CLI name.
    config_cls: frozen dataclass of settings (paper defaults).
    poison: ``poison(key, x, y, config, **extra) -> uint8 array`` of x's shape.
    resumable: if True, ``poison`` also accepts ``checkpoint_dir`` (a folder for
      per-block checkpoints) and ``progress`` (bool) keyword arguments.
    secret_key: if True the seed is a secret (e.g. CUDA filters): the manifest
      records only a fingerprint of it.
    eps_bounded: if False the method has no eps (CUDA); its manifest reports
      PSNR and max |delta| instead of an eps check.
  """

  name: str
  config_cls: type
  poison: Callable[..., Any]
  resumable: bool = False
  secret_key: bool = False
  eps_bounded: bool = True


# Every registered name, in the order the CLI lists them.
NAMES = ("ntga", "cuda", "ops", "em", "rem", "random")


def _ntga() -> Attack:
  # ---- NTGA entry (owned by the lead; ntga.pgd provides NTGAConfig, poison) ----
  from ntga.pgd import NTGAConfig, poison
  return Attack("ntga", NTGAConfig, poison, resumable=True)


def _cuda() -> Attack:
  from ntga.attacks import cuda
  return Attack("cuda", cuda.CUDAConfig, cuda.poison, secret_key=True, eps_bounded=False)


def _ops() -> Attack:
  from ntga.attacks import ops
  return Attack("ops", ops.OPSConfig, ops.poison, eps_bounded=False)


def _em() -> Attack:
  from ntga.attacks import em
  return Attack("em", em.EMConfig, em.poison)


def _rem() -> Attack:
  from ntga.attacks import rem
  return Attack("rem", rem.REMConfig, rem.poison)


def _random() -> Attack:
  from ntga.attacks import random_noise
  return Attack("random", random_noise.RandomConfig, random_noise.poison)


# name -> builder; each builder imports its module only when asked for, so
# looking up one attack never imports (or requires) the others.
_BUILDERS: dict[str, Callable[[], Attack]] = {
    "ntga": _ntga, "cuda": _cuda, "ops": _ops, "em": _em, "rem": _rem, "random": _random,
}
assert tuple(_BUILDERS) == NAMES


def registry() -> dict[str, Attack]:
  """The full registry ``{name: Attack}`` (imports every attack module, ntga included)."""
  return {name: build() for name, build in _BUILDERS.items()}


def build(name: str) -> Attack:
  """The :class:`Attack` for one known name (imports only that attack's module)."""
  return _BUILDERS[name]()
