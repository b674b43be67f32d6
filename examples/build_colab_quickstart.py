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
# Install ntga, keeping the JAX this runtime already has (on Colab: its newer
# JAX built for the runtime's CPU, GPU or TPU). Where ntga comes from, first
# match wins:
#   1. NTGA_WHEEL: a wheel built with `python -m build` (or that environment
#      variable), e.g. one uploaded to Colab's files;
#   2. NTGA_GIT_URL: a repository to install from (your fork or upstream);
#   3. an ntga already installed in this kernel's Python, as it is;
#   4. a wheel ntga-*.whl next to this notebook;
#   5. the ntga checkout holding this notebook (or ./ntga after a git clone).
# ntga goes in with --no-deps; of its dependencies, only missing ones or ones
# older than ntga needs are installed, and installed jax/jaxlib (and their
# GPU/TPU plugins) stay pinned as they are.
NTGA_WHEEL = ""    # e.g. "/content/ntga-0.1.0-py3-none-any.whl"
NTGA_GIT_URL = ""  # e.g. "https://github.com/<owner>/ntga"

import importlib
import importlib.metadata as metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

try:
  from packaging.requirements import Requirement
  from packaging.version import Version
except ImportError:  # pip always carries a copy
  from pip._vendor.packaging.requirements import Requirement
  from pip._vendor.packaging.version import Version

# Kept exactly as installed while ntga's dependencies go in.
JAX_PACKAGES = ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt",
                "jax-cuda13-plugin", "jax-cuda13-pjrt", "libtpu")


class InstallError(Exception):
  \"\"\"Stops the notebook with its one-line message, no traceback.\"\"\"

  def _render_traceback_(self):  # how IPython shows this exception
    return [f"ntga install: {self}"]


def _version(name):
  try:
    return metadata.version(name)
  except metadata.PackageNotFoundError:
    return None


def _wheel_version(path):
  return Version(path.name.split("-")[1])


def find_source():
  \"\"\"(pip target, description), or None to use the installed ntga.\"\"\"
  wheel = NTGA_WHEEL or os.environ.get("NTGA_WHEEL", "")
  if wheel:
    if not Path(wheel).is_file():
      raise InstallError(f"NTGA_WHEEL={wheel} is not a file")
    return str(Path(wheel).resolve()), f"wheel {wheel}"
  url = NTGA_GIT_URL or os.environ.get("NTGA_GIT_URL", "")
  if url:
    return f"ntga @ git+{url}", url
  if importlib.util.find_spec("ntga") is not None:
    return None
  wheels = sorted(Path.cwd().glob("ntga-*.whl"), key=_wheel_version)
  if wheels:
    return str(wheels[-1]), f"wheel {wheels[-1].name} next to the notebook"
  for folder in (Path.cwd(), *Path.cwd().parents, Path.cwd() / "ntga"):
    cfg = folder / "setup.cfg"
    if cfg.is_file() and "name = ntga" in cfg.read_text():
      return str(folder), f"checkout {folder}"
  raise InstallError(
      "ntga not found: set NTGA_WHEEL (a built wheel) or NTGA_GIT_URL (its "
      "repository) at the top of this cell, or open the notebook from an "
      "ntga checkout")


def _beyond(spec, have):
  \"\"\"Whether version ``have`` lies above the upper bound ``spec``.\"\"\"
  bound = Version(spec.version.removesuffix(".*"))
  return Version(have) >= bound if spec.operator == "<" else Version(have) > bound


def dependency_plan():
  \"\"\"ntga's missing requirements, and installed versions newer than its range.\"\"\"
  install, newer = [], []
  for text in metadata.requires("ntga") or []:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
      continue  # an extra, e.g. test
    have = _version(req.name)
    if have is not None and req.specifier.contains(have, prereleases=True):
      continue
    caps = [s for s in req.specifier if s.operator in ("<", "<=", "==", "~=")]
    if have is not None and caps and all(_beyond(s, have) for s in caps):
      newer.append(f"{req.name} {have}")  # newer than ntga's range: keep it
    else:
      install.append(str(req))  # missing, or older than ntga needs
  return install, newer


def install_plan(missing):
  \"\"\"(requirements to install, constraints): JAX stays unless it is too old.\"\"\"
  reqs = [Requirement(m) for m in missing]
  if not {r.name for r in reqs} & {"jax", "jaxlib"}:
    # Keep the installed JAX and its GPU/TPU plugins exactly as they are.
    return missing, [f"{n}=={v}" for n in JAX_PACKAGES if (v := _version(n))]
  # This JAX is older than ntga needs (or absent): upgrade it together with
  # the accelerator build the runtime uses.
  extra = ("cuda12" if _version("jax-cuda12-plugin") else
           "tpu" if _version("libtpu") else None)
  for req in reqs:
    if req.name == "jax" and extra:
      req.extras = {extra}
  return [str(r) for r in reqs], []


def pip_install(*args, constraints=()):
  with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.write("\\n".join(constraints) + "\\n")
  done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c",
                         f.name, *args], capture_output=True, text=True)
  os.unlink(f.name)
  if done.returncode:
    print(done.stderr[-3000:], file=sys.stderr)
    raise InstallError(f"pip install {' '.join(args)} failed (its message is above)")


source = find_source()
if source is not None:
  target, where = source
  print(f"installing ntga from {where}")
  pip_install("--no-deps", "--force-reinstall", target)
  importlib.invalidate_caches()
missing, newer = dependency_plan()
if missing:
  missing, pins = install_plan(missing)
  print("installing ntga's missing dependencies:", ", ".join(missing))
  pip_install(*missing, constraints=pins)
  importlib.invalidate_caches()
try:
  import ntga
except ImportError as e:
  raise InstallError(f"ntga does not import: {e}") from None
how = f"installed from {where}" if source else "already installed"
print(f"ntga {_version('ntga')}, {how} ({Path(ntga.__file__).parent}); "
      f"jax {_version('jax')}, jaxlib {_version('jaxlib')}")
if newer:
  print("kept, newer than ntga's tested range:", ", ".join(newer))"""

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
import warnings
from pathlib import Path

import jax
import numpy as np
from IPython.display import Image, display

from ntga import data

# Without ipywidgets, tqdm's notebook progress bars warn "IProgress not found"
# and fall back to text bars, which serve as well here: no warning.
warnings.filterwarnings("ignore", message="IProgress not found")
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
