"""Table 5: attack x defense on the whole CIFAR-10 (JPEG copy), judged by ``fast``.

Every attack (and the clean set) against every defense, at full scale: all
50,000 training images are poisoned and all 10,000 clean test images judge
the victim, the ``fast`` victim with its own recipe (see
:mod:`ntga.victims.train`; 6 epochs, ~15 minutes per training on 2 cores). Column
``none`` trains with 3 seeds and no augmentation at all; every other column
with seed 0 only (marked "1 seed"): ``augmentation`` is the recipe's own
flip + 2 px translation, every other column is that defense alone, as in
table 3, except ``at-linf``: single-step adversarial training at eps 8/255
as N-FGSM (de Jorge et al., NeurIPS 2022; the ``at-nfgsm`` defense), with
the robust test accuracy (PGD-10 at 8/255) measured beside the clean one,
and without the recipe's label smoothing, as N-FGSM's paper trains (smoothed
labels can mask the gradients that PGD needs, overstating robustness).
Table 3's fast adversarial training (FGSM from a random start, step
10/255; Wong et al., ICLR 2020) overfits catastrophically on ``fast``: on
the ``at_fast_screen`` subset it ended at 0.0% robust accuracy, N-FGSM at
16.2% for the same cost. Table 3's definition stays one option away
(``--defense at-linf --at-steps 1 --at-step-size 10/255``). ``ortho`` also
keeps the recipe's crop and flip, as its authors' training crops and flips
beside its strong augmentation
(:class:`ntga.victims.defenses.OrthogonalProjection`).

Rows: ``ntga`` is the fnn surrogate at the library's colour default (eps
8/255, blocks of 512, a 10,000-image target set, our true 10-step PGD of
eps/4, t = 512: the best t of the ``ntga_colour_sweep`` screen, where the
paper used 4096); ``ntga-1step`` is the authors' released setting (t =
4096, one step of the full eps from the clean image, which is what their
published data used); ``ntga-aware`` is ``ntga`` with defense-aware
poisoning through all three squeezes the victim may apply
(``defense_aware=grayscale,jpeg,augment``: the GP sees each block greyed,
JPEG-10 compressed and randomly cropped and flipped, see
:mod:`ntga.defense_aware`; not in any paper), judged without a defense and
under those three only, and ``ntga-aware-gray``, ``-jpeg``, ``-aug`` each
fold in one of them and are judged in that defense's column only
(``-jpeg`` with Shin & Song's cubic rounding, ``jpeg_rounding=cubic``,
which the ``ntga_aware_screen`` subset screen found to transfer where the
straight-through one did not, with t = 64 and 20 PGD steps of eps/8, which
that screen found better under JPEG-10 than t = 512 and 10 steps of
eps/4); ``ntga-cnn`` is the cnn surrogate at the paper's t = 8 with a
2,500-image target set, chosen as the largest that would poison the 50,000
images in about 2 hours here: a PGD step of a 512-image block against
10,000 targets took 20.9 s (``ntga_cnn_cifar_step``), ~1 s of it the
block's own K_nn and ~0.5 s per 250-target chunk, which predicted ~6 s per
step for 2,500 targets, ~1.6 hours for 98 blocks x 10 steps. The poisoning
itself took 8513 s (2.4 hours, on a quiet machine, over two sittings
resumed from its per-block checkpoints): the step timing predicted only
two thirds of it, so 2,500 targets is already past the 2 hours and a
larger set would not fit. Cuda and ops run at their papers' defaults, em
and rem with their CPU presets (``ntga.attacks.em.EMConfig.cpu``,
``ntga.attacks.rem.REMConfig.cpu``: the best settings that fit here; REM's
400 source iterations are about one epoch of the 50,000 images); random
noise uniform in [-8/255, 8/255].

Beside each cell, the published ResNet-18 value on true CIFAR-10 where one
exists: NTGA paper (Yuan & Wu, ICML 2021) Table 1 for clean and ntga's
``none``;
ISS (Liu et al., ICML 2023) for ntga under grayscale and JPEG-10; the
APBench leaderboard (Qin et al., 2023) for the rest. The published NTGA
values stand beside both NTGA rows: they come from the authors' one-step
update, so ``ntga-1step`` is the like-for-like comparison and ``ntga``
shows what the true PGD and t = 512 change.

Reading (the table is whole; the ``none`` column has 3 seeds, every other
cell 1 seed): a poison "holds" against a defense where ``fast`` trained on
it stays far below the clean row in that column, and "breaks" where it
comes back level with it. Without a defense every real attack is strong on
``fast`` (em 10.73, ntga 11.63, ntga-cnn 12.51, ops 14.15, cuda 17.00,
ntga-1step 20.03, rem 23.11, against 86.17 clean), and random noise in the
same budget does nothing (85.62). The recipe's crop and flip breaks none
of them (10.21 to 28.38, against 86.50 clean). JPEG-10 breaks every
sample-wise attack (ntga 70.28, ntga-1step 71.80, ntga-cnn 70.95, em
79.16, rem 73.20, against 79.51 clean) and ops (64.75); only cuda holds
(26.08), and JPEG-aware NTGA part of the way (49.15). Grayscale: cuda and
ops hold (16.36, 10.69), and so do grayscale-aware NTGA (19.29) and,
mostly, ntga-cnn (24.19, peak 56.77); ntga, ntga-1step and rem give way in
part (37.19, 47.91, 51.54), em mostly (65.35, against 84.50 clean). bdr:
cuda, ops and rem hold (28.13, 12.15, 36.16), ntga-cnn nearly as well
(39.13); ntga, em and ntga-1step give way in part (55.65, 52.68, 64.45,
against 78.03 clean). N-FGSM adversarial training at 8/255 breaks ntga,
ntga-1step, ntga-cnn, em and rem for clean accuracy (63.42-65.97 against
64.25 clean), though rem still halves the robust accuracy (19.14 against
38.34), while cuda and ops hold (29.65, 8.37). Ortho: ntga-cnn, rem, ntga,
cuda and em hold in part (27.45, 28.19, 35.11, 37.85, 38.03 against 77.32
clean), ntga-1step and ops less (55.30, 60.76). The cnn surrogate thus
buys NTGA resistance to grayscale, bdr and ortho (24.19, 39.13, 27.45
against the fnn surrogate's 37.19, 55.65, 35.11), not to JPEG-10 or
N-FGSM, for a poisoning 15 to 18 times as long (8513 s against the fnn
surrogate's 481 and 571 s). So on this victim the class-wise shortcuts
survive the most defenses, cuda all six (16.36 to 37.85); the sample-wise,
model-based poisons (NTGA, EM, REM) are as strong without a defense (10.73
to 23.11, against cuda's 17.00 and ops's 14.15) but lose to JPEG-10 and
adversarial training, and grayscale and bdr undo part of them.

Where this differs from the published ResNet-18 values: without a defense
and under the recipe's augmentation the sample-wise poisons are stronger
here (ntga 11.63 and 12.56 against 39.7 and 22.76; ntga-1step 20.03
against 39.7; em 10.21 against 20.78 under augmentation), while ops and
rem are weaker under augmentation (28.38 against 14.69, 26.27 against
17.47); grayscale undoes less here (ntga 37.19 against ISS's 74.3, em
65.35 against 92.03, rem 51.54 against 92.27, ops 10.69 against 19.88);
under JPEG-10 ntga and em agree (70.28 against 69.5, 79.16 against 80.72),
while ops and rem keep more here (64.75 against 78.48, 73.20 against
85.44); under bdr ntga agrees (55.65 against 59.32), ops and rem hold
better here (12.15 against 37.32, 36.16 against 58.60) and em worse (52.68
against 37.94). The published at-linf values are APBench's multi-step
adversarial training, not N-FGSM, so they compare only in direction: both
break ntga, em and rem (64.55, 65.29 and 65.97 here; 69.70, 82.51 and
77.46 there) and both leave ops holding (8.37 here, 14.95 there).

Row by row:
without a defense, ``fast`` reaches 86.17 +- 0.40% on the clean set (3
seeds; ResNet-18 in the NTGA paper: 91.9%); on clean data (1 seed each)
augmentation and grayscale cost it little (86.50, 84.50), JPEG-10 and bdr
cost it 6.7 and 8.1 points (79.51, 78.03), and N-FGSM adversarial
training at 8/255 22 points (64.25, robust accuracy 38.34%); ortho, with
its authors' strong augmentation, 77.32, 9.2 below the recipe's
augmentation alone (as in ``ortho_cifar_full``). Cuda drops ``fast`` to
17.00 +- 1.28% (3 seeds), below the 30% that issue 14 asks of it, and ops
to 14.15 +- 0.44% (3 seeds), below the 40% it asks of ops (published
ResNet-18: 15-37%). NTGA with the fnn surrogate drops it to 11.63 +-
2.13% (3 seeds), while the victim fits the poisoned training images
completely (100.0% in the last epoch); the NTGA paper's ResNet-18 kept
39.7%. The authors' one-step setting (t = 4096) is weaker on ``fast``,
20.03 +- 3.63% (3 seeds), but still well below their published value.
Random noise within the same L-inf budget leaves it at 85.62 +- 0.16% (3
seeds), 0.55 below clean: the budget alone does little. EM at its ``cpu``
preset (poisoning the 50,000 images took 1569 s, PSNR 33.8 dB) drops it to
10.73 +- 0.66% (3 seeds), level with NTGA within the seeds' spread.
NTGA's row is whole (defense columns 1 seed each): it holds against the
recipe's augmentation (12.56%; APBench's ResNet-18: 22.76), grayscale and
ortho undo part of it (37.19, peak 54.13, and 35.11, against 84.50 and
77.32 on clean data; ISS's ResNet-18 recovered 74.3 under grayscale), bdr
more (55.65 against 78.03 clean; APBench: 59.32), and JPEG-10 and N-FGSM
adversarial training break it (70.28 against 79.51 clean, ISS: 69.5;
64.55 against 64.25 clean, robust accuracy 34.99%, APBench: 69.70).
Cuda's row is whole too: it holds against every defense here, ``fast``
staying at 16-38% (augmentation 27.18, JPEG-10 26.08, grayscale 16.36, bdr
28.13, N-FGSM 29.65 with robust accuracy 12.98%, ortho 37.85; 1 seed each).
Ops's row is whole: it holds against augmentation (28.38; APBench's
ResNet-18: 14.69), grayscale (10.69; APBench: 19.88), bdr (12.15; APBench:
37.32) and N-FGSM adversarial training (8.37, robust accuracy 1.23%;
APBench's AT: 14.95), while JPEG-10 and ortho break it (64.75 against
79.51 clean, APBench: 78.48; 60.76 against 77.32 clean; 1 seed each).
The authors' one-step row (``ntga-1step``) is whole too: level with
``ntga`` under augmentation (12.88; APBench: 22.76), broken like it by
JPEG-10 (71.80; ISS: 69.5) and N-FGSM (63.42, robust accuracy 36.61%;
APBench's AT: 69.70), and weaker than it under grayscale (47.91, peak
50.51; ISS: 74.3), bdr (64.45; APBench: 59.32) and ortho (55.30; 1 seed
each).
Random noise's row is whole: in every column ``fast`` stays within 1.7
points of the clean row (augmentation 86.27, JPEG-10 79.53, grayscale
84.07, bdr 79.67, N-FGSM 65.27 with robust accuracy 39.03%, ortho 76.91;
1 seed each).
EM's row is whole: it holds against the recipe's augmentation (10.21;
APBench's ResNet-18: 20.78) and ortho (38.03 against 77.32 clean),
bdr and grayscale undo part of it (52.68 against 78.03 clean, APBench:
37.94; 65.35 against 84.50 clean, APBench: 92.03), and JPEG-10 and N-FGSM
adversarial training break it (79.16 against 79.51 clean, APBench: 80.72;
65.29 against 64.25 clean, robust accuracy 38.91%, APBench's AT: 82.51;
1 seed each). Its defense columns were judged on a second poisoning with
the same settings and code (969 s), not bit-identical to the first, that
of the ``none`` column: the records' PSNR differ in the second decimal.
The all-aware row (``ntga-aware``, poisoned in 445 s) is whole: folding
the three squeezes into one poisoning undoes NTGA without any defense,
``fast`` reaching 80.25 +- 0.22% (3 seeds; ``ntga``: 11.63), and it is
weaker than plain ``ntga`` in each defense column that judges it
(augmentation 81.98, JPEG-10 74.49, grayscale 62.91, against ``ntga``'s
12.56, 70.28 and 37.19; 1 seed each).
Folding in grayscale alone (``ntga-aware-gray``, poisoned in 406 s) holds
where plain ``ntga`` gave way: under grayscale ``fast`` ends at 19.29%
(peak 41.24; ``ntga``: 37.19, peak 54.13; clean: 84.50; ISS's ResNet-18
on NTGA: 74.3; 1 seed).
Folding in JPEG-10 alone (``ntga-aware-jpeg``, poisoned in 849 s) holds
part of the way: under JPEG-10 ``fast`` ends at 49.15% (``ntga``: 70.28;
clean: 79.51; ISS's ResNet-18 on NTGA: 69.5; 1 seed).
Folding in the crop and flip alone (``ntga-aware-aug``, poisoned in 401 s)
gains nothing over plain ``ntga``, which already held against the recipe's
augmentation: ``fast`` ends at 14.80% under it (peak 16.97; ``ntga``:
12.56; clean: 86.50; APBench's ResNet-18 on NTGA: 22.76; 1 seed).
REM's row is whole. At its ``cpu`` preset (poisoning the 50,000 images
took 4752 s, PSNR 32.1 dB) it drops ``fast`` to 23.11 +- 1.67% (3 seeds),
weaker than EM (10.73) without a defense; it holds against the recipe's
augmentation (26.27; APBench's ResNet-18: 17.47), ortho (28.19 against
77.32 clean) and bdr (36.16 against 78.03 clean; APBench: 58.60),
grayscale undoes part of it (51.54 against 84.50 clean; APBench: 92.27),
and JPEG-10 and N-FGSM adversarial training at 8/255, twice its rho_a of
4/255, break it (73.20 against 79.51 clean, APBench: 85.44; 65.97 against
64.25 clean, APBench's AT: 77.46), although under N-FGSM the robust
accuracy falls to 19.14% (clean: 38.34; 1 seed each).
The cnn surrogate's row (``ntga-cnn``, poisoned in 8513 s, PSNR 30.2 dB)
is whole: it drops ``fast`` to 12.51 +- 3.31% (3 seeds), level with the
fnn surrogate's 11.63 +- 2.13 within the seeds' spread; it holds against
the recipe's augmentation (10.48; ``ntga``: 12.56) and, better than
``ntga``, against grayscale (24.19, peak 56.77; ``ntga``: 37.19; clean:
84.50), ortho (27.45; ``ntga``: 35.11; clean: 77.32) and bdr (39.13;
``ntga``: 55.65; clean: 78.03), and JPEG-10 and N-FGSM adversarial
training break it as they break ``ntga`` (70.95 against 79.51 clean,
``ntga``: 70.28; 64.46 against 64.25 clean, robust accuracy 36.08%,
``ntga``: 64.55 and 34.99%; 1 seed each).

  python -m benchmarks.run table5_cifar_full [--cells 'ntga / *']
"""

