"""EM and REM against the ``fast`` victim on a 10,000-image CIFAR-10 subset (issue 14).

The first 10,000 training images of the CIFAR-10 JPEG copy are poisoned with
EM and with REM at their CPU presets (``ntga poison --attack em --preset
cpu``; :meth:`ntga.attacks.em.EMConfig.cpu`, :meth:`ntga.attacks.rem.REMConfig.cpu`)
and judged by ``fast`` trained on that subset (its recipe, 6 epochs), tested
on all 10,000 clean test images, 3 seeds per cell. Columns: ``none`` (no
augmentation), ``augmentation`` (the recipe's flip + 2 px translation) and
``at-4/255``: PGD adversarial training at radius 4/255, the radius REM's
paper protects against, with 4 steps of 2/255 from a random start (REM's
evaluation uses 10 steps of 0.8/255; 4 of 2/255 keep its reach of twice the
radius at 2/5 of the cost, the rule of the REM CPU preset's adversary) and
``AT_EPOCHS`` epochs instead of the recipe's 6, since adversarial training
needs longer to fit. Column ``fgsm-at-4/255``, for clean and em only, is
single-step fast adversarial training (FGSM from a random start, step 5/255
= 1.25 x radius, Wong et al., ICLR 2020) at the recipe's 6 epochs, which
this table used first: on ``fast`` it is unstable (clean accuracy ended
between 25% and 51% over the three seeds, falling in the last epochs of
one: the pattern of catastrophic overfitting, Wong et al.), so it is kept
as that evidence, not as the defense. ``AT_EPOCHS`` = 12 doubles the
recipe's length.

Row ``rem-1000`` is REM with the CPU preset's every setting but its length:
1,000 source iterations of batch 128 (the learning rate decayed at 400 and
800) instead of 400, which makes as many epochs over the 10,000 images
(12.8) as the paper's 5,000 iterations make over CIFAR-10, at 2.5 times the
preset's cost; judged under adversarial training only, with seed 0 alone
(marked "1 seed"; see below).

What this checks: EM drops ``fast`` to <= 30% (the ISS paper reports EM at
21% on ResNet-18), and under adversarial training REM keeps ``fast`` at least
20 points below EM and clean data (REM's claim, Fu et al., ICLR 2022).

What it showed (3 seeds per cell unless marked): EM holds without a defense
(11.4% against 71.5% clean) but not under adversarial training at 4/255
(64.2% against 59.9% clean: the EM noise even helps). REM at the CPU preset
(400 source iterations) holds less than EM without a defense (30.86% with no
augmentation, 30.04% with the recipe's), but under adversarial training it
keeps ``fast`` at 46.9%: 13.0 points below clean and 17.4 below EM, short of
the claimed 20. Its source model ended at 84% on its own adversarial
poisoned batches and 42% on clean ones, and half the noise's pixels sit at
+-8/255. The REM poisoning ran in two sittings (about 1.5 hours in all; the
record's 2,370 s is the second one). The paper's number of source epochs
(row ``rem-1000``) does not close the gap, it widens it: its source model
learned far more (98.5% on its own adversarial poisoned batches and 55% on
clean images at the end, from 51% and 28% at its first learning-rate decay),
about half the noise's pixels again sit at +-8/255, and yet adversarial
training on it reaches 56.25% (seed 0), 8.1 points above the highest of
``rem``'s three seeds (48.11%) and 3.8 below clean seed 0 (60.00%). Its
poisoning took 3.4 hours (12,183 s of wall clock over three sittings, from
the poison's manifest; the record's wall clock is only the sitting that
found every seed trained). With the one seed already that far from ``rem``,
the other two were not trained, and table 5's rem row keeps the CPU preset's
400 iterations.

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
                             "at_step_size": AT_EPS / 2, "epochs": AT_EPOCHS}),
    "fgsm-at-4/255": ("at-linf", {"augment": "none", "at_eps": AT_EPS, "at_steps": 1,
                                  "at_step_size": 1.25 * AT_EPS}),
}
# Rows judged in only some columns (the rest: every column): REM is not
# judged by fast adversarial training, rem-1000 by PGD training only.
COLUMNS_OF = {"rem": ("none", "augmentation", "at-4/255"), "rem-1000": ("at-4/255",)}
# REM with as many source epochs over the subset as the paper's 5,000
# iterations make over CIFAR-10 (12.8): 1,000 iterations of batch 128, the
# learning rate decayed at 40% and 80% of them as in the preset.
REM_ITERATIONS = 1000
# rem-1000 trains seed 0 only (marked "1 seed"): that seed already ended 8
# points above every seed of ``rem`` (see the module docstring), so two more
# 23-minute trainings would not change the reading.
REM_1000_SEEDS = [0]
# Published ResNet-18 value, no defense (ISS, Liu et al., ICML 2023).
PAPER = {"em": {"none": 21.0}}


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
    rows["rem-1000"] = entry("rem", cpu_preset(
        "rem", total_train_steps=REM_ITERATIONS, lr_decay_steps=REM_ITERATIONS * 2 // 5))
  cells = [{"row": row, "col": col, "data": data, "attack": attack,
            "victim": {**victim, **settings}, "defense": defense,
            "seeds": REM_1000_SEEDS if row == "rem-1000" else seeds}
           for row, attack in rows.items()
           for col, (defense, settings) in columns.items()
           if col in COLUMNS_OF.get(row, (col,))]
  return {"kind": "table",
          "title": "EM and REM on a 10,000-image CIFAR-10 subset (JPEG copy), "
                   "fast victim",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": list(rows), "cols": list(columns), "paper": PAPER,
          "min_seeds": 1, "cells": cells}
