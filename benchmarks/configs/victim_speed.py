"""Victim training throughput (images/s, GFLOP/s, share of the matmul rate).

Kind: :mod:`benchmarks.kinds.victim_speed`. Full: 4,096 CIFAR-10 training images
(JPEG copy), 2 epochs per victim (the second is timed), victims ``fast`` and
``cnn`` with their recipes (batch 512 and 128); 3x3 convolution layers at the
shapes of the ``fast`` victim's blocks and of airbench94's / ResNet-18's
(batch 256); a 2,048 x 2,048 matmul before and after.
Smoke: 64 digits images, the ``fast`` victim, one small layer.

  python -m benchmarks.run victim_speed [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``victim_speed`` config (see the module docstring)."""
  config = {
      "kind": "victim_speed",
      "data": {"spec": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz",
               "limit": 4096, "test_limit": 1000},
      "victims": [{"victim": "fast"}, {"victim": "cnn"}],
      "epochs": 2, "seed": 0,
      "layers": [[256, 31, 24, 32], [256, 15, 32, 32], [256, 15, 32, 128],
                 [256, 7, 128, 128], [256, 32, 64, 64], [256, 16, 128, 128],
                 [256, 8, 256, 256]],
      "repeats": 3, "matmul_n": 2048,
  }
  if smoke:
    config.update(data={"spec": "digits", "limit": 64, "test_limit": 32},
                  victims=[{"victim": "fast", "batch_size": 32}],
                  layers=[[4, 8, 4, 8]], repeats=1, matmul_n=128)
  return config
