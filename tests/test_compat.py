"""The neural-tangents shim (``ntga._compat``) on whichever JAX is installed.

CI runs this file on Python 3.11 + JAX 0.10 and on Python 3.12 + the newest
JAX. Nothing here lists what a JAX version lacks: each test finds out from
the installed JAX, in a fresh interpreter where it matters, so the same
assertions hold (or fail) on every version.
"""

import ast
import importlib
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import jax
import pytest

from ntga import _compat

# What the shim can add, in the order it records them.
CANDIDATES = ([f"jax.core.{n}" for n in _compat.CORE_NAMES]
              + ["jax.util", "jax.interpreters.ad.zeros_like_p"])


def _run(script: str) -> dict:
  """Runs ``script`` in a fresh interpreter; returns its last line as JSON."""
  out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                       text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_record_is_exactly_what_this_jax_lacks():
  got = _run(r"""
import importlib, json, sys
import jax, jax.core, jax.interpreters.ad
def exists(name):
  mod, _, attr = name.rpartition(".")
  if name == "jax.util":
    try:
      importlib.import_module(name); return True
    except ImportError:
      return False
  return hasattr(sys.modules[mod], attr)
def get(name):
  mod, _, attr = name.rpartition(".")
  return sys.modules[name] if name == "jax.util" else getattr(sys.modules[mod], attr)
candidates = %r
before = {n: get(n) for n in candidates if exists(n)}
from ntga import _compat
import jax.extend.core
print(json.dumps({
    "missing": [n for n in candidates if n not in before],
    "patched": list(_compat.PATCHED),
    "kept": all(get(n) is obj for n, obj in before.items()),
    "all_exist": all(exists(n) for n in candidates),
    "public": [n for n in _compat.PATCHED if n.startswith("jax.core.")
               and hasattr(jax.extend.core, n.rsplit(".", 1)[1])
               and get(n) is not getattr(jax.extend.core, n.rsplit(".", 1)[1])],
    "jax": jax.__version__}))
""" % CANDIDATES)
  assert got["jax"] == jax.__version__
  assert got["patched"] == got["missing"], got  # all it lacked, nothing else
  assert got["kept"], "the shim replaced a name this JAX already had"
  assert got["all_exist"]
  assert got["public"] == [], "patched names must be jax.extend.core's objects"


def test_each_patch_is_needed_for_neural_tangents():
  # Leave out one patch at a time: NT's import must then fail, naming it.
  got = _run(r"""
import json, sys, types
import jax.core, jax.interpreters.ad
from ntga import _compat
patched = list(_compat.PATCHED)
def undo(name):
  mod, _, attr = name.rpartition(".")
  if name == "jax.util":
    saved = sys.modules.pop(name); delattr(sys.modules["jax"], "util")
    return lambda: (sys.modules.__setitem__(name, saved),
                    setattr(sys.modules["jax"], "util", saved))
  saved = getattr(sys.modules[mod], attr); delattr(sys.modules[mod], attr)
  return lambda: setattr(sys.modules[mod], attr, saved)
def purge():
  for m in [m for m in sys.modules if m.startswith("neural_tangents")
            and m != "neural_tangents.experimental"]:
    del sys.modules[m]
errors = {}
for name in patched:
  purge()
  restore = undo(name)
  try:
    import neural_tangents.stax
    errors[name] = None
  except (ImportError, AttributeError) as e:
    errors[name] = f"{type(e).__name__}: {e}"
  restore()
purge()
import neural_tangents.stax
print(json.dumps({"patched": patched, "errors": errors}))
""")
  for name in got["patched"]:
    error = got["errors"][name]
    assert error is not None, f"NT imports without {name}: do not patch it"
    assert name.rsplit(".", 1)[1] in error, (name, error)


