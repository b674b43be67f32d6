"""Writes ``examples/colab_quickstart.ipynb`` (nbformat v4, outputs empty).

The notebook is generated from the cell sources below so that its JSON is
always valid; edit this file and re-run it rather than editing the notebook by
hand.

Example:

  $ python examples/build_colab_quickstart.py
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
from nbformat import v4

NOTEBOOK = Path(__file__).with_name("colab_quickstart.ipynb")

INTRO = """\
# NTGA quickstart: make a dataset unlearnable

**NTGA** (Neural Tangent Generalization Attack; Chia-Hung Yuan and Shan-Hung
Wu, *Neural Tangent Generalization Attacks*, ICML 2021) adds a small, bounded
perturbation to every training image so that a network trained on the
published images generalises poorly to clean test data, while the images look
unchanged to people. It uses the neural tangent kernel of an infinitely wide
network, which gives a closed-form Gaussian-process prediction of what a wide
network learns from the data, and runs projected gradient ascent on the pixels
to make that prediction fail on held-out examples.

This notebook poisons scikit-learn's embedded 8x8 `digits` set (no download),
shows clean, poisoned and perturbation images side by side, then trains the
same small Flax network on the clean and on the poisoned training set and
compares their clean test accuracy. With the default settings it runs in one to
two minutes on a CPU (about 70 s on 2 cores); a GPU runtime is not needed."""

INSTALL = """\
# Install ntga. On Colab only: anywhere else this cell installs nothing
# (install ntga yourself first, e.g. `pip install -e .` in the repository).
import importlib.util
import subprocess
import sys
from pathlib import Path

# Replace OWNER/ntga with the repository you want to install from (your fork
# or the upstream project). It is used only on Colab when no local checkout
# of ntga is found.
NTGA_GIT_URL = "https://github.com/OWNER/ntga"


def _local_checkout():
  \"\"\"The ntga checkout containing the working directory, if any.\"\"\"
  for folder in (Path.cwd(), *Path.cwd().parents):
    if (folder / "setup.cfg").is_file() and (folder / "ntga").is_dir():
      return folder
  return None


if "google.colab" in sys.modules:
  checkout = _local_checkout()
  target = ["-e", str(checkout)] if checkout else [f"ntga @ git+{NTGA_GIT_URL}"]
  print("installing ntga from", target[-1])
  subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *target])
elif importlib.util.find_spec("ntga") is None:
  print("ntga is not installed in this kernel's Python "
        f"({sys.executable}): run `pip install -e .` in the ntga repository, "
        "then restart the kernel.")
else:
  print("not on Colab: using the installed ntga")"""

PARAMS_MD = """\
## Settings

The defaults poison the whole training split (1,347 images) with the paper's
MNIST settings (eps 0.3, 10 PGD steps, blocks of 512) and train each victim
for 10 epochs. Smaller values give a faster, rougher run."""

PARAMS = """\
LIMIT = None         # training images to poison (None: all 1,347)
TEST_LIMIT = None    # clean test images (None: all 450)
BLOCK_SIZE = 512     # training images poisoned together (paper: 512)
TARGET_SIZE = 10000  # held-out target set drawn from the training data (capped at its size)
STEPS = 10           # PGD steps (paper: 10)
VICTIM = "fnn-relu"  # victim network (victims.models.NAMES)
EPOCHS = 10          # training epochs per victim
SEED = 0
OUT = "ntga-quickstart"  # folder for the figures"""

LOAD_MD = """\
## Load the data

`ntga.data.load` returns uint8 NHWC images with int64 labels; `digits` is a
fixed, stratified 75/25 train/test split."""

LOAD = """\
import time
from pathlib import Path

import jax
import numpy as np
from IPython.display import Image, display

from ntga import data

out = Path(OUT)
out.mkdir(parents=True, exist_ok=True)
key = jax.random.key(SEED)
train = data.load("digits", "train", limit=LIMIT)
test = data.load("digits", "test", limit=TEST_LIMIT)
print(f"digits: {len(train.x)} train / {len(test.x)} test images of shape "
      f"{train.x.shape[1:]}, {len(train.class_names)} classes; "
      f"{len(jax.devices())} {jax.default_backend()} device(s)")"""

POISON_MD = """\
## Poison the training images

`ntga.pgd.poison` is a pure function of a PRNG key, the images, the labels
and a frozen config (plus a `RunContext` that only says how to run, e.g. with
a progress bar); `None` fields of the config (eps, GP time `t`, step size)
take the paper's values for the data, as `config.resolved(image_shape)` shows.
Here the surrogate is the NTK of a fully-connected network (`fnn`)."""

