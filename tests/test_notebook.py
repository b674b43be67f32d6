"""Runs ``examples/colab_quickstart.ipynb`` headlessly, top to bottom, on CPU.

The notebook's ``parameters`` cell is replaced by tiny settings, then nbclient
executes it in a fresh kernel started with this interpreter (a kernelspec
written to a temporary folder, so nothing needs to be installed in Jupyter's
user or system paths). CI runs this file on Python 3.11 + JAX 0.10 and again
in its Python 3.12 + newest-JAX virtualenv, so both kernels run it.

The install cell is also run on its own in kernels of a fresh virtualenv that
has ntga's dependencies (this environment's site-packages, read as a plain
folder so that the editable install of this checkout is not on its path) but
not ntga: it must install ntga from a checkout, from a wheel (``NTGA_WHEEL`` or
one beside the notebook), keep an installed JAX, even one newer than ntga's
range, and stop with one line when it finds nothing. pip runs with
``PIP_NO_INDEX``, so any download attempt fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import nbclient
import nbformat
import pytest
from ipykernel import kernelspec
from packaging.requirements import Requirement

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
  assert "already installed" in all_text  # the install cell did nothing here
  assert "installing" not in _text(code[0])
  assert "IProgress" not in all_text  # tqdm's ipywidgets warning is silenced
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


# ---------------------------------------------------------------------------
# The install cell on its own, in a virtualenv without ntga.

CHECK = """\
import importlib.metadata as md, json
import jax
print("RESULT " + json.dumps({"ntga": ntga.__file__, "jax": jax.__version__,
                              "jax_dist": md.version("jax")}))
"""
NEWER_JAX = "0.13.0"  # past ntga's range: the cell must keep it


def _copy_checkout(dest: Path) -> Path:
  """The files git knows (tracked or not ignored), copied to ``dest``."""
  root = NOTEBOOK.parents[1]
  listed = subprocess.run(
      ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
      cwd=root, capture_output=True, check=True).stdout.decode()
  for rel in filter(None, listed.split("\0")):
    if (root / rel).is_file():
      (dest / rel).parent.mkdir(parents=True, exist_ok=True)
      shutil.copyfile(root / rel, dest / rel)
  return dest


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
  """A copy of the checkout and a wheel built from it (offline)."""
  tmp = tmp_path_factory.mktemp("install-cell")
  checkout = _copy_checkout(tmp / "checkout")
  build = subprocess.run(
      [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
       str(tmp / "dist"), str(checkout)], capture_output=True, text=True)
  assert build.returncode == 0, build.stderr[-3000:]
  (wheel,) = (tmp / "dist").glob("ntga-*.whl")
  shutil.rmtree(checkout / "build", ignore_errors=True)
  return {"checkout": checkout, "wheel": wheel}


def _venv_kernel(tmp: Path, share: Path, name: str) -> Path:
  """A fresh virtualenv seeing this environment's packages, and its kernel."""
  venv = tmp / "venv"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                 check=True)
  python = venv / "bin" / "python"
  site = Path(subprocess.run(
      [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
       "['purelib'])"], capture_output=True, text=True, check=True
  ).stdout.strip())
  ours = sorted({sysconfig.get_paths()["purelib"],
                 sysconfig.get_paths()["platlib"]})
  (site / "_ntga_test_dependencies.pth").write_text("\n".join(ours) + "\n")
  spec = share / "kernels" / name
  spec.mkdir(parents=True)
  (spec / "kernel.json").write_text(json.dumps({
      "argv": [str(python), "-m", "ipykernel_launcher", "-f",
               "{connection_file}"],
      "display_name": name, "language": "python"}))
  return site


def _install_notebook() -> "nbformat.NotebookNode":
  """The notebook's install cell, then a cell that reports what it got."""
  nb = _read()
  (install,) = [c for c in nb.cells if "NTGA_WHEEL =" in c.get("source", "")]
  nb.cells = [install, nbformat.v4.new_code_cell(CHECK)]
  return nb


def _execute(nb, cwd: Path, kernel: str) -> None:
  """Runs ``nb`` in place, in ``cwd``; stops at the first error, as Run all."""
  nbclient.NotebookClient(nb, timeout=300, kernel_name=kernel,
                          resources={"metadata": {"path": str(cwd)}}).execute()


def _result(nb) -> dict:
  (line,) = [l for l in _text(nb.cells[1]).splitlines()
             if l.startswith("RESULT ")]
  return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("where", ["checkout", "NTGA_WHEEL", "wheel beside"])