from benchmarks.configs import SHARED, cpu_preset, ntga_aware_screen, table3_defenses

# Beside both NTGA rows (module docstring): APBench as quoted in table 3,
# but the NTGA paper without a defense and ISS under grayscale and JPEG-10.
_PAPER_NTGA = {**table3_defenses.PAPER["ntga"], "none": 39.7, "grayscale": 74.3,
               "jpeg": 69.5}
PAPER = {  # ResNet-18, true CIFAR-10 (see the module docstring for sources)
    "clean": {"none": 91.9},
    "ntga": _PAPER_NTGA,
    "ntga-1step": _PAPER_NTGA,
    # APBench, as quoted in table 3.
    **{name: table3_defenses.PAPER[name] for name in ("ops", "em", "rem")},
}

# Columns as in table 3 (label -> (defense, victim settings beyond the
# recipe)), but single-step adversarial training as N-FGSM without label
# smoothing (module docstring) and ortho with the random crop and flip of
# its authors' training.
DEFENSES = {**table3_defenses.DEFENSES,
            "at-linf": ("at-nfgsm", {"augment": "none", "robust_eps": 8 / 255,
                                     "label_smoothing": 0.0}),
            "ortho": ("ortho", {"augment": "crop-flip"})}
NONE_SEEDS = [0, 1, 2]
OTHER_SEEDS = [0]
CNN_TARGETS = 2500
# Single-defense-aware rows: row -> (NTGA settings beyond ``ntga``, the one
# column that judges the row). The JPEG-aware row uses the cubic rounding,
# t = 64 and 20 PGD steps of eps/8: the best of the ``ntga_aware_screen``
# subset screen.
AWARE = {"ntga-aware-gray": ({"defense_aware": "grayscale"}, "grayscale"),
         "ntga-aware-jpeg": ({**ntga_aware_screen.CUBIC, **ntga_aware_screen.PGD_20,
                              "t": 64.0}, "jpeg"),
         "ntga-aware-aug": ({"defense_aware": "augment"}, "augmentation")}
