"""``ntga demo``: NTGA on the embedded digits set, end to end, in minutes.

1. Load scikit-learn's 8x8 ``digits`` (train/test split of ``ntga.data``).
2. Poison the whole training split with NTGA (FNN surrogate, the paper's
   MNIST settings: eps 0.3, t 64, 10 PGD steps).
3. Train small Flax victims on the clean and on the poisoned training set and
   test both on the clean test set.
4. Print the comparison and save ``demo.png`` (clean | poisoned | amplified
   perturbation, a few per class) beside ``train.npz`` and ``manifest.json``.

Example:

  $ ntga demo --out ntga-demo
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DEMO_VICTIMS = ("fnn-relu", "cnn")
DEMO_EPOCHS = 10
DEMO_BLOCK_SIZE = 512


def save_figure(path: Path, x_clean: np.ndarray, x_poisoned: np.ndarray,
                y: np.ndarray, class_names: tuple[str, ...],
                per_class: int = 2) -> None:
  """Saves a grid: per class, ``per_class`` triples clean | poisoned | delta.

  The perturbation is shown amplified to the full grey range (mid-grey = 0).

  Args:
    path: the PNG to write (atomically).
    x_clean: clean uint8 images (N, H, W, C).
    x_poisoned: poisoned uint8 images, same shape.
    y: labels (N,).
    class_names: one name per class (row labels).
    per_class: triples per class.

  Example:
    >>> save_figure(Path("demo.png"), train.x, x_poisoned, train.y,
    ...             train.class_names)
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from ntga import io  # pylint: disable=g-import-not-at-top

  classes = list(range(len(class_names)))
  # A bare Figure draws with the Agg canvas of savefig: no pyplot state and
  # no matplotlib backend switch, so calling this changes nothing global.
  fig = Figure(figsize=(1.2 * 3 * per_class, 1.2 * len(classes)))
  axes = fig.subplots(len(classes), 3 * per_class, squeeze=False)
  titles = ("clean", "poisoned", "delta x amp")
  for row, c in enumerate(classes):
    picks = np.flatnonzero(y == c)[:per_class]
    for j in range(per_class):
      trio = [None, None, None]
      if j < len(picks):
        a = x_clean[picks[j]].astype(np.float32) / 255
        b = x_poisoned[picks[j]].astype(np.float32) / 255
        d = b - a
        scale = max(float(np.abs(d).max()), 1e-8)
        trio = [a, b, 0.5 + 0.5 * d / scale]
      for k in range(3):
        ax = axes[row, 3 * j + k]
        ax.set_xticks([])
        ax.set_yticks([])
        if trio[k] is not None:
          img = trio[k]
          cmap = "gray" if img.shape[-1] == 1 else None
          ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap=cmap,
                    vmin=0, vmax=1, interpolation="nearest")
        if row == 0:
          ax.set_title(titles[k], fontsize=8)
      axes[row, 0].set_ylabel(class_names[c], rotation=0, labelpad=12)
  fig.suptitle("NTGA on digits: clean | poisoned | amplified perturbation")
  fig.tight_layout()
  io.atomic_write(path, lambda f: fig.savefig(f, dpi=80, format="png"))


def main(out: str = "ntga-demo", seed: int = 0, overwrite: bool = False,
         victims: tuple[str, ...] = DEMO_VICTIMS, epochs: int = DEMO_EPOCHS
         ) -> int:
  """Runs the demo and returns the process exit status (0).

  Args:
    out: output folder (must be empty unless ``overwrite``).
    seed: PRNG seed for NTGA and the victims.
    overwrite: allow a non-empty ``out``.
    victims: victim model names to train.
    epochs: training epochs per victim.

  Returns:
    0 on success.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import attacks, data, io  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top
  from ntga.pgd import NTGAConfig  # pylint: disable=g-import-not-at-top
  from ntga.victims.train import TrainConfig, train_and_evaluate  # pylint: disable=g-import-not-at-top

  start = time.time()
  folder = io.prepare_output(out, overwrite=overwrite)
  train, test = data.load("digits", "train"), data.load("digits", "test")
  print(f"digits: {len(train)} train / {len(test)} test images, "
        f"{train.x.shape[1]}x{train.x.shape[2]}")

  config = NTGAConfig(surrogate="fnn", block_size=DEMO_BLOCK_SIZE)
  manifest, x_poisoned = pipeline.poison_dataset(attacks.get("ntga"), config,
                                                 train, seed=seed, out=folder)
  manifest["input"] = pipeline.input_record(train, "digits")
  io.write_run(folder, x_poisoned, train.y, train.index, train.class_names,
               manifest)
  pipeline.remove_checkpoints(folder)
  poisoned = data.Dataset(x_poisoned, train.y, train.class_names, train.index)

  rows = []
  for name in victims:
    accs = []
    for ds in (train, poisoned):
      metrics = train_and_evaluate(
          jax.random.key(seed), ds, test,
          TrainConfig(victim=name, epochs=epochs), progress=False)
      accs.append(metrics)
    rows.append((name, accs[0], accs[1]))

  save_figure(folder / "demo.png", train.x, x_poisoned, train.y,
              train.class_names)
  results = [{"victim": n, "clean_trained": c["final_test_accuracy"],
              "poison_trained": p["final_test_accuracy"],
              "clean_trained_peak": c["peak_test_accuracy"],
              "poison_trained_peak": p["peak_test_accuracy"]}
             for n, c, p in rows]
  io.write_json(folder / "demo_results.json",
                {"epochs": epochs, "seed": seed, "victims": results})

  print(f"\nNTGA (fnn surrogate, eps {manifest['config']['eps']:.2f}, "
        f"t {manifest['config']['t']:g}); clean test accuracy after "
        f"{epochs} epochs:")
  print(f"  {'victim':<10} {'clean-trained':>14} {'poison-trained':>15}")
  for r in results:
    print(f"  {r['victim']:<10} {100 * r['clean_trained']:>13.1f}% "
          f"{100 * r['poison_trained']:>14.1f}%")
  print(f"\nwrote {folder}/train.npz, manifest.json, demo.png "
        f"({time.time() - start:.0f} s)")
  return 0
