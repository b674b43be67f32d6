"""Process-wide switches are set only in entry points, never in library code.

``jax.config.update(...)`` (e.g. the CPU collectives implementation),
``matplotlib.use(...)`` and pyplot (whose state is global) change every later
caller in the process; a library function must not do that behind its
caller's back. The CLI modules and ``__main__`` are entry points and may.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = {"ntga/cli.py", "ntga/__main__.py", "victims/cli.py"}
LIBRARY = sorted(str(p.relative_to(ROOT)) for folder in ("ntga", "attacks", "victims")
                 for p in (ROOT / folder).rglob("*.py")
                 if str(p.relative_to(ROOT)) not in ENTRY_POINTS)


def _dotted(node: ast.AST) -> str:
  """``a.b.c`` for an attribute chain of names, else ''."""
  parts = []
  while isinstance(node, ast.Attribute):
    parts.append(node.attr)
    node = node.value
  if isinstance(node, ast.Name):
    parts.append(node.id)
    return ".".join(reversed(parts))
  return ""


def _global_switches(source: str) -> list[str]:
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Call):
      name = _dotted(node.func)
      if name.endswith("config.update") and "jax" in name or name == "matplotlib.use":
        found.append(f"{name}() at line {node.lineno}")
    elif isinstance(node, ast.Import):
      found += [f"import {a.name} at line {node.lineno}" for a in node.names
                if a.name == "matplotlib.pyplot"]
    elif isinstance(node, ast.ImportFrom):
      if node.module == "matplotlib.pyplot" or (
          node.module == "matplotlib" and any(a.name == "pyplot" for a in node.names)):
        found.append(f"pyplot import at line {node.lineno}")
  return found


def test_the_scan_sees_a_switch():
  assert _global_switches("import jax\njax.config.update('x', 1)\n")
  assert _global_switches("import matplotlib\nmatplotlib.use('Agg')\n")
  assert _global_switches("import matplotlib.pyplot as plt\n")
  assert not _global_switches("from matplotlib.figure import Figure\n")
  assert _global_switches((ROOT / "ntga" / "cli.py").read_text())  # the entry point does


@pytest.mark.parametrize("path", LIBRARY)
def test_library_module_sets_no_global_switch(path):
  assert _global_switches((ROOT / path).read_text()) == [], path
