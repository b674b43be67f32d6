"""Random-noise baselines: sample-wise and class-wise uniform noise in [-eps, eps].

The control every unlearnable-examples table reports next to the real attacks
(e.g. Huang et al., "Unlearnable Examples", ICLR 2021, Table 1): noise of the
same L_inf budget but no optimisation. Sample-wise noise draws an independent
perturbation per image; class-wise noise draws one per class and adds it to
every image of that class.

Example:
  >>> cfg = RandomConfig(eps=8 / 255, mode="class")
  >>> x_p = poison(jax.random.key(0), x, y, cfg)
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ntga.attacks import _common
from ntga.protocol import AttackConfig, RunContext


@dataclasses.dataclass(frozen=True, kw_only=True)
class RandomConfig(AttackConfig):
  """Settings of the random-noise baseline.

  Attributes:
    eps: L_inf radius in [0, 1] units, in (0, 1]; default 8/255 as in the
      CIFAR-10 tables of Huang et al. (2021).
    mode: "sample" (one noise per image) or "class" (one noise per class).
    batch_size: images per jitted chunk (memory only; results do not depend on it).
  """

  eps: float = 8 / 255
  mode: str = "sample"
  batch_size: int = 4096

  def __post_init__(self):
    self.validate()

  def validate(self):
    """Raises ConfigError for out-of-range settings."""
    _common.check_types(self)
    _common.check_range(self, "eps", 0.0, 1.0, lo_open=True)
    _common.check_choice(self, "mode", ("sample", "class"))
    _common.check_range(self, "batch_size", 1, 1 << 30)


@functools.partial(jax.jit, static_argnames="shape")
def _noise_rows(key, idx, eps, shape):
  """Uniform noise in [-eps, eps] for rows ``idx``; a row depends only on its index."""
  draw = lambda i: jax.random.uniform(jax.random.fold_in(key, i), shape, jnp.float32, -1.0, 1.0)
  return jax.vmap(draw)(idx) * eps


def poison(key: jax.Array, x, y, config: RandomConfig = RandomConfig(),
           context: RunContext = RunContext()) -> np.ndarray:
  """Adds uniform random noise in [-eps, eps] (sample- or class-wise).

  Args:
    key: PRNG key.
    x: uint8 images (N, H, W, C).
    y: int labels (N,).
    config: settings.
    context: labels must lie below ``num_classes`` (class-wise noise is drawn
      for the classes present; a class's noise depends only on its index).
      One pass: no checkpoints, no progress bar.

  Returns:
    uint8 images of x's shape, each within eps of the clean one after rounding.

  Example:
    >>> x_p = poison(jax.random.key(0), x, y, RandomConfig())
  """
  x, y = _common.check_inputs(x, y, context.num_classes)
  config.validate()
  out = np.empty_like(x)
  shape = x.shape[1:]
  if config.mode == "class":
    ckey = jax.random.fold_in(key, 1)
    per_class = np.asarray(_noise_rows(ckey, jnp.arange(_common.num_classes(y)), config.eps, shape))
  skey = jax.random.fold_in(key, 0)
  b = config.batch_size
  for i in range(0, len(x), b):
    if config.mode == "class":
      delta = per_class[y[i:i + b]]
    else:
      delta = np.asarray(_noise_rows(skey, jnp.arange(i, min(i + b, len(x))), config.eps, shape))
    xf = x[i:i + b].astype(np.float32) / 255.0 + delta
    out[i:i + b] = _common.to_uint8_within(x[i:i + b], np.clip(xf, 0.0, 1.0), config.eps)
  return out
