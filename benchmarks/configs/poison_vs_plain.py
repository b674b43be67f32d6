"""Whole `ntga poison` run vs a plain float64 NTGA (one eigh per block per step)

Kind: :mod:`benchmarks.kinds.poison_vs_plain`. Two programs poison the same
images with the same blocks, target set and settings (fnn surrogate, L_inf
eps 0.3, step eps / 4, seed 0), each timed in a fresh process from start to
written output: (a) ``ntga poison --attack ntga``; (b) ``python -m
benchmarks.plain_ntga``, a plain float64 implementation of the same math
(neural-tangents' kernel, K_nn and K_mn computed whole, one ``eigh`` per
block per step with autodiff through it, a Python loop over blocks and
steps). Full: the first 4,096 MNIST training images of the class-stratified
order, blocks of 2,048, 2,000 targets, 10 steps, t = 64 (issue 18). Target:
(a) at least 3x faster than (b) in wall clock. Also recorded: CPU time, peak
RSS, each output's largest change in levels and the fraction of pixels where
both outputs agree. Smoke: 120 digits images, blocks of 60, 40 targets, 2
steps.

  python -m benchmarks.run poison_vs_plain [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``poison_vs_plain`` config (see the module docstring)."""
  config = {"kind": "poison_vs_plain", "data": f"{SHARED}/mnist", "limit": 4096,
            "block": 2048, "targets": 2000, "steps": 10, "t": 64.0}
  if smoke:
    config.update(data="digits", limit=120, block=60, targets=40, steps=2)
  return config
