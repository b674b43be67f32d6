"""``ntga doctor``, the neural-tangents shim record and the accelerator extras."""

import configparser
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
from packaging.requirements import Requirement

from ntga import _compat, cli, doctor

ROOT = Path(__file__).resolve().parents[1]


def _cpu_line() -> str:
  cpus = jax.devices("cpu")
  return f"devices: cpu, {len(cpus)} x {cpus[0].device_kind}"


def test_doctor_prints_versions_devices_and_shim(capsys):
  assert cli.main(["doctor"]) == 0
  lines = capsys.readouterr().out.splitlines()
  for name in ("jax", "jaxlib", "neural-tangents", "flax", "optax"):
    assert f"{name}: {importlib.metadata.version(name)}" in lines
  assert f"jax: {jax.__version__}" in lines
  assert f"neural-tangents: {_compat.NT_VERSION}" in lines
  assert _cpu_line() in lines  # conftest simulates 4 CPU devices
  assert "default backend: cpu" in lines
  assert "accelerator: none" in lines
  shim = [l for l in lines if l.startswith("neural-tangents shim: ")]
  assert len(shim) == 1
  if _compat.PATCHED:
    assert shim[0].endswith("needed, patched " + ", ".join(_compat.PATCHED))
  else:
    assert "not needed" in shim[0]
  # Only CPU devices here: the doctor says where to look for a GPU/TPU.
  assert "hint: no GPU or TPU found: JAX runs on the CPU" in lines
  assert any("ntga[cuda12]" in l and "nvidia-smi" in l for l in lines)
  assert any("ntga[tpu]" in l for l in lines)
  assert not any(l.startswith("error: ") for l in lines)


def test_doctor_json_is_the_same_report(capsys):
  assert cli.main(["doctor", "--json"]) == 0
  report = json.loads(capsys.readouterr().out)
  assert report["versions"]["jax"] == jax.__version__
  assert report["versions"]["neural-tangents"] == _compat.NT_VERSION
  assert report["devices"] == [{"platform": "cpu", "count": len(jax.devices()),
                                "kind": jax.devices()[0].device_kind}]
  assert report["accelerator"] is None and report["errors"] == []
  assert report["shim"] == {"needed": bool(_compat.PATCHED),
                            "patched": list(_compat.PATCHED)}
  assert report["jax_platforms"] == "cpu"  # set by conftest
  assert any("JAX_PLATFORMS=cpu" in h for h in report["hints"])
  # The text form is a rendering of this very dict.
  assert cli.main(["doctor"]) == 0
  text = capsys.readouterr().out.splitlines()
  assert len(text) == len(doctor.format_report(report))
  assert [l for l in text if not l.startswith("python:")] == [
      l for l in doctor.format_report(report) if not l.startswith("python:")]


def test_shim_record_equals_what_the_import_patched():
  # A fresh interpreter: look at what this JAX lacks, import the shim, and
  # compare its record with the names that were missing and now resolve.
  script = r"""
import importlib, json, sys
import jax, jax.core, jax.interpreters.ad
core = [f"jax.core.{n}" for n in ("Jaxpr", "JaxprEqn", "Literal", "Primitive",
        "Var", "ShapedArray", "Value", "AbstractValue", "eval_context")
        if not hasattr(jax.core, n)]
try:
  importlib.import_module("jax.util"); util = []
except ImportError:
  util = ["jax.util"]
ad = [] if hasattr(jax.interpreters.ad, "zeros_like_p") else [
    "jax.interpreters.ad.zeros_like_p"]
from ntga import _compat
from jax._src import core as src
resolved = all(getattr(jax.core, n.split(".")[-1]) is getattr(src, n.split(".")[-1])
               for n in core)
print(json.dumps({"missing": core + util + ad, "patched": list(_compat.PATCHED),
                  "resolved": resolved, "util": "jax.util" in sys.modules}))
"""
  out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                       text=True, check=True,
                       env={**os.environ, "JAX_PLATFORMS": "cpu"})
  got = json.loads(out.stdout.strip().splitlines()[-1])
  assert got["patched"] == got["missing"]
  assert got["resolved"] and got["util"]
  # In this process too, every recorded name now exists.
  for name in _compat.PATCHED:
    module, _, attr = name.rpartition(".")
    assert attr in vars(sys.modules[module]), name


