"""Runs ``examples/colab_quickstart.ipynb`` headlessly, top to bottom, on CPU.

The notebook's ``parameters`` cell is replaced by tiny settings, then nbclient
executes it in a fresh kernel started with this interpreter (a kernelspec
written to a temporary folder, so nothing needs to be installed in Jupyter's
user or system paths). JAX is imported only by the kernel, not here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from ipykernel import kernelspec

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "colab_quickstart.ipynb"
KERNEL_NAME = "ntga-test-python"

TINY_PARAMETERS = """\
LIMIT = 200
TEST_LIMIT = 100
BLOCK_SIZE = 64
TARGET_SIZE = 100
STEPS = 3
VICTIM = "fnn-relu"
EPOCHS = 2
SEED = 0
OUT = "quickstart-out"
"""


def _read() -> "nbformat.NotebookNode":
  return nbformat.read(NOTEBOOK, as_version=4)


def _parameter_cells(nb) -> list[int]:
  return [i for i, c in enumerate(nb.cells)
          if "parameters" in c.get("metadata", {}).get("tags", [])]


def _text(cell) -> str:
  """All stream and text/plain output of a code cell."""
  parts = []
  for out in cell.get("outputs", []):
    if out.output_type == "stream":
      parts.append(out.text)
    elif "data" in out and "text/plain" in out.data:
      parts.append(out.data["text/plain"])
  return "".join(parts)


@pytest.fixture
def jupyter_env(tmp_path, monkeypatch):
  """A kernelspec for ``sys.executable`` and private Jupyter/IPython dirs."""
  share = tmp_path / "jupyter"
  kernelspec.write_kernel_spec(share / "kernels" / KERNEL_NAME,
                               overrides={"display_name": "ntga test"})
  monkeypatch.setenv("JUPYTER_PATH", str(share))
  monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
  monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
  # debugpy warns about frozen modules on every kernel start; not our concern.
  monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
  work = tmp_path / "work"
  work.mkdir()
  return work


def test_committed_notebook_is_valid_and_clean():
  nb = _read()
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code, "no code cells"
  assert all(not c.outputs and c.execution_count is None for c in code), (
      "commit the notebook with empty outputs "
      "(python examples/build_colab_quickstart.py)")
  assert len(_parameter_cells(nb)) == 1


def test_quickstart_runs_headless(jupyter_env):
  nb = _read()
  (params,) = _parameter_cells(nb)
  names = set(re.findall(r"^([A-Z_]+) =", nb.cells[params].source, re.M))
  tiny = set(re.findall(r"^([A-Z_]+) =", TINY_PARAMETERS, re.M))
  assert names == tiny, "the test's parameters no longer match the notebook's"
  nb.cells[params].source = TINY_PARAMETERS

  client = nbclient.NotebookClient(
      nb, timeout=600, kernel_name=KERNEL_NAME,
      resources={"metadata": {"path": str(jupyter_env)}})
  client.execute()  # raises CellExecutionError if any cell fails

  code = [c for c in nb.cells if c.cell_type == "code"]
  assert not [o for c in code for o in c.outputs if o.output_type == "error"]
  all_text = "".join(_text(c) for c in code)
  assert "not on Colab" in all_text  # the install cell did nothing here
  assert "digits: 200 train / 100 test images" in all_text
  assert "poisoned 200 images" in all_text

  pngs = [c for c in code
          if any("image/png" in o.get("data", {}) for o in c.outputs)]
  assert len(pngs) == 2  # the image grid and the learning curves
  assert "save_figure" in pngs[0].source
  assert (jupyter_env / "quickstart-out" / "clean_poisoned_delta.png").is_file()
  assert (jupyter_env / "quickstart-out" / "learning_curves.png").is_file()

  final = _text(code[-1])
  accs = {
      name: float(m.group(1)) for name in ("clean", "poisoned")
      if (m := re.search(rf"trained on {name} data:\s+([\d.]+)%", final))}
  assert set(accs) == {"clean", "poisoned"}, final
  assert all(0.0 <= a <= 100.0 for a in accs.values())
  per_epoch = re.findall(r"test accuracy per epoch \[([^\]]*)\]", all_text)
  assert [len(p.split(",")) for p in per_epoch] == [2, 2]
