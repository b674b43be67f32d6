"""NTGA: seconds per PGD step and peak memory per GP predictor (eigh vs Chebyshev) vs block size.

Kind: :mod:`benchmarks.kinds.ntga_predictor_sweep` (one fresh process per
point). NTGA's GP applies phi(K_nn) to the block's labels from an eigh of
K_nn (O(B^3)) or with a Chebyshev series (O(B^2) per term, ``ntga.predict``);
``predictor="auto"`` takes the series from ``ntga.predict.CHEBYSHEV_FROM``
examples on. Full: MNIST, t = 64, target chunks of 250; the fnn surrogate
with 10,000 targets (the paper's validation set) at blocks 256 ... 8,192, the
cnn surrogate with 1,000 targets (as in tables 1 and 2) at blocks 256 ...
1,024; both predictors at every point, up to 3 timed steps after a warm-up
(fewer once a point's timed steps took 60 s), a 1,800 s cap per point and a
12 GiB cap on its resident memory. Each predictor's gradient is compared
with the eigh path's (cosine) wherever both ran; the Chebyshev rows say how
many terms the series took on the clean block.
Smoke: digits, fnn only, one block of 64 (K_nn in three tiles), 100 targets
in chunks of 50.

  python -m benchmarks.run ntga_predictor_sweep [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``ntga_predictor_sweep`` config (see the module docstring)."""
  config = {
      "kind": "ntga_predictor_sweep",
      "data": f"{SHARED}/mnist",
      "blocks": {"fnn": [256, 512, 1024, 2048, 4096, 8192],
                 "cnn": [256, 512, 1024]},
      "targets": {"fnn": 10000, "cnn": 1000},
      "predictors": ["eigh", "chebyshev"],
      "target_chunk": 250,
      "t": 64.0,
      "repeats": 3,
      "point_budget_s": 60.0,
      "point_timeout_s": 1800.0,
      "max_rss_gib": 12.0,
  }
  if smoke:
    config.update(data="digits", blocks={"fnn": [64]},
                  targets={"fnn": 100}, target_chunk=50, repeats=1,
                  point_budget_s=5.0, point_timeout_s=180.0, max_rss_gib=4.0)
  return config
