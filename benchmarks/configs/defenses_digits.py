"""Defenses on clean digits: what each training-time defense costs without a poison.

Every ``--defense`` trains ``fnn-relu`` on the clean 8x8 ``digits`` split
(1,347 training / 450 test images) for 8 epochs with its recipe, seed 0; the
cell is its clean test accuracy. There is no poison here: this shows that each
defense runs and what it costs on clean data (the same as ``ntga evaluate
--train digits --victim fnn-relu --epochs 8 --defense D``). ``ortho``
projects the 10 class directions of a linear model out of clean images too,
so it costs accuracy on clean data, as Sandoval-Segura et al. report.

  python -m benchmarks.run defenses_digits
"""

DEFENSES = ("none", "cutout", "mixup", "cutmix", "at-linf", "at-l2", "jpeg",
            "grayscale", "bdr", "ortho")


def get_config(smoke: bool = False) -> dict:
  """The ``defenses_digits`` table config (see the module docstring)."""
  defenses, epochs = DEFENSES, 8
  if smoke:
    defenses, epochs = ("none", "jpeg"), 1
  data = {"spec": "digits", "limit": None, "test_limit": None}
  cells = [{"row": "fnn-relu", "col": d, "data": data, "attack": None,
            "victim": {"victim": "fnn-relu", "epochs": epochs}, "defense": d,
            "seeds": [0]} for d in defenses]
  return {"kind": "table", "group": "other",
          "title": "Defenses on clean digits (fnn-relu, one seed)",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": ["fnn-relu"], "cols": list(defenses), "paper": {},
          "min_seeds": 1, "cells": cells}
