"""Victims x defenses on NTGA-poisoned MNIST (one seed).

**Poison**: the class-stratified 10,000-image subset of the MNIST training
split (1,000 per class), NTGA with its defaults for greyscale data (FNN
surrogate, L_inf eps 0.3, t = 64, 10 steps of 0.075, seed 0). The clean
columns train on the same 10,000 clean images. **Test set**: the full clean
MNIST test split (10,000 images), untouched by any defense.

**Victims** (recipe defaults: Adam lr 1e-3, batch 128, constant schedule, no
weight decay, no augmentation for 1-channel images): ``fnn`` = erf MLP with
NTK init and MSE loss (the NTGA paper's FNN), ``fnn-relu`` = the same MLP
with ReLU and cross-entropy, ``cnn`` = the NTGA paper's small CNN.
**Epochs**: ``fnn`` and ``fnn-relu`` 10, ``cnn`` 3, the same for every column
of a victim. **Seed** 0 everywhere (the tables above use 3). ``jpeg`` uses
quality 10; ``ortho`` as it was defined then (linear model 20 epochs, Adam lr 1e-2; now
the options ``ortho_linear=adam, ortho_fit_on=projected``) and
projects only the training images; ``at-linf`` uses the poison's budget, 7
PGD steps of 0.1 with a uniform random start, also on the clean set as a
control.

Reading the table:

* The poison works on all three victims: trained on the poisoned set, ``fnn``
  and ``fnn-relu`` end far *below* chance while fitting their training set
  (the training accuracy table): they learn the planted perturbation-to-label
  shortcut, which maps clean test digits to wrong classes. ``cnn`` after 3
  epochs is still rising.

* ``grayscale`` is an identity on 1-channel MNIST: every per-epoch number
  equals the ``none`` run bit for bit, so that column is a determinism check,
  not a defense result.

* ``jpeg`` (quality 10) does not help on this poison at these epochs;
  ``ortho`` helps partly.

* ``at-linf`` at eps 0.3 is not informative here: the victims do not learn at
  all, poisoned or clean (training accuracy stays at chance; see the clean
  at-linf column), so these cells measure that eps-0.3 PGD training of these
  small models from scratch for 3-10 epochs does not get off the ground, not
  whether adversarial training removes the poison. Madry et al. train their
  MNIST CNN for ~100k steps (here 234 for ``cnn``, 780 for the MLPs) and
  common practice ramps eps up from 0; a fair cell needs both.

  python -m benchmarks.run defenses_ntga_mnist [--cells 'cnn / *']
"""

from benchmarks.configs import SHARED

VICTIMS = {"fnn": 10, "fnn-relu": 10, "cnn": 3}
AT = {"at_eps": 0.3, "at_steps": 7, "at_step_size": 0.1}
# column -> (poisoned?, defense, victim settings beyond the recipe)
COLUMNS = {
    "clean": (False, "none", {}),
    "clean at-linf": (False, "at-linf", AT),
    "none": (True, "none", {}),
    "jpeg": (True, "jpeg", {}),
    "grayscale": (True, "grayscale", {}),
    "at-linf": (True, "at-linf", AT),
    "ortho": (True, "ortho", {}),
}
CLEAN_AT_VICTIMS = ("fnn", "fnn-relu")  # the clean at-linf controls


def get_config(smoke: bool = False) -> dict:
  """The ``defenses_ntga_mnist`` table config (see the module docstring)."""
  data = {"spec": f"{SHARED}/mnist", "limit": 10000, "test_limit": None}
  ntga = {"name": "ntga", "seed": 0, "ratio": None, "settings": {}}
  victims, columns = VICTIMS, COLUMNS
  if smoke:
    data = {"spec": "digits", "limit": 200, "test_limit": 100}
    ntga = {**ntga, "settings": {"block_size": 50, "target_size": 100, "steps": 2}}
    victims = {"fnn-relu": 1}
    columns = {k: COLUMNS[k] for k in ("clean", "none", "jpeg")}
  cells = [{"row": victim, "col": col, "data": data,
            "attack": ntga if poisoned else None,
            "victim": {"victim": victim, "epochs": epochs, **settings},
            "defense": defense, "seeds": [0]}
           for victim, epochs in victims.items()
           for col, (poisoned, defense, settings) in columns.items()
           if col != "clean at-linf" or victim in CLEAN_AT_VICTIMS]
  return {"kind": "table", "group": "other",
          "title": "Victims x defenses on NTGA-poisoned MNIST (one seed)",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": list(victims), "cols": list(columns), "paper": {},
          "min_seeds": 1, "cells": cells}
