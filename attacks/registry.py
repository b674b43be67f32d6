"""The attack registry: one explicit dict mapping a name to its poison function.

Every attack follows the protocol of :mod:`ntga.protocol`: a pure function
``poison(key, x, y, config, context=RunContext()) -> x_poisoned`` with ``x``
uint8 NHWC, ``y`` int64, ``config`` a frozen keyword-only
:class:`ntga.protocol.AttackConfig` subclass whose defaults come from the
method's paper, and ``context`` a :class:`ntga.protocol.RunContext`. What
differs between attacks (data-dependent defaults, a secret seed, work shared
among processes) is a property of the config class, so the entry holds only
the name, the config class and the function. ``ntga poison --attack NAME``
looks the name up here (through :func:`ntga.attacks.get`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class Attack:
  """A registered poisoning method.

  Attributes:
    name: the CLI name.
    config_cls: the method's :class:`ntga.protocol.AttackConfig` subclass
      (paper defaults).
    poison: ``poison(key, x, y, config, context) -> uint8 array`` of x's shape.
  """

  name: str
  config_cls: type
  poison: Callable[..., Any]


def _ntga() -> Attack:
  from ntga.pgd import NTGAConfig, poison
  return Attack("ntga", NTGAConfig, poison)


def _cuda() -> Attack:
  from ntga.attacks import cuda
  return Attack("cuda", cuda.CUDAConfig, cuda.poison)


def _ops() -> Attack:
  from ntga.attacks import ops
  return Attack("ops", ops.OPSConfig, ops.poison)


def _em() -> Attack:
  from ntga.attacks import em
  return Attack("em", em.EMConfig, em.poison)


def _rem() -> Attack:
  from ntga.attacks import rem
  return Attack("rem", rem.REMConfig, rem.poison)


def _random() -> Attack:
  from ntga.attacks import random_noise
  return Attack("random", random_noise.RandomConfig, random_noise.poison)


# name -> builder, in the order the CLI lists them; each builder imports its
# module only when asked for, so looking up one attack never imports (or
# requires) the others.
_BUILDERS: dict[str, Callable[[], Attack]] = {
    "ntga": _ntga, "cuda": _cuda, "ops": _ops, "em": _em, "rem": _rem, "random": _random,
}

#: Every registered name, in the order the CLI lists them.
NAMES = tuple(_BUILDERS)


def registry() -> dict[str, Attack]:
  """The full registry ``{name: Attack}`` (imports every attack module, ntga included)."""
  return {name: build() for name, build in _BUILDERS.items()}


def build(name: str) -> Attack:
  """The :class:`Attack` for one known name (imports only that attack's module)."""
  return _BUILDERS[name]()
