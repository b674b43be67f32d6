"""NTGA: seconds per PGD step, peak RSS and kernel FLOP rate vs block size.

Kind: :mod:`benchmarks.kinds.ntga_block_sweep` (one fresh process per point; the
machine's matmul rate is measured in the same run). Full: MNIST, surrogates
fnn and cnn, blocks 256 ... 4,096, t = 64, target chunks of 250 (the
library's default), the library's GP predictor (``predictor="auto"``: eigh
below ``ntga.predict.CHEBYSHEV_FROM`` block images, the Chebyshev series
from there on), up to 3 timed steps after a warm-up (fewer once a point's
timed steps took 60 s), a 1,800 s cap per point and a 12 GiB cap on a
point's resident memory, because the 2-core machine is shared: a point
whose planned memory passes the cap is recorded as ``over_rss_cap_planned``
with its FLOP count and XLA's plan, one that passes it while running as
``rss_cap_exceeded``.

Target sets differ per surrogate: 10,000 for fnn (the paper's validation set)
but 1,000 for cnn (as in tables 1 and 2), whose diagonal-spatial kernel costs
~2.6 us per MNIST image pair for value and gradient here (``cnn_kernel_speed``), far
more than fnn's (compare the FLOP columns). Every kernel is built in tiles,
rematerialised in the backward pass: the block's own K_nn in square tiles of
at most 250 images a side, its upper triangle only
(``ntga.pgd.block_kernel``), and K_mn in tiles of a target chunk by at most
``ntga.pgd.COLUMN_TILE`` (512) block images (``ntga.pgd.tiled_kernel``), so
only the block's n x n arrays grow quadratically with the block. The FLOP
rate divides XLA's FLOP count of the kernel pieces (one K_nn tile and one
K_mn tile, forward + backward, each compiled and timed alone, counted once
per tile the step builds) by their timed seconds; "kernels' % of the step"
is those pieces' seconds over the whole step's, above 100% where the fused
step does the same kernel work faster than its pieces timed one by one.
Smoke: digits, one block of 64 (K_nn in three tiles), 100 targets in chunks
of 50.

  python -m benchmarks.run ntga_block_sweep [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``ntga_block_sweep`` config (see the module docstring)."""
  config = {
      "kind": "ntga_block_sweep",
      "data": f"{SHARED}/mnist",
      "surrogates": ["fnn", "cnn"],
      "blocks": [256, 512, 1024, 2048, 4096],
      "targets": {"fnn": 10000, "cnn": 1000},
      "target_chunk": 250,
      "t": 64.0,
      "repeats": 3,
      "point_budget_s": 60.0,
      "point_timeout_s": 1800.0,
      "max_rss_gib": 12.0,
      "matmul_n": 2048,
      "matmul_repeats": 5,
  }
  if smoke:
    config.update(data="digits", blocks=[64],
                  targets={"fnn": 100, "cnn": 100}, target_chunk=50, repeats=1,
                  point_budget_s=5.0, point_timeout_s=120.0, max_rss_gib=4.0,
                  matmul_n=256, matmul_repeats=3)
  return config
