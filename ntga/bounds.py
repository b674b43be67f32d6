"""The eps bound every poisoner keeps *after* rounding to uint8.

A poisoned image must satisfy |x_poisoned - x_clean| <= eps per pixel (L_inf)
or per image (L2) once it is stored as uint8, not only in floats before
rounding: the published images are the uint8 ones, so that is where the
threat model's bound has to hold. NTGA and the other poisoners in
``ntga.attacks`` round through these two functions so the rule lives in one
place.
"""

from __future__ import annotations

import math

import numpy as np


def eps_levels(eps: float) -> int:
  """The largest per-pixel change in uint8 levels allowed by an L_inf ``eps``.

  Example:
    >>> eps_levels(8 / 255)
    8
  """
  return int(math.floor(eps * 255 + 1e-6))


def quantize(x_clean: np.ndarray, x_adv: np.ndarray, eps: float,
             norm: str) -> np.ndarray:
  """Rounds poisoned float images to uint8 without leaving the eps-ball.

  For L_inf the per-pixel change is clipped to floor(eps * 255) levels after
  rounding; for L2 it is truncated toward zero, which cannot increase its norm.

  Args:
    x_clean: uint8 clean images.
    x_adv: float images in [0, 1].
    eps: the bound in [0, 1] units.
    norm: ``"linf"`` or ``"l2"``.

  Returns:
    uint8 images with |x_out - x_clean| <= eps * 255 (per pixel or per image).
  """
  clean = x_clean.astype(np.int32)
  target = np.asarray(x_adv, np.float64) * 255.0
  if norm == "linf":
    levels = eps_levels(eps)
    delta = np.clip(np.rint(target) - clean, -levels, levels)
  else:
    delta = np.trunc(target - clean)
  return np.clip(clean + delta, 0, 255).astype(np.uint8)
