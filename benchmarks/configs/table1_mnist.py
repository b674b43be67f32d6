"""Table 1 of the NTGA paper: MNIST, eps 0.3, surrogates fnn and cnn, t = 1 and 64.

Yuan & Wu, "Neural Tangent Generalization Attacks", ICML 2021, Table 1 (MNIST
rows). Victims fnn, fnn-relu and cnn are trained on the clean, the
random-noise and the NTGA-poisoned training set and tested on the clean test
set. The paper's "NTGA(best)" is its best t, which for MNIST is t = 64 (both
surrogates); its "NTGA(1)" is t = 1 (their values for these columns are not
quoted here, only the clean and best ones).

CPU budget (2 cores): the paper poisons and trains on all 60,000 images on a
GPU; here every column uses the same stratified 10,000-image subset of the
training set (seed-0 order) and the full 10,000-image clean test set, and each
victim trains with its Adam recipe (lr 1e-3, batch 128) for 10 epochs (fnn,
fnn-relu) or 3 epochs (cnn), seeds 0, 1, 2. NTGA uses the paper's MNIST
settings (eps 0.3, 10 PGD steps of eps/4, blocks of 512, a 10,000-image target
set drawn from the training set). The cnn-surrogate columns use a
1,000-image target set instead: that kernel (per-pixel covariances through two
convolutions) takes ~3 s per PGD step of a 512-image block against 1,000
targets on these 2 cores (``cnn_kernel_speed``); on the shared machine the
poisoning took ~17 minutes per column.
Random noise is uniform in [-eps, eps].

  python -m benchmarks.run table1_mnist [--cells 'cnn / *']
"""

from benchmarks.configs import SHARED

EPS = 0.3
CNN_TARGETS = 1000  # the cnn surrogate's target set on CPU (docstring)
PAPER = {  # Yuan & Wu 2021, Table 1 (MNIST): clean and NTGA(best) test accuracy, %
    "fnn": {"clean": 96.26, "NTGA fnn t=64": 2.57},
    "fnn-relu": {"clean": 97.87, "NTGA fnn t=64": 2.18},
    "cnn": {"clean": 99.49, "NTGA fnn t=64": 26.03, "NTGA cnn t=64": 15.64},
}


def _attacks(smoke: bool) -> dict:
  fnn = {"surrogate": "fnn"}
  cnn = {"surrogate": "cnn", "target_size": CNN_TARGETS}
  if smoke:
    fnn = {"surrogate": "fnn", "block_size": 50, "target_size": 100, "steps": 2}
    cnn = {**fnn, "surrogate": "cnn"}
  return {
      "clean": None,
      "random": {"name": "random", "seed": 0, "ratio": None,
                 "settings": {"eps": EPS}},
      "NTGA fnn t=1": {"name": "ntga", "seed": 0, "ratio": None,
                       "settings": {**fnn, "t": 1.0}},
      "NTGA fnn t=64": {"name": "ntga", "seed": 0, "ratio": None,
                        "settings": {**fnn, "t": 64.0}},
      "NTGA cnn t=1": {"name": "ntga", "seed": 0, "ratio": None,
                       "settings": {**cnn, "t": 1.0}},
      "NTGA cnn t=64": {"name": "ntga", "seed": 0, "ratio": None,
                        "settings": {**cnn, "t": 64.0}},
  }


def get_config(smoke: bool = False) -> dict:
  """The ``table1_mnist`` table config (see the module docstring)."""
  data = {"spec": f"{SHARED}/mnist", "limit": 10000, "test_limit": None}
  victims = {"fnn": 10, "fnn-relu": 10, "cnn": 3}
  seeds = [0, 1, 2]
  if smoke:
    data = {"spec": "digits", "limit": 200, "test_limit": 100}
    victims = {"fnn-relu": 1}
    seeds = [0]
  attacks = _attacks(smoke)
  if smoke:
    attacks = {k: attacks[k] for k in ("clean", "random", "NTGA fnn t=64",
                                       "NTGA cnn t=64")}
  cells = [{"row": victim, "col": col, "data": data, "attack": attack,
            "victim": {"victim": victim, "epochs": epochs}, "defense": "none",
            "seeds": seeds}
           for victim, epochs in victims.items()
           for col, attack in attacks.items()]
  return {"kind": "table", "title": "Table 1: NTGA on MNIST (eps 0.3)",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": list(victims), "cols": list(attacks), "paper": PAPER,
          "cells": cells}