def test_patch_jax_adds_only_what_is_missing():
  empty_core, empty_ad, modules = (types.ModuleType("core"),
                                   types.ModuleType("ad"), {})
  objects = {n: object() for n in _compat.CORE_NAMES}
  added = _compat.patch_jax(empty_core, empty_ad, modules,
                            core_source=objects.__getitem__,
                            new_primitive=lambda name: ("primitive", name))
  if importlib.machinery.PathFinder.find_spec("util", jax.__path__) is None:
    assert added == tuple(CANDIDATES)
  else:  # a JAX that still ships jax.util: that import is satisfied
    assert added == tuple(c for c in CANDIDATES if c != "jax.util")
  assert all(getattr(empty_core, n) is objects[n] for n in _compat.CORE_NAMES)
  assert empty_ad.zeros_like_p == ("primitive", "zeros_like")

  # A JAX that has every name: nothing is added or replaced.
  again = _compat.patch_jax(empty_core, empty_ad, {"jax.util": types.ModuleType(
      "jax.util")}, core_source=lambda n: pytest.fail(f"replaced {n}"),
                            new_primitive=lambda n: pytest.fail("replaced"))
  assert again == ()
  assert empty_ad.zeros_like_p == ("primitive", "zeros_like")


def test_jax_util_stand_in_checks_lengths():
  util = sys.modules["jax.util"]
  assert util.safe_map(lambda a, b: a * b, [1, 2, 3], [4, 5, 6]) == [4, 10, 18]
  assert util.safe_zip("ab", [1, 2]) == [("a", 1), ("b", 2)]
  if "jax.util" in _compat.PATCHED:  # ours: length mismatches are errors
    with pytest.raises(ValueError):
      util.safe_map(lambda a, b: a, [1, 2], [1])
    with pytest.raises(ValueError):
      util.safe_zip([1, 2], [1])


def _jax_references(path: Path) -> set[str]:
  """Every ``jax...`` name a module imports or reads as an attribute chain."""
  tree = ast.parse(path.read_text())
  aliases, refs = {}, set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for a in node.names:
        if a.name.split(".")[0] == "jax":
          aliases[a.asname or "jax"] = a.name if a.asname else "jax"
          refs.add(a.name)
    elif (isinstance(node, ast.ImportFrom) and node.level == 0
          and node.module.split(".")[0] == "jax"):
      for a in node.names:
        refs.add(f"{node.module}.{a.name}")
        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
  for node in ast.walk(tree):
    if isinstance(node, ast.Attribute):
      chain, inner = [], node
      while isinstance(inner, ast.Attribute):
        chain.append(inner.attr)
        inner = inner.value
      if isinstance(inner, ast.Name) and inner.id in aliases:
        refs.add(".".join([aliases[inner.id], *reversed(chain)]))
  return refs


def _resolves(name: str) -> bool:
  parts = name.split(".")
  for i in range(len(parts), 0, -1):
    try:
      obj = importlib.import_module(".".join(parts[:i]))
      break
    except ImportError:
      continue
  else:
    return False
  for attr in parts[i:]:
    if not hasattr(obj, attr):
      return False
    obj = getattr(obj, attr)
  return True


def test_every_jax_name_neural_tangents_uses_resolves_outside_empirical():
  # With the shim, every JAX name that NT's modules import or read resolves,
  # except some in its empirical-kernel module, which ntga never calls.
  root = Path(importlib.util.find_spec("neural_tangents").origin).parent
  unresolved = {}
  for path in sorted(root.rglob("*.py")):
    rel = path.relative_to(root).as_posix()
    if rel.startswith(("experimental/", "tests/")):
      continue  # not imported by ntga (experimental is blocked)
    bad = sorted(n for n in _jax_references(path) if not _resolves(n))
    if bad:
      unresolved[rel] = bad
  assert set(unresolved) <= {"_src/empirical.py"}, unresolved
  # The module itself imports: every name it takes at import time resolves.
  import neural_tangents._src.empirical as empirical  # pylint: disable=g-import-not-at-top
  assert empirical.Jaxpr is jax.core.Jaxpr


def test_kernel_runs_through_the_shim():
  # An NT kernel evaluated end to end on this JAX (the kernels' values are
  # checked against closed forms in tests/test_kernels.py).
  _, _, kernel_fn = _compat.stax.serial(_compat.stax.Dense(8), _compat.stax.Relu(),
                                        _compat.stax.Dense(1))
  x = jax.numpy.ones((3, 4))
  ntk = kernel_fn(x, x, "ntk")
  assert ntk.shape == (3, 3)
  assert bool(jax.numpy.all(jax.numpy.isfinite(ntk)))