def test_hints_only_without_an_accelerator():
  none = {"jaxlib": "0.10.2"}
  cpu = doctor.hints(["cpu"], None, none)
  assert cpu[0] == "no GPU or TPU found: JAX runs on the CPU"
  assert any("pip install 'ntga[cuda12]'" in h and "nvidia-smi" in h for h in cpu)
  assert any("pip install 'ntga[tpu]'" in h for h in cpu)
  assert not any("JAX_PLATFORMS" in h for h in cpu)
  assert any("JAX_PLATFORMS=cpu" in h for h in doctor.hints(["cpu"], "cpu", none))
  assert doctor.hints([], "cuda", none)[0] == "no GPU or TPU found"
  assert doctor.hints(["gpu", "cpu"], None, none) == []
  assert doctor.hints(["tpu"], None, none) == []
  # An installed plugin that finds no hardware is named, not re-suggested.
  plugin = doctor.hints(["cpu"], None, {"jaxlib": "0.10.2",
                                        "jax-cuda12-plugin": "0.10.2",
                                        "libtpu": "0.0.42"})
  assert any("jax-cuda12-plugin 0.10.2 is installed" in h for h in plugin)
  assert any("libtpu 0.0.42 is installed" in h for h in plugin)
  assert not any("pip install 'ntga[cuda12]'" in h for h in plugin)
  # A plugin that does not match jaxlib is reported even with a GPU.
  assert doctor.hints(["gpu"], None, {"jaxlib": "0.10.2",
                                      "jax-cuda12-plugin": "0.10.1"}) == [
      "jax-cuda12-plugin 0.10.1 does not match jaxlib 0.10.2: pip install "
      "'ntga[cuda12]' installs a matching pair"]


def test_report_lines_for_a_gpu_machine():
  report = {"ntga": "0.1.0", "python": "3.12.1", "executable": "/py",
            "versions": {"jax": "0.10.2", "libtpu": None},
            "jax_platforms": None, "default_backend": "gpu",
            "devices": [{"platform": "gpu", "kind": "NVIDIA H200", "count": 8},
                        {"platform": "cpu", "kind": "cpu", "count": 1}],
            "accelerator": "gpu", "shim": {"needed": False, "patched": []},
            "hints": [], "errors": []}
  assert doctor.format_report(report) == [
      "ntga: 0.1.0", "python: 3.12.1 (/py)", "jax: 0.10.2",
      "libtpu: not installed", "JAX_PLATFORMS: (unset)",
      "default backend: gpu", "devices: gpu, 8 x NVIDIA H200",
      "devices: cpu, 1 x cpu", "accelerator: gpu",
      "neural-tangents shim: not needed (this JAX has every name)"]


def test_doctor_exits_1_when_jax_finds_no_device():
  # JAX_PLATFORMS=cuda on this CPU-only machine: JAX has no device to offer.
  out = subprocess.run([sys.executable, "-m", "ntga", "doctor", "--json"],
                       capture_output=True, text=True,
                       env={**os.environ, "JAX_PLATFORMS": "cuda"})
  assert out.returncode == 1, out.stderr
  report = json.loads(out.stdout)
  assert report["devices"] == [] and report["default_backend"] is None
  assert report["errors"][0].startswith("JAX found no devices")
  assert report["hints"][0] == "no GPU or TPU found"


def test_help_lists_doctor_without_importing_jax():
  code = ("import sys; from ntga import cli; "
          "cli.build_parser(['doctor']).parse_args(['doctor', '--json']); "
          "print('jax' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True)
  assert out.stdout.strip() == "False"


def test_accelerator_extras_match_the_jax_pin():
  cfg = configparser.ConfigParser()
  cfg.read(ROOT / "setup.cfg")
  pins = {Requirement(r).name: Requirement(r) for r in
          cfg["options"]["install_requires"].split("\n") if r.strip()}
  extras = cfg["options.extras_require"]
  for extra in ("cuda12", "tpu"):
    [req] = [Requirement(r) for r in extras[extra].split("\n") if r.strip()]
    assert req.name == "jax" and req.extras == {extra}
    assert req.specifier == pins["jax"].specifier == pins["jaxlib"].specifier
