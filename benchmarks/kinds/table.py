"""Kind ``table``: (training set x victim x defense) cells, each recorded on its own.

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
``RESULTS/<config name>/<first 16 hex of the cell's hash>.json`` (a record of
kind ``table_cell``), so a long table is filled over several sittings
(``--cells`` picks a subset) and an interrupted run loses at most the epoch
in flight: each seed's training is kept as it finishes (:func:`seed_path`),
and the seed in flight resumes from its state after its last finished epoch.
Poisoned training sets are cached in ``RESULTS/.poison_cache/`` (not in
git), keyed by data, attack and the attack's code fingerprint
(:func:`ntga.attacks.pipeline.code_fingerprint`): the ratio is applied
afterwards, so one poisoning serves every ratio, and an edited attack is run
again instead of reusing a stale poisoning. An NTGA, EM or REM poisoning
that is interrupted resumes from its checkpoints there. The wall clock of a
cell and of its poisoning counts every sitting a resumed run took.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import table
  >>> cfg = configs.load("table4_ratio", smoke=True)
  >>> table.run_table("table4_ratio", cfg, smoke=True, out=Path("/tmp/b"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import json
import shlex
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks import _page, _records
from benchmarks.configs import resolve_spec
from ntga.errors import ConfigError

KIND = "table"
RECORD_KIND = "table_cell"
GROUP = "tables"

CACHE = ".poison_cache"  # poisonings and seeds' trainings; not in git
#: A poisoning's (in its cache folder) or a cell's (in the cache, prefixed
#: ``cell-<hash>``) seconds so far, kept while it runs so that a resumed run
#: reports the time of all its sittings (:class:`benchmarks._records.Stopwatch`).
ELAPSED = ".elapsed.json"
MIN_SEEDS = 3
_CELL_KEYS = {"row", "col", "data", "attack", "victim", "defense", "seeds"}
_HARNESS = "python -m benchmarks.run "


# --------------------------------------------------------------------------
# Cells.


def cell_id(cell: dict[str, Any]) -> str:
  """``"row / col"``: how a cell is named in progress lines and errors."""
  return f"{cell['row']} / {cell['col']}"


def cell_hash(cell: dict[str, Any]) -> str:
  """sha256 of what a cell computes (its labels ``row``/``col`` left out).

  Two tables that share a cell (e.g. the clean baseline) share its record.
  """
  return _records.config_hash({k: v for k, v in cell.items()
                               if k not in ("row", "col")})


def cell_command(name: str, cell: dict[str, Any], *, smoke: bool = False) -> str:
  """The command line that (re)computes exactly this cell."""
  smoke_flag = " --smoke" if smoke else ""
  return f"{_HARNESS}{name}{smoke_flag} --cells {shlex.quote(cell_id(cell))}"


def cell_path(out: Path, name: str, cell: dict[str, Any]) -> Path:
  """Where the record of ``cell`` of table ``name`` lives under ``out``."""
  return Path(out) / name / f"{cell_hash(cell)[:16]}.json"


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


def poison_key(cell: dict[str, Any], code: str) -> dict[str, Any]:
  """What a cached poisoning depends on: data, attack, seed, settings, code.

  The ratio is not part of it (it is applied to the cached poisoning).
  """
  d, a = cell["data"], cell["attack"]
  return {"spec": d["spec"], "limit": d["limit"], "name": a["name"],
          "seed": a["seed"], "settings": a["settings"], "code": code}


def poisoned_train_set(cell: dict[str, Any], *, cache: Path):
  """The cell's training set and a description of its poisoning.

  Args:
    cell: a table cell (see the module docstring).
    cache: folder of cached poisonings.

  Returns:
    ``(dataset, poison)``: the clean training set when ``cell["attack"]`` is
    None (``poison`` None); otherwise the poisoned set and the attack's
    manifest fields (its ``code_fingerprint`` among them) plus
    ``wall_clock_s`` (of the poisoning that filled the cache, summed over
    its sittings when a killed one was resumed), ``n_train``
    and ``cached``.
  """
  from ntga import attacks, io  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top

  train = _load(cell["data"]["spec"], "train", cell["data"]["limit"])
  a = cell["attack"]
  if a is None:
    return train, None
  attack = attacks.get(a["name"])
  key = poison_key(cell, pipeline.code_fingerprint(attack))
  folder = Path(cache) / f"poison-{_records.config_hash(key)[:16]}"
  done = folder / "poisoned.npz"
  cached = done.exists()
  if cached:
    with np.load(done) as z:
      x_full = z["x"]
    info = json.loads((folder / "manifest.json").read_text())
  else:
    with _records.Stopwatch(folder / ELAPSED) as watch:
      manifest, x_full = pipeline.poison_dataset(
          attack, pipeline.build_config(attack, a["settings"]), train,
          seed=a["seed"], ratio=None, out=folder)
    manifest.pop("versions")
    info = {**manifest, "wall_clock_s": watch.seconds()}
    io.write_npz(done, x=x_full)
    io.write_json(folder / "manifest.json", info)
    pipeline.remove_checkpoints(folder)
    (folder / ELAPSED).unlink()
  x = x_full
  if a["ratio"] is not None:
    x, mask = pipeline.ratio_subset(a["seed"], train.x, x_full, a["ratio"])
    info = {**info, "ratio": a["ratio"], "n_poisoned": int(mask.sum()),
            **attacks.perturbation_stats(train.x, x)}
  return (dataclasses.replace(train, x=np.asarray(x, np.uint8)),
          {**info, "n_train": len(train), "cached": cached})


def seed_path(cell: dict[str, Any], poison: dict[str, Any] | None, seed: int,
              *, cache: Path) -> Path:
  """Where one seed's training of a cell is kept (in the cache, not in git).

  The key is the cell without its labels and seed list, the poisoning's
  code fingerprint (None when clean), the fingerprint of the victims' code
  (the training loop and all it imports) and the seed, so a cell killed part
  way resumes at its first untrained seed, a cell that adds seeds to an
  otherwise identical one trains only the new ones, and a change to the
  victims' code trains again instead of reusing what older code trained.
  """
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top
  key = {"cell": cell_hash({**cell, "seeds": []}),
         "poison_code": poison and poison.get("code_fingerprint"),
         "victim_code": pipeline.source_fingerprint("ntga.victims.train"), "seed": seed}
  return Path(cache) / f"seed-{_records.config_hash(key)[:16]}.json"


def run_cell(cell: dict[str, Any], *, cache: Path,
             log: Callable[[str], None] = print) -> dict[str, Any]:
  """Trains the cell's victim once per seed on its training set.

  Each seed's result is kept in ``cache`` (:func:`seed_path`) as soon as it
  is trained, and taken from there when present. While a seed trains, its
  state is saved after every epoch beside that file (``seed-<hash>.ckpt/``,
  removed once the result is kept), so a seed killed part way resumes at its
  last finished epoch with the same result, its wall clock counting every
  sitting.

  Returns:
    ``poison`` (see :func:`poisoned_train_set`), ``n_test``, the mean and
    sample std (ddof=1) over seeds of the final and the peak (best-epoch)
    clean test accuracy, and ``per_seed`` details.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import io  # pylint: disable=g-import-not-at-top
  from ntga.victims.train import TrainConfig, train_and_evaluate  # pylint: disable=g-import-not-at-top

  cfg = TrainConfig.from_flat(**{**cell["victim"], "defense": cell["defense"]}).resolved()
  train, poison = poisoned_train_set(cell, cache=cache)
  d = cell["data"]
  test = _load(d["spec"], "test", d["test_limit"])
  per_seed = []
  for seed in cell["seeds"]:
    path = seed_path(cell, poison, seed, cache=cache)
    if path.exists():
      per_seed.append(json.loads(path.read_text()))
      log(f"    seed {seed}: kept from an earlier run")
      continue
    ckpt = path.with_suffix(".ckpt")  # the seed's state after each epoch
    m = train_and_evaluate(jax.random.key(seed), train, test, cfg, progress=False,
                           checkpoint_dir=ckpt)
    result = _records.seed_result(seed, m)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_json(path, result)
    shutil.rmtree(ckpt, ignore_errors=True)
    per_seed.append(result)
    resumed = (f", resumed after epoch {m['resumed_from_epoch']}"
               if m["resumed_from_epoch"] else "")
    log(f"    seed {seed}: final {100 * result['final']:.2f} "
        f"({result['wall_clock_s']:.0f} s{resumed})")
  return {"poison": poison, "n_train": len(train), "n_test": len(test),
          **_records.summarize(per_seed)}