POISON = """\
from ntga.pgd import NTGAConfig, poison
from ntga.protocol import RunContext

config = NTGAConfig(surrogate="fnn", block_size=BLOCK_SIZE,
                    target_size=TARGET_SIZE, steps=STEPS)
resolved = config.resolved(train.x.shape[1:])
start = time.perf_counter()
x_poisoned = poison(jax.random.fold_in(key, 0), train.x, train.y, config,
                    RunContext(progress=True))
delta = x_poisoned.astype(np.int16) - train.x.astype(np.int16)
assert np.abs(delta).max() <= round(resolved.eps * 255), "perturbation out of bounds"
print(f"poisoned {len(x_poisoned)} images in {time.perf_counter() - start:.1f} s "
      f"(eps {resolved.eps:g}, t {resolved.t:g}); max |delta| = "
      f"{np.abs(delta).max()} / 255, mean |delta| = {np.abs(delta).mean():.1f} / 255")"""

GRID_MD = """\
## Look at the images

Two examples per class: the clean image, the poisoned one, and the
perturbation amplified to the full grey range (mid-grey means no change)."""

GRID = """\
from ntga.demo import save_figure

grid_path = out / "clean_poisoned_delta.png"
save_figure(grid_path, train.x, x_poisoned, train.y, train.class_names)
display(Image(filename=str(grid_path)))"""

TRAIN_MD = """\
## Train a victim on clean and on poisoned data

The same network, initialisation and batch order (same key) are trained on
each training set; only the pixels differ. Accuracy is measured on the clean
test split after every epoch."""

TRAIN = """\
from ntga.victims.train import TrainConfig, train_and_evaluate

poisoned = data.Dataset(x_poisoned, train.y, train.class_names, train.index)
train_config = TrainConfig(victim=VICTIM, epochs=EPOCHS)
metrics = {}
for name, dataset in (("clean", train), ("poisoned", poisoned)):
  metrics[name] = train_and_evaluate(jax.random.fold_in(key, 1), dataset, test,
                                     train_config, progress=False)
  print(f"{name:>8}: {metrics[name]['wall_clock_s']:.1f} s, test accuracy per "
        "epoch", [round(a, 3) for a in metrics[name]["test_accuracy"]])"""

CURVES = """\
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

fig = Figure(figsize=(5, 3.2))
ax = fig.subplots()
for name, style in (("clean", "o-"), ("poisoned", "s--")):
  acc = 100 * np.asarray(metrics[name]["test_accuracy"])
  ax.plot(np.arange(1, len(acc) + 1), acc, style, label=f"trained on {name} data")
ax.set_xlabel("epoch")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.set_ylabel("clean test accuracy (%)")
ax.set_ylim(0, 100)
ax.set_title(f"{VICTIM} on digits, NTGA eps {resolved.eps:g}")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
curves_path = out / "learning_curves.png"
fig.savefig(curves_path, dpi=100)
display(Image(filename=str(curves_path)))"""

RESULT = """\
clean_acc = metrics["clean"]["final_test_accuracy"]
poisoned_acc = metrics["poisoned"]["final_test_accuracy"]
print(f"Clean test accuracy of {VICTIM} after {EPOCHS} epochs:")
print(f"  trained on clean data:    {100 * clean_acc:5.1f}%")
print(f"  trained on poisoned data: {100 * poisoned_acc:5.1f}%")
print(f"  drop: {100 * (clean_acc - poisoned_acc):.1f} percentage points")"""

OUTRO = """\
## Next steps

* The command line does the same on your own data and writes a reusable
  output folder: `ntga poison --data /path/to/images --out runs/mine`, then
  `ntga evaluate --train runs/mine --test /path/to/images --victim cnn`.
* `NTGAConfig(surrogate="cnn")` uses a convolutional NTK, better for colour
  images such as CIFAR-10; `attacks/` holds other poisoners (CUDA, OPS,
  EM/REM) and `victims/` the defenses to test them against."""


def _code(source: str, **metadata) -> nbformat.NotebookNode:
  return v4.new_code_cell(textwrap.dedent(source), metadata=metadata)


def build() -> nbformat.NotebookNode:
  """Returns the quickstart notebook with empty outputs."""
  cells = [
      v4.new_markdown_cell(INTRO),
      _code(INSTALL),
      v4.new_markdown_cell(PARAMS_MD),
      _code(PARAMS, tags=["parameters"]),
      v4.new_markdown_cell(LOAD_MD),
      _code(LOAD),
      v4.new_markdown_cell(POISON_MD),
      _code(POISON),
      v4.new_markdown_cell(GRID_MD),
      _code(GRID),
      v4.new_markdown_cell(TRAIN_MD),
      _code(TRAIN),
      _code(CURVES),
      _code(RESULT),
      v4.new_markdown_cell(OUTRO),
  ]
  nb = v4.new_notebook(cells=cells, metadata={
      "kernelspec": {"name": "python3", "display_name": "Python 3",
                     "language": "python"},
      "language_info": {"name": "python"},
      "colab": {"provenance": []},
  })
  # Stable cell ids so that regenerating gives the same file.
  for i, cell in enumerate(nb.cells):
    cell["id"] = f"cell-{i:02d}"
  nbformat.validate(nb)
  return nb


def main() -> None:
  nbformat.write(build(), NOTEBOOK)
  print(f"wrote {NOTEBOOK}")


if __name__ == "__main__":
  main()
