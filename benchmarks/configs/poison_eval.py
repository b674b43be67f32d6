"""Poison a dataset, then train victims (with defenses) on it, over seeds.

Full: NTGA (FNN surrogate, the paper's MNIST settings) on 10,000 MNIST training
images; a fnn-relu victim (its Adam recipe, 20 epochs) trained on the clean and
on the poisoned set, tested on the clean MNIST test set; seeds 0, 1, 2.
Smoke: 200 digits images, a tiny NTGA, 1 epoch.

  python -m benchmarks.run poison_eval [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``poison_eval`` config (see the module docstring)."""
  config = {
      "kind": "poison_eval",
      "data": {"spec": f"{SHARED}/mnist", "limit": 10000, "test_limit": None},
      "attack": {"name": "ntga", "seed": 0, "ratio": None,
                 "settings": {"surrogate": "fnn"}},
      "clean_baseline": True,
      "victims": [{"victim": "fnn-relu"}],
      "defenses": ["none"],
      "seeds": [0, 1, 2],
  }
  if smoke:
    config["data"] = {"spec": "digits", "limit": 200, "test_limit": 200}
    config["attack"]["settings"] = {"surrogate": "fnn", "block_size": 50,
                                    "target_size": 100, "steps": 2}
    config["victims"] = [{"victim": "fnn-relu", "epochs": 1}]
  return config
