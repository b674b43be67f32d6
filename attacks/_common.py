"""Helpers shared by the poisoners: input checks, uint8 <-> float, eps projection.

Every attack takes uint8 NHWC images and int labels at its public boundary and
returns uint8 images of the same shape and order. Inside, pixels are float32 in
[0, 1]. An eps-bounded attack must satisfy ``|x_p - x| <= floor(eps*255 + 1e-6)``
grey levels per pixel after rounding, which :func:`to_uint8_within` enforces in
integer levels (not only in floats).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import jax
import jax.numpy as jnp
import numpy as np

from ntga import bounds, data
from ntga.bounds import eps_levels  # noqa: F401  (used by attacks and tests)
from ntga.errors import ConfigError


def check_inputs(x, y, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """:func:`ntga.data.check_arrays`: uint8 NHWC images, int64 labels >= 0.

  Args:
    x: images.
    y: labels.
    num_classes: if given (an attack's ``RunContext.num_classes``), labels
      must also lie below it.

  Returns:
    ``(x, y)`` as numpy uint8 and int64 arrays.
  """
  return data.check_arrays(x, y, num_classes)


def num_classes(y: np.ndarray) -> int:
  """Class count implied by labels (``max + 1``; 0 for an empty set)."""
  return int(y.max()) + 1 if len(y) else 0


def to_uint8_within(x: np.ndarray, x_float: jax.Array, eps: float) -> np.ndarray:
  """Rounds float images in [0, 1] to uint8 within ``eps`` levels of ``x``.

  The perturbation is clipped in integer grey levels after rounding (through
  :func:`ntga.bounds.quantize`, the rule NTGA uses too), so the bound holds
  exactly, and the result stays in [0, 255].

  Args:
    x: clean uint8 images.
    x_float: perturbed images, float in [0, 1] (any shape broadcastable to x).
    eps: L_inf radius in [0, 1] units.

  Returns:
    uint8 numpy array of x's shape.
  """
  return bounds.quantize(x, x_float, eps, "linf")


def check_range(cfg, name: str, lo: float, hi: float, *, lo_open=False, hi_open=False):
  """Raises ConfigError if ``cfg.name`` is outside [lo, hi] (or open ends)."""
  v = getattr(cfg, name)
  bad = (v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi)
         or (isinstance(v, float) and math.isnan(v)))
  if bad:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    raise ConfigError(
        f"{type(cfg).__name__}.{name}={v!r} is out of range, expected {left}{lo}, {hi}{right}")


def check_choice(cfg, name: str, choices: tuple[str, ...]):
  """Raises ConfigError if ``cfg.name`` is not one of ``choices``."""
  v = getattr(cfg, name)
  if v not in choices:
    raise ConfigError(f"{type(cfg).__name__}.{name}={v!r} is not one of {list(choices)}")


def check_types(cfg):
  """Raises ConfigError if a field's value does not match its simple annotation."""
  for f in dataclasses.fields(cfg):
    t = f.type if isinstance(f.type, str) else f.type.__name__
    v = getattr(cfg, f.name)
    ok = {"bool": lambda: isinstance(v, bool),
          "int": lambda: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda: isinstance(v, (int, float)) and not isinstance(v, bool),
          "str": lambda: isinstance(v, str)}.get(t, lambda: True)()
    if not ok:
      raise ConfigError(f"{type(cfg).__name__}.{f.name}={v!r} must be of type {t}")


def subset_mask(key: jax.Array, n: int, fraction: float) -> np.ndarray:
  """A seeded boolean mask with exactly ``round(fraction * n)`` True entries.

  Example:
    >>> int(subset_mask(jax.random.key(0), 10, 0.3).sum())
    3
  """
  count = int(round(fraction * n))
  perm = np.asarray(jax.random.permutation(key, n))
  mask = np.zeros(n, bool)
  mask[perm[:count]] = True
  return mask


def key_fingerprint(key: jax.Array) -> str:
  """A short SHA-256 fingerprint of a PRNG key (safe to publish; the key is not)."""
  data = np.asarray(jax.random.key_data(key)).tobytes()
  return hashlib.sha256(b"ntga-key:" + data).hexdigest()[:16]


def as_float(x) -> jax.Array:
  """uint8 -> float32 in [0, 1]."""
  return jnp.asarray(x, jnp.float32) / 255.0
