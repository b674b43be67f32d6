"""What the orthogonal-projection defense costs on clean CIFAR-10 (issue 14).

The ``fast`` victim with crop-flip augmentation on the whole clean CIFAR-10
JPEG copy (50,000 training, 10,000 test images), with and without the
``ortho`` defense (as its authors' code runs it: see
:class:`ntga.victims.defenses.OrthogonalProjection`; its linear model's
batches in one class-mixed order, its strong augmentation, test images not
projected), 3 seeds each. The defense removes linearly separable
shortcuts; on clean data it should cost at most 5 points.

  python -m benchmarks.run ortho_cifar_full
"""

from benchmarks.configs import SHARED

SEEDS = [0, 1, 2]
# label -> (defense, victim settings beyond the recipe)
COLUMNS = {"augmentation": ("none", {"augment": "crop-flip"}),
           "ortho + augmentation": ("ortho", {"augment": "crop-flip"})}


def get_config(smoke: bool = False) -> dict:
  """The ``ortho_cifar_full`` table config (see the module docstring)."""
  data = {"spec": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz",
          "limit": None, "test_limit": None}
  victim, seeds = {"victim": "fast"}, SEEDS
  if smoke:  # one short training per column
    data = {"spec": "digits", "limit": 200, "test_limit": 100}
    victim, seeds = {**victim, "epochs": 1, "batch_size": 64}, [0]
  cells = [{"row": "clean", "col": col, "data": data, "attack": None,
            "victim": {**victim, **settings}, "defense": defense, "seeds": seeds}
           for col, (defense, settings) in COLUMNS.items()]
  return {"kind": "table",
          "title": "Orthogonal projection on clean CIFAR-10 (JPEG copy), fast victim",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": ["clean"], "cols": list(COLUMNS), "paper": {},
          "cells": cells}
