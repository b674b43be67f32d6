"""NTGA on 10,000 MNIST images against a plain 2-hidden-layer ReLU MLP.

Kind: :mod:`benchmarks.kinds.mlp_poison`. NTGA with its defaults for greyscale
data (the paper's MNIST settings: FNN surrogate, eps 0.3, t = 64, 10 steps of
0.075, blocks of 512, a 10,000-image target set; seed 0) poisons the
class-stratified 10,000-image subset of the MNIST training split; a
784-512-512-10 ReLU MLP (Adam lr 1e-3, batch 128, 20 epochs) is trained on the
clean and on the poisoned subset with seeds 0, 1, 2 and tested on the clean
10,000-image test split. Smoke: 200 digits images, a tiny NTGA, 1 epoch.

  python -m benchmarks.run ntga_mnist [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``ntga_mnist`` config (see the module docstring)."""
  config = {"kind": "mlp_poison",
            "data": {"spec": f"{SHARED}/mnist", "limit": 10000, "test_limit": None},
            "attack": {"name": "ntga", "seed": 0, "settings": {}},
            "mlp": {"hidden": [512, 512], "epochs": 20, "batch_size": 128,
                    "lr": 0.001},
            "seeds": [0, 1, 2]}
  if smoke:
    config.update(
        data={"spec": "digits", "limit": 200, "test_limit": 100},
        attack={"name": "ntga", "seed": 0,
                "settings": {"block_size": 50, "target_size": 100, "steps": 2}},
        mlp={"hidden": [64], "epochs": 1, "batch_size": 32, "lr": 0.001},
        seeds=[0])
  return config
