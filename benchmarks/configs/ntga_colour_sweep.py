"""Which NTGA settings transfer to ``fast`` on colour images (issue 15, screening).

NTGA (fnn surrogate) poisons the first 10,000 training images of the CIFAR-10
JPEG copy under one setting per row, and ``fast`` (its recipe, 6 epochs, no
augmentation) trained on them is tested on all 10,000 clean test images,
seed 0. Rows vary one setting at a time from the base row ``pgd-10``, the
library's default (eps 8/255, 10 PGD steps of eps/4 from the clean image,
t = 4096, blocks of 512, a 10,000-image target set = the whole subset with
each block's own images held out):

* ``1-step``: the authors' released update (one step of the full eps);
* ``pgd-10 eps/2``, ``pgd-20 eps/8``: step size and count;
* ``random start``: PGD from a uniform point of the eps-ball;
* ``t=...``: GP training time (the authors note a smaller t suits
  early-stopped victims); ``t=512 random start`` combines the two changes
  that helped;
* ``block ...``: block size (B-NTGA);
* ``targets ...``: target-set size;
* ``cnn t=8 targets 1000``: the cnn surrogate at the paper's t = 8 with a
  1,000-image target set (what its cost affords here), beside the fnn
  surrogate at its colour default t = 512 with the same 1,000 targets
  (``t=512 targets 1000``).

This is a screen on a subset (a poisoning takes minutes here); the settings
it ranks best are then confirmed on the whole CIFAR-10 in table 5.

Its records were made while ``fast`` fitted its input normalisation and
whitening on the first 5,000 training images (classes 0-4 of this
class-sorted subset) instead of on every image; the choice it made was
not screened again with the corrected victim.

  python -m benchmarks.run ntga_colour_sweep [--cells 't=*']
"""

from benchmarks.configs import SHARED

SUBSET = 10000
EPS = 8 / 255
BASE = {"surrogate": "fnn", "t": 4096.0, "steps": 10, "step_size": EPS / 4,
        "block_size": 512, "target_size": 10000}
VARIANTS = {  # row label -> settings that differ from BASE
    "pgd-10": {},
    "1-step": {"steps": 1, "step_size": EPS},
    "pgd-10 eps/2": {"step_size": EPS / 2},
    "pgd-20 eps/8": {"steps": 20, "step_size": EPS / 8},
    "random start": {"random_start": True},
    "t=64": {"t": 64.0},
    "t=256": {"t": 256.0},
    "t=512": {"t": 512.0},
    "t=1024": {"t": 1024.0},
    "t=512 random start": {"t": 512.0, "random_start": True},
    "t=65536": {"t": 65536.0},
    "t=1e6": {"t": 1e6},
    "block 128": {"block_size": 128},
    "block 2048": {"block_size": 2048},
    "targets 1000": {"target_size": 1000},
    "targets 3000": {"target_size": 3000},
    "t=512 targets 1000": {"t": 512.0, "target_size": 1000},
    "cnn t=8 targets 1000": {"surrogate": "cnn", "t": 8.0, "target_size": 1000},
}


def get_config(smoke: bool = False) -> dict:
  """The ``ntga_colour_sweep`` table config (see the module docstring)."""
  data = {"spec": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz",
          "limit": SUBSET, "test_limit": None}
  victim = {"victim": "fast", "augment": "none"}
  base, variants = BASE, VARIANTS
  if smoke:
    data = {"spec": "digits", "limit": 200, "test_limit": 100}
    victim = {**victim, "epochs": 1, "batch_size": 64}
    base = {**BASE, "block_size": 50, "target_size": 100, "steps": 2}
    variants = {k: VARIANTS[k] for k in ("pgd-10", "1-step")}
  rows = {"clean": None}
  rows.update({label: {"name": "ntga", "seed": 0, "ratio": None,
                       "settings": {**base, **change}}
               for label, change in variants.items()})
  cells = [{"row": row, "col": "none", "data": data, "attack": attack,
            "victim": victim, "defense": "none", "seeds": [0]}
           for row, attack in rows.items()]
  return {"kind": "table",
          "title": "NTGA settings on a 10,000-image CIFAR-10 subset (JPEG copy), "
                   "fast victim",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": list(rows), "cols": ["none"], "paper": {}, "min_seeds": 1,
          "cells": cells}
