"""Seconds per NTGA PGD step on one block: ntga vs. the reference code's scheme.

Wraps :mod:`benchmarks.ntga_speed` (see its docstring for both variants).
Full: a block of 512 MNIST images, a 10,000-example target set, 3 timed
repeats. Smoke: 32 digits images, 60 targets, 1 repeat.

  python -m benchmarks.run ntga_step_speed [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``ntga_step_speed`` config (see the module docstring)."""
  config = {"kind": "ntga_step_speed", "data": f"{SHARED}/mnist", "block": 512,
            "targets": 10000, "repeats": 3, "t": 64.0}
  if smoke:
    config.update(data="digits", block=32, targets=60, repeats=1)
  return config
