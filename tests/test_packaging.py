"""``python -m build`` makes an sdist and a wheel, and the wheel stands alone.

The build runs offline (``--no-isolation``: this environment's setuptools and
wheel, which the ``test`` extra's ``build`` needs anyway) on a copy of the
files git knows, and builds the wheel from the sdist, as ``python -m build``
does, so a file the build needs but the sdist lacks fails here. The wheel is
then installed into a fresh virtualenv whose only other path is this
environment's site-packages (read as a plain folder: its ``.pth`` files, among
them an editable install of this checkout, are not run), and ntga runs from it
in a folder outside the checkout. Nothing is downloaded. ``.ci/run`` also
installs the same wheel with its dependencies into a clean Python 3.12
virtualenv and runs ``ntga demo`` there.
"""

import configparser
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ntga import attacks

ROOT = Path(__file__).resolve().parents[1]
# Repository folder -> the package it installs as (setup.cfg's package_dir).
PACKAGE_DIRS = {"ntga": "ntga", "attacks": "ntga/attacks",
                "victims": "ntga/victims"}


def _setup_cfg() -> configparser.ConfigParser:
  cfg = configparser.ConfigParser()
  cfg.read(ROOT / "setup.cfg")
  return cfg


def _lines(value: str) -> list[str]:
  return [l.strip() for l in value.splitlines()
          if l.strip() and not l.strip().startswith("#")]


def _key(req: Requirement) -> tuple[str, str]:
  """A requirement's normalised name and version range."""
  return canonicalize_name(req.name), str(req.specifier)


def _source_files(tree: Path) -> set[str]:
  """Every file of the three package folders, as its path inside the wheel."""
  files = set()
  for folder, package in PACKAGE_DIRS.items():
    for path in (tree / folder).rglob("*"):
      if path.is_file() and "__pycache__" not in path.parts:
        files.add(f"{package}/{path.relative_to(tree / folder).as_posix()}")
  return files


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict:
  """Builds the sdist and the wheel from a copy of the files git knows."""
  tmp = tmp_path_factory.mktemp("packaging")
  listed = subprocess.run(
      ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
      cwd=ROOT, capture_output=True, check=True).stdout.decode()
  src = tmp / "src"
  for rel in filter(None, listed.split("\0")):
    if (ROOT / rel).is_file():  # not a file deleted in the work tree
      (src / rel).parent.mkdir(parents=True, exist_ok=True)
      (src / rel).write_bytes((ROOT / rel).read_bytes())
  out = tmp / "dist"
  build = subprocess.run(
      [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
       str(src)], capture_output=True, text=True)
  assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
  version = _setup_cfg()["metadata"]["version"]
  wheel = out / f"ntga-{version}-py3-none-any.whl"
  sdist = out / f"ntga-{version}.tar.gz"
  assert sorted(p.name for p in out.iterdir()) == sorted([sdist.name,
                                                          wheel.name])
  return {"src": src, "wheel": wheel, "sdist": sdist, "version": version,
          "tmp": tmp}


def test_wheel_holds_only_the_ntga_package(dist):
  with zipfile.ZipFile(dist["wheel"]) as whl:
    names = set(whl.namelist())
    info = f"ntga-{dist['version']}.dist-info"
    metadata = whl.read(f"{info}/METADATA").decode()
    entry_points = whl.read(f"{info}/entry_points.txt").decode()
  package = {n for n in names if not n.startswith(info + "/")}
  assert {n.split("/")[0] for n in package} == {"ntga"}
  # attacks/ and victims/ install inside ntga; every file of the three
  # folders is there (data files included: today the embedded digits come
  # from scikit-learn, so all are .py), and nothing else.
  assert package == _source_files(dist["src"])
  assert {"ntga/attacks/registry.py", "ntga/victims/train.py",
          "ntga/data/_digits.py", "ntga/_compat.py"} <= package
  assert not any(n.startswith(("tests/", "benchmarks/", "examples/"))
                 for n in names)
  assert "ntga = ntga.cli:console_main" in entry_points

  cfg = _setup_cfg()["options"]
  fields = [l.split(": ", 1) for l in metadata.splitlines() if ": " in l]
  requires_python = [v for k, v in fields if k == "Requires-Python"]
  assert [str(Requirement(f"x{v}").specifier) for v in requires_python] == [
      str(Requirement(f"x{cfg['python_requires']}").specifier)]
  wanted = {_key(Requirement(r)) for r in _lines(cfg["install_requires"])}
  got = {_key(Requirement(v)) for k, v in fields
         if k == "Requires-Dist" and "extra ==" not in v}
  assert got == wanted


