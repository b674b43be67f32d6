"""NTGA with the cnn surrogate on CIFAR-10 at the paper's 10,000-image target set.

One 512-image block of the CIFAR-10 JPEG copy against 10,000 targets (the
paper's validation set size; tables 1, 2 and 5 use 1,000 here), t = 8 as in
the paper's cnn setting, target chunks of 250: seconds per PGD step, peak
memory and the kernels' FLOP rate, measured as ``ntga_block_sweep`` measures
them (same kind, same rules). A full poisoning of the 50,000 training images
at 10 steps costs 98 blocks x 10 steps x the seconds per step.

  python -m benchmarks.run ntga_cnn_cifar_step [--smoke]
"""

from benchmarks.configs import SHARED, ntga_block_sweep


def get_config(smoke: bool = False) -> dict:
  """The ``ntga_cnn_cifar_step`` config (see the module docstring)."""
  config = ntga_block_sweep.get_config(smoke)
  config.update(surrogates=["cnn"], t=8.0)
  if not smoke:
    config.update(data=f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz", blocks=[512],
                  targets={"cnn": 10000})
  return config