ALL_AWARE = ",".join(change["defense_aware"] for change, _ in AWARE.values())


def _attacks(smoke: bool) -> dict:
  ntga = {"surrogate": "fnn", "t": 512.0, "block_size": 512, "target_size": 10000}
  one_step = {**ntga, "t": 4096.0, "steps": 1, "step_size": 8 / 255}
  cnn = {"surrogate": "cnn", "t": 8.0, "block_size": 512,
         "target_size": CNN_TARGETS}
  if smoke:
    tiny = {"block_size": 50, "target_size": 100}
    ntga, cnn = {**ntga, **tiny, "steps": 2}, {**cnn, **tiny, "steps": 1}
    one_step = {**one_step, **tiny}
  entry = lambda name, settings: {"name": name, "seed": 0, "ratio": None,  # noqa: E731
                                  "settings": settings}
  return {
      "clean": None,
      "random": entry("random", {"eps": 8 / 255}),
      "ntga": entry("ntga", ntga),
      "ntga-1step": entry("ntga", one_step),
      "ntga-aware": entry("ntga", {**ntga, "defense_aware": ALL_AWARE}),
      **{row: entry("ntga", {**ntga, **change})
         for row, (change, _) in AWARE.items()},
      "ntga-cnn": entry("ntga", cnn),
      "cuda": entry("cuda", {}),
      "ops": entry("ops", {}),
      "em": entry("em", cpu_preset("em")),
      "rem": entry("rem", cpu_preset("rem")),
  }


