"""Seconds per NTGA PGD step on one block: ntga vs. the reference code's scheme.

Kind: :mod:`benchmarks.kinds.ntga_step_speed`. Both variants compute the
gradient of the same loss with respect to the block's pixels: (a) ntga,
float32, K_nn and its eigendecomposition once per step, the target set
streamed in chunks of 250 with rematerialisation; (b) the scheme of the
reference code (Yuan & Wu's ``generate_attack.py``), float64, the target set
in 30-example slices with K_nn rebuilt and eigendecomposed for every slice
inside the differentiated function. Full: a block of 512 MNIST training
images, FNN surrogate, a 10,000-example target set, t = 64, cross-entropy;
(a) timed 3 times after a warm-up (the median counts), (b) once after
compiling. Targets: (a) at least 50x faster than (b), and (a) at most
0.25 s per step on 2 cores (issue 18). Smoke: 32 digits images, 60 targets,
1 repeat.

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
