"""Table 2 of the NTGA paper: CIFAR-10, eps 8/255, surrogates fnn (t = 4096) and cnn (t = 8).

Yuan & Wu, "Neural Tangent Generalization Attacks", ICML 2021, Table 1
(CIFAR-10 rows, at each surrogate's best t). The paper used the true CIFAR-10;
here it is the JPEG copy in ../shared/data (quality 75), so the clean accuracies
differ. Victims fnn, fnn-relu and cnn run on CPU; resnet18 and densenet121
need a GPU and are not in this CPU table.

CPU budget (2 cores): the same stratified 5,000-image training subset
(seed-0 order) and 2,000 test images as table 3; victims with their Adam
recipe (lr 1e-3, batch 128), no augmentation, 10 epochs (fnn, fnn-relu) or 3
epochs (cnn), seeds 0, 1, 2. NTGA with the paper's CIFAR settings (eps 8/255,
10 PGD steps of eps/4, blocks of 512, a 10,000-image target set, clipped to
the training set minus the block); the cnn-surrogate column uses a
1,000-image target set, as in table 1 (its kernel's cost).

  python -m benchmarks.run table2_cifar [--cells 'cnn / *']
"""

from benchmarks.configs import SHARED
from benchmarks.configs.table1_mnist import CNN_TARGETS

PAPER = {  # Yuan & Wu 2021, Table 1 (CIFAR-10), test accuracy in %
    "cnn": {"clean": 78.12, "NTGA fnn t=4096": 36.05, "NTGA cnn t=8": 40.52},
}


def get_config(smoke: bool = False) -> dict:
  """The ``table2_cifar`` table config (see the module docstring)."""
  data = {"spec": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz",
          "limit": 5000, "test_limit": 2000}
  victims = {"fnn": 10, "fnn-relu": 10, "cnn": 3}
  fnn = {"surrogate": "fnn", "t": 4096.0}
  cnn = {"surrogate": "cnn", "t": 8.0, "target_size": CNN_TARGETS}
  seeds = [0, 1, 2]
  if smoke:
    data = {"spec": "digits", "limit": 200, "test_limit": 100}
    victims = {"fnn-relu": 1}
    tiny = {"block_size": 50, "target_size": 100, "steps": 2}
    fnn, cnn = {**fnn, **tiny}, {**cnn, **tiny}
    seeds = [0]
  attacks = {
      "clean": None,
      "NTGA fnn t=4096": {"name": "ntga", "seed": 0, "ratio": None,
                          "settings": fnn},
      "NTGA cnn t=8": {"name": "ntga", "seed": 0, "ratio": None,
                       "settings": cnn},
  }
  if smoke:
    del attacks["NTGA cnn t=8"]
  cells = [{"row": victim, "col": col, "data": data, "attack": attack,
            "victim": {"victim": victim, "epochs": epochs, "augment": "none"},
            "defense": "none", "seeds": seeds}
           for victim, epochs in victims.items()
           for col, attack in attacks.items()]
  return {"kind": "table",
          "title": "Table 2: NTGA on CIFAR-10 (JPEG copy, eps 8/255), CPU victims",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": list(victims), "cols": list(attacks), "paper": PAPER,
          "cells": cells}
