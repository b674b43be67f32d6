"""Table 4: partial poisoning, NTGA and cuda at ratio 0.2 / 0.5 / 0.8 / 1.0 on MNIST.

Only a seeded random fraction of the training set is poisoned (the rest stays
clean; ``ntga poison --ratio``); the cnn victim is trained on the mix and
tested on the clean test set. The NTGA paper (Yuan & Wu, ICML 2021) and the
CUDA paper (Sadasivan et al., CVPR 2023) both report that unlearnability
fades quickly as clean data is mixed in; no numbers are quoted here.

CPU budget (2 cores): the same stratified 10,000-image MNIST training subset
(seed-0 order) and full clean test set as table 1; cnn victim, its Adam recipe
(lr 1e-3, batch 128), 3 epochs, seeds 0, 1, 2. NTGA: fnn surrogate, t = 64,
eps 0.3 and the rest of the paper's MNIST settings (the ratio-1.0 cell is
table 1's "cnn / NTGA fnn t=64" cell). cuda: its paper defaults (3x3 filters,
pb 0.3). Ratio 0.0 is the clean training set.

  python -m benchmarks.run table4_ratio [--cells 'ntga / *']
"""

from benchmarks.configs import SHARED

RATIOS = (0.0, 0.2, 0.5, 0.8, 1.0)


def get_config(smoke: bool = False) -> dict:
  """The ``table4_ratio`` table config (see the module docstring)."""
  data = {"spec": f"{SHARED}/mnist", "limit": 10000, "test_limit": None}
  victim = {"victim": "cnn", "epochs": 3}
  ntga = {"surrogate": "fnn", "t": 64.0}
  seeds = [0, 1, 2]
  if smoke:
    data = {"spec": "digits", "limit": 200, "test_limit": 100}
    victim = {"victim": "fnn-relu", "epochs": 1}
    ntga = {"surrogate": "fnn", "t": 64.0, "block_size": 50,
            "target_size": 100, "steps": 2}
    seeds = [0]
  ratios = (0.0, 0.5, 1.0) if smoke else RATIOS
  settings = {"ntga": ntga, "cuda": {}}
  cells = []
  for name, s in settings.items():
    for ratio in ratios:
      attack = None
      if ratio > 0:
        attack = {"name": name, "seed": 0,
                  "ratio": None if ratio == 1.0 else ratio, "settings": s}
      cells.append({"row": name, "col": f"{ratio:.1f}", "data": data,
                    "attack": attack, "victim": victim, "defense": "none",
                    "seeds": seeds})
  return {"kind": "table",
          "title": "Table 4: partial poisoning on MNIST (cnn victim)",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": list(settings), "cols": [f"{r:.1f}" for r in ratios],
          "paper": {}, "cells": cells}
