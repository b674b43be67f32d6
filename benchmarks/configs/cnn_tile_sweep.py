"""The cnn surrogate's NTK in sub-tiles: time per image pair vs sub-tile shape.

Kind: :mod:`benchmarks.kinds.cnn_tile_sweep`. Full: one outer tile of
250 x 512 image pairs (the largest ``ntga.pgd`` builds: a target chunk by a
column tile) of random images of MNIST (28x28x1) and CIFAR-10 (32x32x3)
shape; value and gradient with respect to the 512 column images (as in
K_mn) and to both sides (as in K_nn), whole and in each sub-tile shape
below, 3 timed calls each after a warm-up; the machine's matmul rate in the
same process. Smoke: 8 x 8 pairs of 8x8x1 images, both gradients, sub-tiles
of 4 x 4 and 3 x 8.

  python -m benchmarks.run cnn_tile_sweep [--smoke]
"""


def get_config(smoke: bool = False) -> dict:
  """The ``cnn_tile_sweep`` config (see the module docstring)."""
  config = {"kind": "cnn_tile_sweep",
            "shapes": {"mnist": [28, 28, 1], "cifar10": [32, 32, 3]},
            "gradients": ["columns", "both"],
            "outer": [250, 512],
            "tiles": [[250, 128], [125, 256], [125, 128], [125, 64], [50, 128],
                      [50, 64], [25, 64], [25, 32]],
            "repeats": 3,
            "matmul_n": 2048}
  if smoke:
    config.update(shapes={"tiny": [8, 8, 1]}, outer=[8, 8],
                  tiles=[[4, 4], [3, 8]], repeats=1, matmul_n=256)
  return config
