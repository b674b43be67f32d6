"""The other poisoners (CUDA, OPS, EM, REM, random noise) and the attack registry.

Every attack, NTGA included, is ``poison(key, x, y, config, context)`` on uint8
NHWC images (the protocol of :mod:`ntga.protocol`; the registry is
:mod:`ntga.attacks.registry`). Look one up by name:

Example:
  >>> from ntga import attacks
  >>> atk = attacks.get("cuda")
  >>> x_p = atk.poison(jax.random.key(0), x, y, atk.config_cls())
  >>> x_out, mask = attacks.apply_ratio(jax.random.key(1), x, x_p, 0.5)

Whole-dataset runs with a manifest (what ``ntga poison`` does) are in
:mod:`ntga.attacks.pipeline`.
"""

from __future__ import annotations

import math

import numpy as np

from ntga.attacks.registry import NAMES, Attack, build, registry
from ntga.errors import ConfigError, DataError

__all__ = ["Attack", "get", "names", "registry", "apply_ratio", "perturbation_stats",
           "key_fingerprint"]


def names() -> list[str]:
  """Every registered attack name."""
  return list(NAMES)


def get(name: str) -> Attack:
  """The registered attack called ``name``.

  Raises:
    ConfigError: unknown name (the message lists the known ones).
  """
  if name not in NAMES:
    raise ConfigError(f"unknown attack {name!r}; known attacks: {', '.join(NAMES)}")
  return build(name)


def apply_ratio(key, x_clean, x_poisoned, ratio: float) -> tuple[np.ndarray, np.ndarray]:
  """Keeps a seeded random ``round(ratio * N)`` poisoned rows; the rest are clean.

  Args:
    key: PRNG key choosing the subset.
    x_clean: clean images (N, ...).
    x_poisoned: poisoned images, same shape.
    ratio: fraction in [0, 1].

  Returns:
    ``(x_out, mask)``: x_out takes poisoned rows where ``mask`` (bool, (N,)) is
    True and clean rows elsewhere; ``mask.sum() == round(ratio * N)``.

  Raises:
    ConfigError: ratio outside [0, 1].
    DataError: shapes differ.
  """
  from ntga.attacks import _common
  if not (isinstance(ratio, (int, float)) and 0.0 <= ratio <= 1.0):
    raise ConfigError(f"--ratio {ratio!r} is out of range, expected [0, 1]")
  x_clean, x_poisoned = np.asarray(x_clean), np.asarray(x_poisoned)
  if x_clean.shape != x_poisoned.shape:
    raise DataError(f"clean shape {x_clean.shape} != poisoned shape {x_poisoned.shape}")
  mask = _common.subset_mask(key, len(x_clean), ratio)
  return np.where(mask.reshape((-1,) + (1,) * (x_clean.ndim - 1)), x_poisoned, x_clean), mask


def perturbation_stats(x_clean, x_poisoned) -> dict:
  """PSNR (dB, over the whole set) and max |delta| (levels and [0,1] units).

  For methods without an eps bound (CUDA, OPS) the manifest reports these.
  PSNR is ``inf`` when nothing changed.
  """
  a = np.asarray(x_clean, np.float64)
  b = np.asarray(x_poisoned, np.float64)
  mse = float(np.mean((a - b) ** 2)) if a.size else 0.0
  psnr = math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)
  lv = int(np.max(np.abs(a - b))) if a.size else 0
  return {"psnr_db": psnr, "max_abs_delta_levels": lv, "max_abs_delta": lv / 255.0}


def key_fingerprint(key) -> str:
  """A short fingerprint of a secret key, safe for the manifest (see CUDA)."""
  from ntga.attacks import _common
  return _common.key_fingerprint(key)
