"""One module per benchmark experiment (big_vision style).

Every module here defines ``get_config(smoke: bool = False) -> dict``: a plain,
JSON-serialisable dict whose ``kind`` names its module in
:mod:`benchmarks.kinds`. The module's docstring says what is measured and
the command that measures it. ``smoke=True`` gives a tiny variant that runs in
seconds (the test suite runs every one, but for the few it lists as too
slow). Data specs may start with ``{shared}``, the offline data folder (see
:func:`shared_data`), so that a config, and therefore its hash, does not
depend on where the checkout lives.

Example:
  >>> from benchmarks import configs
  >>> configs.load("poison_eval", smoke=True)["kind"]
  'poison_eval'
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path
from typing import Any

from ntga.errors import ConfigError

SHARED = "{shared}"


def names() -> list[str]:
  """Every config module name, sorted."""
  return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                if not m.name.startswith("_"))


def load(name: str, smoke: bool = False) -> dict[str, Any]:
  """``benchmarks.configs.NAME.get_config(smoke)``.

  Args:
    name: a config module name (see :func:`names`).
    smoke: return the tiny variant.

  Returns:
    The config dict; it always has a ``kind``.

  Raises:
    ConfigError: unknown name, or a config without ``kind``.
  """
  known = names()
  if name not in known:
    raise ConfigError(f"unknown benchmark config {name!r}; known configs: "
                      f"{', '.join(known)}")
  config = importlib.import_module(f"benchmarks.configs.{name}").get_config(smoke=smoke)
  if not isinstance(config, dict) or "kind" not in config:
    raise ConfigError(f"benchmarks/configs/{name}.py: get_config() must return a "
                      "dict with a 'kind'")
  return config


def doc(name: str) -> str | None:
  """The docstring of config module ``name`` (what it measures, the command).

  Raises:
    ConfigError: unknown name.
  """
  if name not in names():
    raise ConfigError(f"unknown benchmark config {name!r}")
  return importlib.import_module(f"benchmarks.configs.{name}").__doc__


def cpu_preset(attack: str, **overrides: Any) -> dict[str, Any]:
  """Settings of an EM/REM config's ``cpu()`` preset that differ from the paper's.

  Args:
    attack: ``"em"`` or ``"rem"``.
    **overrides: passed to ``cpu()`` (e.g. ``mode="class"``).

  Returns:
    ``{field: value}`` of ``Config.cpu(**overrides)`` where it differs from
    ``Config()``, to pass as an attack's ``settings`` (so a config's hash
    follows the preset).
  """
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ntga.attacks import em, rem  # pylint: disable=g-import-not-at-top
  cls = {"em": em.EMConfig, "rem": rem.REMConfig}[attack]
  preset = dataclasses.asdict(cls.cpu(**overrides))
  paper = dataclasses.asdict(cls())
  return {k: v for k, v in preset.items() if v != paper[k]}


def shared_data() -> Path:
  """The read-only offline data folder: ``$NTGA_SHARED_DATA`` or ../shared/data."""
  env = os.environ.get("NTGA_SHARED_DATA")
  return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def resolve_spec(spec: str) -> str:
  """Replaces a leading ``{shared}`` of a data spec by :func:`shared_data`."""
  if spec.startswith(SHARED):
    return str(shared_data()) + spec[len(SHARED):]
  return spec
