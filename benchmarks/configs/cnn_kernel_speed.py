"""The cnn surrogate's NTK: ntga's kernel vs neural-tangents' (same values).

Kind: :mod:`benchmarks.kinds.cnn_kernel_speed`. Full: 256 x 256 image pairs of
MNIST (28x28x1) and CIFAR-10 (32x32x3) shape, and one NTGA PGD step's
gradient on a block of 512 MNIST training images against 1,000 targets
(t = 64), 3 timed repeats each. Smoke: 8 x 8 pairs of 8x8x1 images and a
16-image digits block against 50 targets.

  python -m benchmarks.run cnn_kernel_speed [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``cnn_kernel_speed`` config (see the module docstring)."""
  config = {"kind": "cnn_kernel_speed",
            "shapes": {"mnist": [28, 28, 1], "cifar10": [32, 32, 3]},
            "pairs": [256, 256],
            "step": {"data": f"{SHARED}/mnist", "block": 512, "targets": 1000,
                     "t": 64.0},
            "repeats": 3}
  if smoke:
    config.update(shapes={"tiny": [8, 8, 1]}, pairs=[8, 8], repeats=1,
                  step={"data": "digits", "block": 16, "targets": 50, "t": 64.0})
  return config