def test_sdist_has_what_the_build_needs(dist):
  # python -m build made the wheel from this sdist, so it builds; it also
  # carries every package file and the metadata inputs.
  prefix = f"ntga-{dist['version']}/"
  with tarfile.open(dist["sdist"]) as tar:
    names = {m.name[len(prefix):] for m in tar.getmembers() if m.isfile()}
  assert {"setup.cfg", "pyproject.toml", "README.md", "PKG-INFO"} <= names
  source = {f"{folder}/{p.relative_to(dist['src'] / folder).as_posix()}"
            for folder in PACKAGE_DIRS
            for p in (dist["src"] / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}
  assert source <= names, sorted(source - names)[:5]


def _fresh_venv(tmp: Path) -> Path:
  """A new virtualenv that sees this environment's packages, not its .pth."""
  venv = tmp / "venv"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                 check=True)
  python = venv / "bin" / "python"
  site = subprocess.run(
      [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
       "['purelib'])"], capture_output=True, text=True, check=True
  ).stdout.strip()
  ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
  Path(site, "_ntga_test_dependencies.pth").write_text("\n".join(sorted(ours))
                                                       + "\n")
  return venv


def test_wheel_installs_and_runs_outside_the_checkout(dist):
  venv = _fresh_venv(dist["tmp"])
  python = venv / "bin" / "python"
  install = subprocess.run(
      [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
       "--no-deps", "--no-index", str(dist["wheel"])],
      capture_output=True, text=True)
  assert install.returncode == 0, install.stderr[-3000:]

  elsewhere = dist["tmp"] / "elsewhere"
  elsewhere.mkdir()
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.update(JAX_PLATFORMS="cpu", NTGA_NO_HUGEPAGES="1")
  script = r"""
import importlib.metadata as md, json, sys
from packaging.requirements import Requirement
import ntga, ntga.attacks, ntga.victims
from ntga import cli
names = sorted(ntga.attacks.registry())  # imports every attack module
def met(req):
  try:
    return md.version(req.name) in req.specifier
  except md.PackageNotFoundError:
    return False
unmet = [str(r) for r in map(Requirement, md.requires("ntga"))
         if (r.marker is None or r.marker.evaluate({"extra": ""}))
         and not met(r)]
code = cli.main(["poison", "--attack", "random", "--data", "digits",
                 "--limit", "20", "--out", "poisoned"])
found = {}
for name in ("attacks", "victims", "benchmarks"):
  try:
    __import__(name); found[name] = True
  except ImportError:
    found[name] = False
print(json.dumps({"files": [ntga.__file__, ntga.attacks.__file__,
                            ntga.victims.__file__],
                  "version": md.version("ntga"), "attacks": names,
                  "unmet": unmet, "code": code, "top_level": found}))
"""
  run = subprocess.run([str(python), "-c", script], cwd=elsewhere, env=env,
                       capture_output=True, text=True)
  assert run.returncode == 0, run.stderr[-3000:]
  got = json.loads(run.stdout.strip().splitlines()[-1])
  site = str(venv.resolve())
  assert all(f.startswith(site) for f in got["files"]), got["files"]
  assert got["files"][1].endswith("ntga/attacks/__init__.py")
  assert got["version"] == dist["version"]
  assert got["unmet"] == []  # its dependencies, as the wheel states them
  assert got["attacks"] == sorted(attacks.names())
  assert got["code"] == 0 and (elsewhere / "poisoned" / "train.npz").is_file()
  assert got["top_level"] == {"attacks": False, "victims": False,
                              "benchmarks": False}

  # The console script the wheel installs.
  usage = subprocess.run([str(venv / "bin" / "ntga"), "--help"],
                         cwd=elsewhere, env=env, capture_output=True,
                         text=True)
  assert usage.returncode == 0, usage.stderr[-3000:]
  assert all(c in usage.stdout for c in ("poison", "demo", "evaluate",
                                         "doctor"))