def test_install_cell_installs_ntga_and_keeps_jax(where, sources, jupyter_env,
                                                  tmp_path, monkeypatch):
  import jax  # pylint: disable=g-import-not-at-top
  site = _venv_kernel(tmp_path, Path(os.environ["JUPYTER_PATH"]), "ntga-venv")
  for var in ("PYTHONPATH", "NTGA_WHEEL", "NTGA_GIT_URL"):
    monkeypatch.delenv(var, raising=False)
  monkeypatch.setenv("PIP_NO_INDEX", "1")  # nothing may be downloaded
  # pip's inverted spelling of --no-build-isolation: build the checkout with
  # this environment's setuptools instead of fetching one.
  monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")
  if where == "checkout":
    cwd = sources["checkout"] / "examples"
  elif where == "NTGA_WHEEL":
    cwd = jupyter_env
    monkeypatch.setenv("NTGA_WHEEL", str(sources["wheel"]))
    # This venv's JAX is newer than ntga's range (its metadata says so).
    info = site / f"jax-{NEWER_JAX}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: jax\nVersion: {NEWER_JAX}\n")
  else:
    cwd = jupyter_env
    shutil.copy(sources["wheel"], cwd)

  nb = _install_notebook()
  _execute(nb, cwd, "ntga-venv")
  out = _text(nb.cells[0])
  got = _result(nb)
  assert got["ntga"].startswith(str(site)), got  # installed into the venv
  assert got["jax"] == jax.__version__  # the same JAX, untouched
  assert "installing ntga's missing dependencies" not in out
  if where == "checkout":
    assert f"installing ntga from checkout {sources['checkout']}" in out
  elif where == "NTGA_WHEEL":
    assert f"installing ntga from wheel {sources['wheel']}" in out
    assert got["jax_dist"] == NEWER_JAX
    assert f"kept, newer than ntga's tested range: jax {NEWER_JAX}" in out
  else:
    assert (f"installing ntga from wheel {sources['wheel'].name} next to the "
            "notebook") in out
  assert re.search(r"^ntga [\d.]+, installed from ", out, re.M), out


def test_install_cell_stops_with_one_line_when_ntga_is_nowhere(jupyter_env,
                                                               tmp_path,
                                                               monkeypatch):
  _venv_kernel(tmp_path, Path(os.environ["JUPYTER_PATH"]), "ntga-venv")
  for var in ("PYTHONPATH", "NTGA_WHEEL", "NTGA_GIT_URL"):
    monkeypatch.delenv(var, raising=False)
  monkeypatch.setenv("PIP_NO_INDEX", "1")
  nb = _install_notebook()
  with pytest.raises(nbclient.exceptions.CellExecutionError):
    _execute(nb, jupyter_env, "ntga-venv")
  (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
  assert error.ename == "InstallError"
  assert error.traceback == [  # one line: IPython shows no traceback
      "ntga install: ntga not found: set NTGA_WHEEL (a built wheel) or "
      "NTGA_GIT_URL (its repository) at the top of this cell, or open the "
      "notebook from an ntga checkout"]
  assert _text(nb.cells[0]) == ""  # nothing else printed
  assert not nb.cells[1].outputs  # and the notebook stopped there


def _install_functions(versions: dict, requires: list[str]) -> dict:
  """The install cell's functions, reading the given installed versions."""
  (install,) = [c for c in _read().cells
                if "NTGA_WHEEL =" in c.get("source", "")]
  defs = install.source[:install.source.index("\nsource = find_source()")]
  space = {}
  exec(compile(defs, "install-cell", "exec"), space)  # pylint: disable=exec-used
  space["_version"] = versions.get
  space["metadata"] = types.SimpleNamespace(requires=lambda name: requires)
  return space


def _reqs(*texts: str) -> list[str]:
  """Requirements as the cell writes them (packaging's normal form)."""
  return [str(Requirement(t)) for t in texts]


REQUIRES = ["jax>=0.10,<0.13", "jaxlib>=0.10,<0.13", "neural-tangents==0.6.5",
            "flax>=0.12,<0.13", "numpy>=2.0,<3", 'pytest>=8; extra == "test"']


def test_install_plan_on_a_runtime_with_a_newer_jax():
  cell = _install_functions(
      {"jax": "0.13.1", "jaxlib": "0.13.1", "jax-cuda12-plugin": "0.13.1",
       "flax": "0.11.0", "numpy": "2.1.0"}, REQUIRES)
  missing, newer = cell["dependency_plan"]()
  assert missing == _reqs("neural-tangents==0.6.5", "flax>=0.12,<0.13")
  assert newer == ["jax 0.13.1", "jaxlib 0.13.1"]
  install, pins = cell["install_plan"](missing)
  assert install == missing
  assert pins == ["jax==0.13.1", "jaxlib==0.13.1", "jax-cuda12-plugin==0.13.1"]


def test_install_plan_upgrades_a_jax_older_than_the_range():
  cell = _install_functions(
      {"jax": "0.4.33", "jaxlib": "0.4.33", "jax-cuda12-plugin": "0.4.33",
       "neural-tangents": "0.6.6", "flax": "0.12.3", "numpy": "2.1.0"},
      REQUIRES)
  missing, newer = cell["dependency_plan"]()
  assert missing == _reqs("jax>=0.10,<0.13", "jaxlib>=0.10,<0.13")
  assert newer == ["neural-tangents 0.6.6"]
  install, pins = cell["install_plan"](missing)
  # With the runtime's GPU plugin, upgraded as a matching pair; nothing pinned.
  assert install == _reqs("jax[cuda12]>=0.10,<0.13", "jaxlib>=0.10,<0.13")
  assert pins == []
  for have, plan in (("0.6.4", (_reqs("neural-tangents==0.6.5"), [])),
                     ("0.6.5", ([], [])), ("0.7", ([], ["neural-tangents 0.7"]))):
    cell = _install_functions({"neural-tangents": have}, REQUIRES[2:3])
    assert cell["dependency_plan"]() == plan, have
  for have, plan in (("0.9.2", (_reqs("jax>=0.10,<0.13"), [])),
                     ("0.12.9", ([], [])), ("0.13.0", ([], ["jax 0.13.0"]))):
    cell = _install_functions({"jax": have}, REQUIRES[:1])
    assert cell["dependency_plan"]() == plan, have
