"""Tables of (training set x victim x defense) cells, each cached on its own.

A ``table`` config (see :mod:`benchmarks.configs`) lists cells; a cell is one
training set (clean, or one attack on one dataset, optionally at a poisoning
``ratio``) and one victim with one defense, trained and tested once per seed:

  {"row": "cnn", "col": "NTGA(64)",
   "data": {"spec": "{shared}/mnist", "limit": 10000, "test_limit": None},
   "attack": None | {"name": "ntga", "seed": 0, "ratio": None,
                     "settings": {"surrogate": "fnn", "t": 64.0}},
   "victim": {"victim": "cnn", "epochs": 3}, "defense": "none",
   "seeds": [0, 1, 2]}

Each finished cell is written at once to
``RESULTS/<config name>/<first 16 hex of the cell's hash>.json``, so a long
table is filled over several sittings (``--cells`` picks a subset) and an
interrupted run loses at most the cell in flight. Poisoned training sets are
cached in ``RESULTS/.poison_cache/`` (not in git), keyed by data and attack (the
ratio is applied afterwards, so one poisoning serves every ratio); an NTGA
poisoning that is interrupted resumes from its per-block checkpoints there.

Example:
  >>> from benchmarks import _tables, configs
  >>> cfg = configs.load("table4_ratio", smoke=True)
  >>> _tables.run_table("table4_ratio", cfg, smoke=True)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import functools
import json
import time
from pathlib import Path
import shlex
from typing import Any, Callable

import numpy as np

from benchmarks.configs import resolve_spec
from ntga.errors import ConfigError

CACHE = ".poison_cache"  # under the results folder; not in git
MIN_SEEDS = 3
_CELL_KEYS = {"row", "col", "data", "attack", "victim", "defense", "seeds"}


def cell_id(cell: dict[str, Any]) -> str:
  """``"row / col"``: how a cell is named in progress lines and errors."""
  return f"{cell['row']} / {cell['col']}"


def check_table(name: str, config: dict[str, Any], *, smoke: bool) -> None:
  """Raises ConfigError if a table config is malformed.

  Checks the keys of every cell, that its row and column are declared, that
  no two cells share a (row, column), and (outside smoke runs) that each cell
  has at least the config's ``min_seeds`` (default :data:`MIN_SEEDS`)
  distinct seeds.
  """
  where = f"benchmarks/configs/{name}.py"
  for key in ("title", "description", "rows", "cols", "paper", "cells"):
    if key not in config:
      raise ConfigError(f"{where}: a table config needs {key!r}")
  seen = set()
  for cell in config["cells"]:
    missing = _CELL_KEYS - set(cell)
    if missing:
      raise ConfigError(f"{where}: cell {cell.get('row')}/{cell.get('col')} "
                        f"lacks {', '.join(sorted(missing))}")
    if cell["row"] not in config["rows"] or cell["col"] not in config["cols"]:
      raise ConfigError(f"{where}: cell {cell_id(cell)} is not in rows/cols")
    if (cell["row"], cell["col"]) in seen:
      raise ConfigError(f"{where}: two cells at {cell_id(cell)}")
    seen.add((cell["row"], cell["col"]))
    least = config.get("min_seeds", MIN_SEEDS)
    if not smoke and len(set(cell["seeds"])) < least:
      raise ConfigError(f"{where}: cell {cell_id(cell)} needs at least "
                        f"{least} distinct seeds, got {cell['seeds']}")


@functools.lru_cache(maxsize=8)
def _load(spec: str, split: str, limit: int | None):
  from ntga import data  # pylint: disable=g-import-not-at-top
  return data.load(resolve_spec(spec), split, limit=limit)


def attack_config(attack, settings: dict[str, Any]):
  """``attack.config_cls(**settings)``, naming unknown keys in the error."""
  known = {f.name for f in dataclasses.fields(attack.config_cls)}
  unknown = sorted(set(settings) - known)
  if unknown:
    raise ConfigError(f"unknown setting(s) {', '.join(unknown)} for attack "
                      f"{attack.name!r}; known: {', '.join(sorted(known))}")
  return attack.config_cls(**settings)


def poisoned_train_set(cell: dict[str, Any], *, cache: Path):
  """The cell's training set and a description of its poisoning.

  Args:
    cell: a table cell (see the module docstring).
    cache: folder of cached poisonings.

  Returns:
    ``(dataset, poison)``: the clean training set when ``cell["attack"]`` is
    None (``poison`` None); otherwise the poisoned set and the attack's
    manifest fields plus ``wall_clock_s`` (of the poisoning that filled the
    cache), ``n_train`` and ``cached``.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import attacks  # pylint: disable=g-import-not-at-top
  from benchmarks.run import config_hash  # pylint: disable=g-import-not-at-top
  from ntga import cli, io  # pylint: disable=g-import-not-at-top

  d = cell["data"]
  train = _load(d["spec"], "train", d["limit"])
  a = cell["attack"]
  if a is None:
    return train, None
  attack = attacks.get(a["name"])
  key = {"spec": d["spec"], "limit": d["limit"], "name": a["name"],
         "seed": a["seed"], "settings": a["settings"]}
  folder = Path(cache) / f"poison-{config_hash(key)[:16]}"
  done = folder / "poisoned.npz"
  cached = done.exists()
  if cached:
    with np.load(done) as z:
      x_full = z["x"]
    info = json.loads((folder / "manifest.json").read_text())
  else:
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    manifest, x_full = cli.poison_dataset(
        attack, attack_config(attack, a["settings"]), train, seed=a["seed"],
        ratio=None, out=folder)
    manifest.pop("versions")
    info = {**manifest, "wall_clock_s": time.perf_counter() - start}
    io.write_npz(done, x=x_full)
    io.write_json(folder / "manifest.json", info)
  x = x_full
  if a["ratio"] is not None:
    x, mask = attacks.apply_ratio(
        jax.random.fold_in(jax.random.key(a["seed"]), 0x5a7), train.x, x_full,
        a["ratio"])
    info = {**info, "ratio": a["ratio"], "n_poisoned": int(mask.sum()),
            **attacks.perturbation_stats(train.x, x)}
  return (dataclasses.replace(train, x=np.asarray(x, np.uint8)),
          {**info, "n_train": len(train), "cached": cached})


