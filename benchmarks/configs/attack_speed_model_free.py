"""Model-free poisoners on the full CIFAR-10 training split, as their authors define them.

Kind: :mod:`benchmarks.kinds.attack_speed`. Wall-clock of one ``poison`` call
(JIT compilation included, data loading excluded) of random noise, cuda and
ops with their default configs, which follow the authors' code (cuda: one
filter per class shared by all channels; ops: the pooled mean/std score), on
all 50,000 images of the CIFAR-10 JPEG copy; seed 0. Smoke: 100 digits.

  python -m benchmarks.run attack_speed_model_free [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``attack_speed_model_free`` config (see the module docstring)."""
  config = {
      "kind": "attack_speed",
      "datasets": [{"spec": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz",
                    "limit": None}],
      "attacks": [{"name": name, "settings": {}}
                  for name in ("random", "cuda", "ops")],
      "seed": 0,
  }
  if smoke:
    config["datasets"] = [{"spec": "digits", "limit": 100}]
  return config
