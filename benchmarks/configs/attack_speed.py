"""Generation wall-clock and images/second of attacks, per dataset.

Each attack's ``poison`` call is timed as a CLI run sees it (JIT compilation
included, data loading excluded), once per (dataset, attack).
Full: MNIST train (60,000) and CIFAR-10 train (50,000, the JPEG tarball) with
random, cuda, ops (full splits), ntga (fnn surrogate, paper settings; a
10,000-image subset) and em / rem (their ``cpu()`` presets; a 5,000-image
subset): on 2 CPU cores a full split of these takes hours. Smoke: 100 digits
images, random/cuda/ops.

  python -m benchmarks.run attack_speed [--smoke]
"""

from benchmarks.configs import SHARED, cpu_preset


def get_config(smoke: bool = False) -> dict:
  """The ``attack_speed`` config (see the module docstring)."""
  config = {
      "kind": "attack_speed",
      "datasets": [
          {"spec": f"{SHARED}/mnist", "limit": None},
          {"spec": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz", "limit": None},
      ],
      "attacks": [
          {"name": "random", "settings": {}},
          {"name": "cuda", "settings": {}},
          {"name": "ops", "settings": {}},
          {"name": "ntga", "settings": {"surrogate": "fnn"}, "limit": 10000},
          {"name": "em", "settings": cpu_preset("em"), "limit": 5000},
          {"name": "rem", "settings": cpu_preset("rem"), "limit": 5000},
      ],
      "seed": 0,
  }
  if smoke:
    config["datasets"] = [{"spec": "digits", "limit": 100}]
    config["attacks"] = config["attacks"][:3]
  return config