def _twin(out: Path, path: Path, smoke: bool) -> dict[str, Any] | None:
  """A record with the same cell hash in another table's folder, if any."""
  for other in sorted(Path(out).glob(f"*/{path.name}")):
    if other != path:
      rec = json.loads(other.read_text())
      if rec.get("kind") == RECORD_KIND and rec.get("smoke") == smoke:
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
    cache: folder of cached poisonings and seeds' trainings (default
      ``out/.poison_cache``).
    log: receives one progress line per cell.

  Returns:
    ``{"cells": [...]}``: per cell its row, column, record path and whether
    it was ``cached``, ``run`` or ``skipped`` (not matched by ``cells``).

  Raises:
    ConfigError: a malformed table, or a ``cells`` pattern that matches none.
  """
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
    started = _records.now_utc()
    elapsed = cache / f"cell-{cell_hash(cell)[:16]}{ELAPSED}"
    with _records.Stopwatch(elapsed) as watch:
      metrics = run_cell(cell, cache=cache, log=log)
    record = _records.new_record(
        name=name, kind=RECORD_KIND, smoke=smoke, config_key="cell",
        config=cell, hash_=cell_hash(cell), seeds=list(cell["seeds"]),
        started=started, wall_clock_s=watch.seconds(),
        command=cell_command(name, cell, smoke=smoke), metrics=metrics)
    io.write_json(path, record)
    elapsed.unlink()
    log(f"    final {100 * metrics['final_mean']:.2f} +- "
        f"{100 * metrics['final_std']:.2f}, peak {100 * metrics['peak_mean']:.2f}"
        f" ({record['wall_clock_s']:.0f} s)")
    status.append({**entry, "status": "run"})
  return {"cells": status}


def execute(name: str, config: dict[str, Any], options) -> Any:
  """Runs a table config cell by cell (the harness's hook for this kind)."""
  from benchmarks import _harness  # pylint: disable=g-import-not-at-top
  status = run_table(name, config, smoke=options.smoke, out=Path(options.out),
                     force=options.force, cells=options.cells)
  counts = {s: sum(c["status"] == s for c in status["cells"])
            for s in ("run", "cached", "skipped")}
  return _harness.Outcome(
      f"{name}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
      + f" cells; records in {Path(options.out) / name}")


# --------------------------------------------------------------------------
# Check.


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless a cell record is consistent with its cell.

  Its hash is the cell's, its seeds are the cell's, every accuracy lies in
  [0, 1] with no final above its peak, the means are the seeds' means, and
  a poisoned cell's poison names the cell's attack, changed the images and
  (with a ratio) poisoned ``round(ratio * n_train)`` of them.
  """
  expect = _records.expect
  cell, m = record["cell"], record["metrics"]
  what = f"cell {cell_id(cell)} of {record['name']}"
  expect(record["kind"] == RECORD_KIND, f"{what}: kind {record['kind']!r}")
  expect(record["config_hash"] == cell_hash(cell), f"{what}: hash is not the cell's")
  expect([s["seed"] for s in m["per_seed"]] == list(cell["seeds"]),
         f"{what}: seeds differ from the cell's")
  _records.check_summary(m, what)
  attack, poison = cell["attack"], m["poison"]
  expect((attack is None) == (poison is None),
         f"{what}: poison metadata does not match the cell's attack")
  if attack is not None:
    expect(poison["attack"] == attack["name"], f"{what}: poisoned by {poison['attack']!r}")
    expect(poison["max_abs_delta_levels"] > 0, f"{what}: the poison changed nothing")
    if attack["ratio"] is not None:
      expect(poison["n_poisoned"] == round(attack["ratio"] * m["n_train"]),
             f"{what}: {poison['n_poisoned']} images poisoned at ratio "
             f"{attack['ratio']}")


# --------------------------------------------------------------------------
# Render.


def _attack_text(attack: dict[str, Any] | None) -> str:
  """A cell's training-set poisoning in one line, e.g. ``ntga (t=64), seed 0``."""
  if attack is None:
    return "none (clean training set)"
  text = attack["name"]
  if attack.get("settings"):
    text += f" ({_page.value(attack['settings'])})"
  text += f", seed {attack.get('seed')}"
  if attack.get("ratio") is not None:
    text += f", ratio {attack['ratio']:g}"
  return text


def _cell_settings(cell: dict[str, Any]) -> dict[str, str]:
  """The settings of a cell as ``{name: text}``, in a fixed order."""
  out = {f"data.{k}": "all" if v is None else _page.value(v)
         for k, v in cell["data"].items()}
  out["attack"] = _attack_text(cell["attack"])
  out.update({f"victim.{k}": _page.value(v) for k, v in cell["victim"].items()})
  for k, v in cell.items():
    if k not in ("row", "col", "data", "attack", "victim"):
      out[k] = _page.value(v)
  return out


def _settings(config: dict[str, Any]) -> list[str]:
  """Settings shared by all cells, then those that vary by column, row or cell."""
  cells = config["cells"]
  flat = [_cell_settings(c) for c in cells]
  keys = list(dict.fromkeys(k for f in flat for k in f))
  common, by_col, by_row, by_cell = [], [], [], []
  for k in keys:
    vals = [f.get(k, "") for f in flat]
    if len(set(vals)) == 1:
      common.append(f"`{k}` = {vals[0]}")
      continue
    col_vals: dict[str, set[str]] = {}
    row_vals: dict[str, set[str]] = {}
    for c, v in zip(cells, vals):
      col_vals.setdefault(c["col"], set()).add(v)
      row_vals.setdefault(c["row"], set()).add(v)
    if all(len(s) == 1 for s in col_vals.values()):
      by_col.append(k)
    elif all(len(s) == 1 for s in row_vals.values()):
      by_row.append(k)
    else:
      by_cell.append(k)
  lines = ["Settings of every cell: " + "; ".join(common) + "."]

  def axis_table(axis: str, labels: list[str], ks: list[str]) -> list[str]:
    rows = []
    for k in ks:
      row = [f"`{k}`"]
      for label in labels:
        v = [f.get(k, "") for c, f in zip(cells, flat) if c[axis] == label]
        row.append(v[0] if v else "")
      rows.append(row)
    return ["", f"Settings that differ by {'column' if axis == 'col' else 'row'}:",
            ""] + _page.table(["setting"] + labels, rows, set())

  if by_col:
    lines += axis_table("col", config["cols"], by_col)
  if by_row:
    lines += axis_table("row", config["rows"], by_row)
  at = {(c["row"], c["col"]): f for c, f in zip(cells, flat)}
  for k in by_cell:
    rows = [[row] + [at[(row, col)].get(k, "") if (row, col) in at else ""
                     for col in config["cols"]] for row in config["rows"]]
    lines += ["", f"`{k}` of each cell:", ""]
    lines += _page.table([""] + list(config["cols"]), rows, set())
  return lines


def match_cells(config: dict[str, Any], records: list[dict[str, Any]]
                ) -> dict[tuple[str, str], dict[str, Any]]:
  """(row, col) -> the newest record whose hash is that of the current cell."""
  by_hash: dict[str, dict[str, Any]] = {}
  for r in records:
    old = by_hash.get(r["config_hash"])
    if old is None or _records.when(r) > _records.when(old):
      by_hash[r["config_hash"]] = r
  found = {}
  for cell in config["cells"]:
    rec = by_hash.get(cell_hash(cell))
    if rec is not None:
      found[(cell["row"], cell["col"])] = rec
  return found


def cell_text(rec: dict[str, Any] | None) -> str:
  """``final mean +- std (peak P)`` in %, or ``not run``."""
  if rec is None:
    return "not run"
  m = rec["metrics"]
  peak = m.get("peak_mean")
  if len(m["per_seed"]) == 1:  # no spread to show: say so
    if peak is None:
      return f"{100 * m['final_mean']:.2f} (1 seed)"
    return f"{100 * m['final_mean']:.2f} (peak {100 * peak:.2f}, 1 seed)"
  text = _page.pct(m["final_mean"], m["final_std"])
  return text if peak is None else f"{text} (peak {100 * peak:.2f})"


def wall_text(rec: dict[str, Any] | None) -> str:
  """The cell's wall clock (s) and, in brackets, its poisoning's and poison's size."""
  if rec is None:
    return "not run"
  text = _page.fmt(rec.get("wall_clock_s"), ".0f")
  poison = rec["metrics"].get("poison")
  if poison:
    parts = []
    if poison.get("wall_clock_s") is not None:
      parts.append(f"poison {poison['wall_clock_s']:.0f}")
    if poison.get("psnr_db") is not None:
      parts.append(f"PSNR {poison['psnr_db']:.1f} dB")
    if poison.get("max_abs_delta_levels") is not None:
      parts.append(f"max delta {poison['max_abs_delta_levels']}")
    if poison.get("cached"):
      parts.append("cached")
    text += f" ({', '.join(parts)})" if parts else ""
  return text


def _train_text(rec: dict[str, Any] | None) -> str:
  """The last epoch's training accuracy (%, mean over seeds) where recorded."""
  if rec is None:
    return "not run"
  accs = [s["train_accuracy"][-1] for s in rec["metrics"]["per_seed"]
          if s.get("train_accuracy")]
  return f"{100 * float(np.mean(accs)):.1f}" if accs else "-"


def _robust_text(rec: dict[str, Any] | None) -> str:
  """Robust test accuracy (%, mean +- std over the seeds) where recorded."""
  if rec is None:
    return "not run"
  m = rec["metrics"]
  if "robust_mean" not in m:
    return "-"
  if len(m["per_seed"]) == 1:
    return f"{100 * m['robust_mean']:.2f} (1 seed)"
  return _page.pct(m["robust_mean"], m["robust_std"])


def _grid(config: dict[str, Any], text: Callable[[str, str], str]) -> list[str]:
  """A rows x cols markdown table of ``text(row, col)`` ('' off the cells)."""
  positions = {(c["row"], c["col"]) for c in config["cells"]}
  rows = [[row] + [text(row, col) if (row, col) in positions else ""
                   for col in config["cols"]] for row in config["rows"]]
  return _page.table([""] + list(config["cols"]), rows)


def _other_commands(found: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
  """Commands of shown records that the harness did not make (poisoning first)."""
  cmds = []
  for rec in (found[k] for k in sorted(found)):
    poison = rec["metrics"].get("poison") or {}
    for cmd in (poison.get("command"), rec.get("command")):
      if cmd and not cmd.startswith(_HARNESS):
        cmds.append(cmd)
  return cmds


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The table's section: the grid of cells, settings, wall clock, commands.

  Args:
    name: the table config.
    config: its (full) config.
    records: its cell records; a cell shows the newest record whose hash
      matches the config's current cell, or ``not run``.
  """
  found = match_cells(config, records)
  paper = config.get("paper") or {}

  def cell(row: str, col: str) -> str:
    p = paper.get(row, {}).get(col)
    paper_text = "" if p is None else f"<br>*paper {p:.2f}*"
    return cell_text(found.get((row, col))) + paper_text

  lines = _page.doc_markdown(config["description"])
  lines += [f"{len(found)} of {len(config['cells'])} cells measured. Each cell: "
            "clean test accuracy (%) of the victim, final-epoch mean +- std over "
            "the seeds, and (peak) the mean over the seeds of the best epoch's "
            "accuracy; *paper*: the published value. `not run`: no record for "
            "this cell's current settings yet.", ""]
  lines += _grid(config, cell) + [""] + _settings(config) + [""]
  if any(rec.get("wall_clock_s") is not None for rec in found.values()):
    lines += ["Wall clock per cell (s): the cell's whole run (its poisoning unless "
              "cached, then training over all seeds; `-`: not recorded); in "
              "brackets the poisoning of its training set (`cached`: done once "
              "by an earlier cell and reused, not part of this cell's total), "
              "with the poison's PSNR against the clean images and its largest "
              "pixel change in levels of 255 where the record has them.", ""]
    lines += _grid(config, lambda r, c: wall_text(found.get((r, c)))) + [""]
  if any(s.get("train_accuracy") for rec in found.values()
         for s in rec["metrics"]["per_seed"]):
    lines += ["Training accuracy (%) in the last epoch (mean over the seeds; `-`: "
              "not recorded):", ""]
    lines += _grid(config, lambda r, c: _train_text(found.get((r, c)))) + [""]
  if any("robust_mean" in rec["metrics"] for rec in found.values()):
    lines += ["Robust test accuracy (%) after the last epoch, where the cell's "
              "victim sets `robust_eps`: PGD-10 of step eps/4 from a random "
              "start in the L_inf ball of that radius, model in evaluation "
              "mode, no test-time augmentation (mean +- std over the seeds; "
              "`-`: not measured):", ""]
    lines += _grid(config, lambda r, c: _robust_text(found.get((r, c)))) + [""]
  lines += ["Commands: the whole table (cells that have a record are skipped), "
            "or one cell:", ""]
  cmds = [f"{_HARNESS}{name}"]
  if config["cells"]:
    cmds.append(cell_command(name, config["cells"][0]))
  lines += _page.code(cmds) + [""]
  other = _other_commands(found)
  if other:
    lines += ["Commands that made the records shown here:", ""]
    lines += _page.code(other) + [""]
  if found:
    lines += _page.footer([found[k] for k in sorted(found)]) + [""]
  lines += [f"Records: `benchmarks/results/{name}/<cell hash>.json`, one per cell.",
            ""]
  return lines, []