def get_config(smoke: bool = False) -> dict:
  """The ``table5_cifar_full`` table config (see the module docstring)."""
  data = {"spec": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz",
          "limit": None, "test_limit": None}
  attacks = _attacks(smoke)
  defenses = DEFENSES
  victim = {"victim": "fast"}
  if smoke:
    data = {"spec": "digits", "limit": 200, "test_limit": 100}
    attacks = {k: attacks[k] for k in ("clean", "ntga-1step")}
    defenses = {k: DEFENSES[k] for k in ("none", "grayscale")}
    victim = {"victim": "fast", "epochs": 1, "batch_size": 64}
  # A row that folds in defenses is judged under those defenses only (and the
  # all-aware row also without one).
  columns_of = {row: (col,) for row, (_, col) in AWARE.items()}
  columns_of["ntga-aware"] = ("none", "augmentation", "jpeg", "grayscale")
  cells = [{"row": row, "col": col, "data": data, "attack": attack,
            "victim": {**victim, **settings}, "defense": defense,
            "seeds": NONE_SEEDS if col == "none" and not smoke else OTHER_SEEDS}
           for row, attack in attacks.items()
           for col, (defense, settings) in defenses.items()
           if col in columns_of.get(row, (col,))]
  return {"kind": "table",
          "title": "Table 5: attack x defense on the whole CIFAR-10 (JPEG copy), "
                   "fast victim",
          "description": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
          "rows": list(attacks), "cols": list(defenses), "paper": PAPER,
          "min_seeds": 1, "cells": cells}
