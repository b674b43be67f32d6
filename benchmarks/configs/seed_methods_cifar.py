"""EM and REM against the ``fast`` victim on a 10,000-image CIFAR-10 subset (issue 14).

A class-stratified 10,000-image subset of the CIFAR-10 JPEG copy's training
split (1,000 per class) is poisoned with EM and with REM at their CPU
presets (``ntga poison --attack em --preset cpu``;
:meth:`ntga.attacks.em.EMConfig.cpu`,
:meth:`ntga.attacks.rem.REMConfig.cpu`) and judged by ``fast`` trained on
that subset (its recipe, 6 epochs), tested on all 10,000 clean test images,
3 seeds per cell. Columns: ``none`` (no augmentation), ``augmentation`` (the
recipe's flip + 2 px translation) and ``at-4/255``: PGD adversarial training
at radius 4/255, the radius REM's paper protects against, with 4 steps of
2/255 from a random start (REM's evaluation uses 10 steps of 0.8/255; 4 of
2/255 keep its reach of twice the radius at 2/5 of the cost, the rule of the
REM CPU preset's adversary) and ``AT_EPOCHS`` = 12 epochs instead of the
recipe's 6, since adversarial training needs longer to fit, and without the
recipe's label smoothing, as REM's adversarial training uses plain
cross-entropy. Multi-step, because single-step FGSM training overfits
catastrophically on ``fast`` (``at_fast_screen``). Row ``rem-1000``: REM's
CPU preset with 1,000 source iterations instead of 400 (12.8 epochs of the
subset, the paper's number of epochs of source training), learning rate
decayed at 400 and 800, judged under adversarial training only.

What this checks: EM drops ``fast`` to <= 30% (the ISS paper reports EM at
21% on ResNet-18), and under adversarial training REM keeps ``fast`` at least
20 points below EM and clean data (REM's claim, Fu et al., ICLR 2022).

What it showed so far: without a defense, EM's CPU preset drops ``fast``
from 71.16 +- 0.49 to 11.18 +- 1.47 (3 seeds), near chance and below both
the 30% target and ISS's 21% on ResNet-18, while the victim fits the
poisoned training images to 100%: it learns the noise, not the images.
The recipe's flip + 2 px translation does not break it (11.02 +- 0.42,
clean 71.55 +- 0.33). REM's CPU preset (poisoning the 10,000 images took
4,592 s on 2 idle cores) drops it to 16.23 +- 1.01 without a defense, 5
points above EM, though its noise is made against an adversarially trained
source model; with the recipe's augmentation, 19.53 +- 2.17. Under
adversarial training at 4/255, clean data gives 60.72 +- 0.87, EM
64.55 +- 0.97 (above clean: adversarial training removes EM's effect,
the weakness REM's paper starts from) and REM 44.94 +- 2.27 (its peak,
45.20, lies at or near the last of the 12 epochs): 19.6 points below EM
and 15.8 below clean, short of the 20 below both that REM's claim asks.
Clean adversarial training on these 10,000 images reaches only ~61%,
which leaves little room below it. A longer-trained source model does not
close the gap, it widens it: with 1,000 source iterations (row
``rem-1000``) REM keeps adversarially trained ``fast`` at 54.85 +- 0.79,
only 5.9 below clean and 9.7 below EM, and the victim fits those poisoned
training images better (76.7% in the last epoch, against 62.4% for the
400-iteration noise). REM's claim (20 below both) does not hold on this
victim at this scale with either source schedule. The paper's setting
(5,000 source iterations on 50,000 images, 10 noise and 10 adversary
steps, 5 EOT samples, against the preset's 400, 5, 4 and 2) is out of
reach of 2 cores.

  python -m benchmarks.run seed_methods_cifar [--cells 'em / *']
"""

from benchmarks.configs import SHARED, cpu_preset

SEEDS = [0, 1, 2]
SUBSET = 10000
AT_EPS = 4 / 255
AT_EPOCHS = 12
COLUMNS = {  # label -> (defense, victim settings beyond the recipe)
    "none": ("none", {"augment": "none"}),
    "augmentation": ("none", {"augment": "crop-flip"}),
    "at-4/255": ("at-linf", {"augment": "none", "at_eps": AT_EPS, "at_steps": 4,
                             "at_step_size": AT_EPS / 2, "epochs": AT_EPOCHS,
                             "label_smoothing": 0.0}),
}
# Published ResNet-18 value, no defense (ISS, Liu et al., ICML 2023).
PAPER = {"em": {"none": 21.0}}
# REM's CPU preset with a longer-trained source model: the paper's 12.8 epochs
# of source training (5,000 iterations of 128 on 50,000 images) on the subset,
# the learning rate decayed at 40% and 80% as in the preset. Judged under
# adversarial training only, the column REM's claim is about.
REM_LONG = {"total_train_steps": 1000, "lr_decay_steps": 400}


def get_config(smoke: bool = False) -> dict:
  """The ``seed_methods_cifar`` table config (see the module docstring)."""
  data = {"spec": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz",
          "limit": SUBSET, "test_limit": None}
  em, rem = cpu_preset("em"), cpu_preset("rem")
  victim, seeds, columns = {"victim": "fast"}, SEEDS, COLUMNS
  if smoke:
    data = {"spec": "digits", "limit": 200, "test_limit": 100}
    em = {**em, "max_rounds": 1, "train_steps": 2, "noise_steps": 1, "batch_size": 64}
    victim, seeds = {"victim": "fast", "epochs": 1, "batch_size": 64}, [0]
    columns = {k: (d, {**v, "epochs": 1}) for k, (d, v) in COLUMNS.items()
               if k in ("none", "at-4/255")}
  entry = lambda name, settings: {"name": name, "seed": 0, "ratio": None,  # noqa: E731
                                  "settings": settings}
  rows = {"clean": None, "em": entry("em", em)}
  if not smoke:
    rows["rem"] = entry("rem", rem)
    rows["rem-1000"] = entry("rem", cpu_preset("rem", **REM_LONG))
  columns_of = {"rem-1000": ("at-4/255",)}
  cells = [{"row": row, "col": col, "data": data, "attack": attack,
            "victim": {**victim, **settings}, "defense": defense, "seeds": seeds}
           for row, attack in rows.items()
           for col, (defense, settings) in columns.items()
           if col in columns_of.get(row, (col,))]
  return {"kind": "table",
          "title": "EM and REM on a 10,000-image CIFAR-10 subset (JPEG copy), "
                   "fast victim",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": list(rows), "cols": list(columns), "paper": PAPER,
          "cells": cells}
