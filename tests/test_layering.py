"""The layering of docs/ARCHITECTURE.md, checked by reading every import (ast).

    {benchmarks, CLIs, demo} -> {ntga.attacks, ntga.victims} -> ntga core

Every import counts, at module top or inside a function: a lazy import is
still a dependency.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# repository folder -> the package name it installs (or runs) as
FOLDERS = {"ntga": "ntga", "attacks": "ntga.attacks", "victims": "ntga.victims",
           "benchmarks": "benchmarks"}
TOP = ("ntga.cli", "ntga.__main__", "ntga.demo", "ntga.victims.cli")


def _modules() -> dict[str, Path]:
  found = {}
  for folder, package in FOLDERS.items():
    for path in sorted((ROOT / folder).rglob("*.py")):
      if "results" in path.relative_to(ROOT).parts:
        continue
      parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
      if parts[-1] == "__init__":
        parts = parts[:-1]
      found[".".join([package, *parts])] = path
  return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
  """Absolute names of every module ``name`` imports (relative ones resolved)."""
  is_package = path.name == "__init__.py"
  out = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      out.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = name.split(".")
        base = base[:len(base) - node.level + (1 if is_package else 0)]
        module = ".".join(base + ([node.module] if node.module else []))
      else:
        module = node.module
      out.add(module)
      # `from ntga import attacks` imports the submodule ntga.attacks.
      out.update(f"{module}.{alias.name}" for alias in node.names
                 if f"{module}.{alias.name}" in MODULES)
  return out


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
  if module.startswith("benchmarks") or module in TOP:
    return "top"
  if module.startswith("ntga.attacks"):
    return "attacks"
  if module.startswith("ntga.victims"):
    return "victims"
  return "core"


# layer -> the layers it may import from
ALLOWED = {"top": {"top", "attacks", "victims", "core"},
           "attacks": {"attacks", "victims", "core"},
           "victims": {"victims", "core"},
           "core": {"core"}}


def test_the_walk_finds_every_layer():
  layers = {_layer(m) for m in MODULES}
  assert layers == {"top", "attacks", "victims", "core"}
  assert "ntga.pgd" in MODULES and "ntga.attacks.registry" in MODULES
  assert "ntga.victims.train" in IMPORTS["ntga.demo"] or any(
      i.startswith("ntga.victims") for i in IMPORTS["ntga.demo"])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) != "top"))
def test_library_imports_no_cli_and_no_benchmarks(module):
  bad = sorted(i for i in IMPORTS[module]
               if i.split(".")[0] == "benchmarks" or "cli" in i.split(".")[-1])
  assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("ntga")))
def test_installed_package_never_imports_benchmarks(module):
  # benchmarks/ runs from a checkout and is not installed.
  bad = sorted(i for i in IMPORTS[module] if i.split(".")[0] == "benchmarks")
  assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_downwards(module):
  mine = _layer(module)
  bad = sorted(i for i in IMPORTS[module]
               if i.split(".")[0] in ("ntga", "benchmarks")
               and _layer(i) not in ALLOWED[mine])
  assert not bad, f"{module} ({mine}) imports upwards: {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_uninstalled_top_level_names(module):
  # attacks/ and victims/ install as ntga.attacks / ntga.victims only.
  bad = sorted(i for i in IMPORTS[module] if i.split(".")[0] in ("attacks", "victims"))
  assert not bad, f"{module} imports {bad}; use ntga.attacks / ntga.victims"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == "open":
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        found = visit(nxt)
        if found:
          return found
    stack.pop()
    state[node] = "done"
    return None

  for node in sorted(graph):
    if node not in state:
      found = visit(node)
      if found:
        return found
  return None


def test_no_import_cycles_between_modules():
  # A package's __init__ re-exporting its own submodules is not a cycle of
  # dependencies, so edges from a package to its own children are left out.
  graph = {m: {i for i in imps if i in MODULES and i != m
               and not i.startswith(m + ".")}
           for m, imps in IMPORTS.items()}
  assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_cycle_finder_finds_a_cycle():
  assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert _cycle({"a": {"b"}, "b": set()}) is None