def mean_std(values: list[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (ddof=1; 0.0 for one value)."""
  a = np.asarray(values, np.float64)
  return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
  """Mean and sample std (ddof=1; 0 for one seed) of final and peak accuracy.

  Args:
    per_seed: one dict per seed with at least ``final`` and ``peak``.

  Returns:
    ``final_mean``, ``final_std``, ``peak_mean``, ``peak_std`` and
    ``per_seed`` itself.
  """
  out: dict[str, Any] = {}
  for field in ("final", "peak"):
    out[f"{field}_mean"], out[f"{field}_std"] = mean_std(
        [r[field] for r in per_seed])
  return {**out, "per_seed": per_seed}


def run_cell(cell: dict[str, Any], *, cache: Path) -> dict[str, Any]:
  """Trains the cell's victim once per seed on its training set.

  Returns:
    ``poison`` (see :func:`poisoned_train_set`), ``n_test``, the mean and
    sample std (ddof=1) over seeds of the final and the peak (best-epoch)
    clean test accuracy, and ``per_seed`` details.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ntga.victims.train import TrainConfig, train_and_evaluate  # pylint: disable=g-import-not-at-top

  cfg = TrainConfig(**{**cell["victim"], "defense": cell["defense"]}).resolved()
  train, poison = poisoned_train_set(cell, cache=cache)
  d = cell["data"]
  test = _load(d["spec"], "test", d["test_limit"])
  per_seed = []
  for seed in cell["seeds"]:
    m = train_and_evaluate(jax.random.key(seed), train, test, cfg,
                           progress=False)
    per_seed.append({"seed": seed, "final": m["final_test_accuracy"],
                     "peak": m["peak_test_accuracy"],
                     "peak_epoch": m["peak_epoch"],
                     "test_accuracy": m["test_accuracy"],
                     "wall_clock_s": m["wall_clock_s"]})
  return {"poison": poison, "n_train": len(train), "n_test": len(test),
          **summarize(per_seed)}


def cell_hash(cell: dict[str, Any]) -> str:
  """sha256 of what a cell computes (its labels ``row``/``col`` left out).

  Two tables that share a cell (e.g. the clean baseline) share its record.
  """
  from benchmarks.run import config_hash  # pylint: disable=g-import-not-at-top
  return config_hash({k: v for k, v in cell.items() if k not in ("row", "col")})


def cell_command(name: str, cell: dict[str, Any], *, smoke: bool = False) -> str:
  """The command line that (re)computes exactly this cell."""
  smoke_flag = " --smoke" if smoke else ""
  return (f"python -m benchmarks.run {name}{smoke_flag} --cells "
          f"{shlex.quote(cell_id(cell))}")


def cell_path(out: Path, name: str, cell: dict[str, Any]) -> Path:
  """Where the record of ``cell`` of table ``name`` lives under ``out``."""
  return Path(out) / name / f"{cell_hash(cell)[:16]}.json"


def _twin(out: Path, path: Path, smoke: bool) -> dict[str, Any] | None:
  """A record with the same cell hash in another table's folder, if any."""
  for other in sorted(Path(out).glob(f"*/{path.name}")):
    if other != path:
      rec = json.loads(other.read_text())
      if rec.get("kind") == "table_cell" and rec.get("smoke") == smoke:
        return rec
  return None


def run_table(name: str, config: dict[str, Any], *, smoke: bool = False,
              out: Path, force: bool = False, cells: str | None = None,
              cache: Path | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
  """Runs every cell of a table config that has no record yet.

  Args:
    name: the config module's name.
    config: its ``get_config(smoke)``.
    smoke: mark the records as smoke runs.
    out: the results folder; cell records go to ``out/name/``.
    force: recompute cells that have a record.
    cells: a cell name ``"row / col"`` or an fnmatch pattern on it; only
      matching cells run.
    cache: folder of cached poisonings (default ``out/.poison_cache``).
    log: receives one progress line per cell.

  Returns:
    ``{"cells": [...]}``: per cell its row, column, record path and whether
    it was ``cached``, ``run`` or ``skipped`` (not matched by ``cells``).

  Raises:
    ConfigError: a malformed table, or a ``cells`` pattern that matches none.
  """
  from benchmarks import _records  # pylint: disable=g-import-not-at-top
  from benchmarks.run import RECORD_VERSION  # pylint: disable=g-import-not-at-top
  from ntga import io  # pylint: disable=g-import-not-at-top

  check_table(name, config, smoke=smoke)
  cache = Path(out) / CACHE if cache is None else Path(cache)
  chosen = [c for c in config["cells"]
            if cells is None or cells == cell_id(c)
            or fnmatch.fnmatchcase(cell_id(c), cells)]
  if not chosen:
    raise ConfigError(f"--cells {cells!r} matches no cell of {name}; cells are "
                      "named 'ROW / COL', e.g. "
                      f"{cell_id(config['cells'][0])!r}")
  status = []
  for i, cell in enumerate(config["cells"]):
    path = cell_path(out, name, cell)
    entry = {"row": cell["row"], "col": cell["col"], "path": str(path)}
    if cell not in chosen:
      status.append({**entry, "status": "skipped"})
      continue
    if path.exists() and not force:
      status.append({**entry, "status": "cached"})
      continue
    path.parent.mkdir(parents=True, exist_ok=True)
    twin = _twin(out, path, smoke) if not force else None
    if twin is not None:  # the same computation, recorded for another table
      io.write_json(path, {**twin, "name": name, "cell": cell,
                           "command": cell_command(name, cell, smoke=smoke),
                           "reused_from": twin["name"]})
      status.append({**entry, "status": "cached"})
      continue
    log(f"[{i + 1}/{len(config['cells'])}] {name}: {cell_id(cell)} ...")
    started = datetime.datetime.now(datetime.timezone.utc)
    start = time.perf_counter()
    metrics = run_cell(cell, cache=cache)
    record = {
        "record_version": RECORD_VERSION, "name": name, "kind": "table_cell",
        "smoke": smoke, "cell": cell, "config_hash": cell_hash(cell),
        "seeds": list(cell["seeds"]), "versions": io.library_versions(),
        "machine": _records.machine(),
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_clock_s": time.perf_counter() - start,
        "command": cell_command(name, cell, smoke=smoke),
        "metrics": metrics,
    }
    io.write_json(path, record)
    log(f"    final {100 * metrics['final_mean']:.2f} +- "
        f"{100 * metrics['final_std']:.2f}, peak {100 * metrics['peak_mean']:.2f}"
        f" ({record['wall_clock_s']:.0f} s)")
    status.append({**entry, "status": "run"})
  return {"cells": status}
