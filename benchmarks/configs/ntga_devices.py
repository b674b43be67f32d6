"""NTGA on 1, 2 and 4 simulated CPU devices: throughput and identical outputs.

Kind: :mod:`benchmarks.kinds.ntga_devices`. The same 2,048 MNIST training
images are poisoned with NTGA (FNN surrogate, blocks of 256, a 1,000-image
target set, the rest of the paper's MNIST settings, seed 0) in a fresh
process per device count, the blocks sharded over the devices; the outputs
must be bit-identical. The simulated devices share the machine's cores, so
this measures the overhead of sharding, not a speed-up. Smoke: 64 digits
images, blocks of 32, 50 targets, 2 steps, 1 and 2 devices.

  python -m benchmarks.run ntga_devices [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``ntga_devices`` config (see the module docstring)."""
  config = {"kind": "ntga_devices",
            "data": {"spec": f"{SHARED}/mnist", "limit": 2048},
            "settings": {"block_size": 256, "target_size": 1000},
            "devices": [1, 2, 4], "seed": 0}
  if smoke:
    config.update(data={"spec": "digits", "limit": 64},
                  settings={"block_size": 32, "target_size": 50, "steps": 2},
                  devices=[1, 2])
  return config
