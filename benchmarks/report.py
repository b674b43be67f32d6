"""Regenerates benchmarks/RESULTS.md and its plots from the stored records alone.

  python -m benchmarks.report [--results DIR] [--out FILE] [--check]

Reads every record under DIR (default ``benchmarks/results/``):

* ``<config>/<hash>.json``: one cell of a ``table`` config (``python -m
  benchmarks.run TABLE``). Each table config of :mod:`benchmarks.configs` is
  rendered with its title, description, paper values and settings; a cell
  shows the record whose hash matches the config's current cell (stale and
  smoke records are ignored) or ``not run``.
* ``*.json``: a record of ``python -m benchmarks.run CONFIG`` (kinds
  ``poison_eval``, ``attack_speed``, ``ntga_step_speed``,
  ``ntga_block_sweep``); the newest non-smoke record of each config name.
* ``*.jsonl``: lines of the stand-alone scripts ``benchmarks/<name>.py``; the
  newest line of each distinct setting.
* ``legacy/*.json``: results imported from earlier sessions (``kind``
  ``legacy``: runs with their command and provenance, tables that point into
  them; ``legacy_notes``: prose added to a ``*.jsonl`` section).

The page (default ``benchmarks/RESULTS.md``, plots in ``plots/`` beside it)
puts the reproduced tables first, then speed and memory, then the rest; every
section states its settings, its numbers, the commands that produced them and
the machine. Accuracies are mean +- sample std (ddof=1) over seeds, final
(last epoch) and peak (best epoch), in %. The same records always give the
same bytes. ``--check`` writes nothing and exits 1 if FILE differs from what
the records give (it compares the markdown only: no plot is written beside
the page).

Example:
  >>> from benchmarks import report
  >>> report.main(["--check"])  # doctest: +SKIP
  0
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks import configs
from benchmarks._tables import cell_hash, mean_std
from ntga import io
from ntga.errors import DataError, NTGAError, OutputError

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_OUT = HERE / "RESULTS.md"
PLOTS = "plots"  # folder beside the page
LEGACY = "legacy"  # sub-folder of the results with imported records

RUN_FIELDS = ("name", "kind", "smoke", "config_hash", "started_utc", "metrics",
              "command")
LEGACY_FIELDS = ("name", "title", "group", "order", "description", "machine",
                 "runs", "tables")
LEGACY_RUN_FIELDS = ("command", "provenance", "values")


# --------------------------------------------------------------------------
# Records


@dataclasses.dataclass
class Records:
  """Everything under a results folder, parsed and validated.

  Attributes:
    runs: newest non-smoke ``benchmarks.run`` record per config name.
    cells: table name -> its non-smoke ``table_cell`` records.
    lines: script name -> its JSONL lines, in file order.
    legacy: ``legacy`` records, in (group, order, name) order.
    notes: script name -> ``legacy_notes`` records.
  """
  runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  cells: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
  lines: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
  legacy: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  notes: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)


def _read_json(path: Path) -> Any:
  try:
    return json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise DataError(f"{path}: not a JSON record ({e})") from e


def _require(path: Path, rec: Any, fields: Sequence[str], what: str) -> None:
  missing = [k for k in fields if not isinstance(rec, dict) or k not in rec]
  if missing:
    raise DataError(f"{path}: not {what} (missing {', '.join(missing)})")


def _check_legacy(path: Path, rec: dict[str, Any]) -> None:
  _require(path, rec, LEGACY_FIELDS, "a legacy record")
  for run_id, run in rec["runs"].items():
    _require(path, run, LEGACY_RUN_FIELDS, f"a legacy run ({run_id!r})")
  for table in rec["tables"]:
    _require(path, table, ("caption", "header", "rows"), "a legacy table")
    for row in table["rows"]:
      if len(row) != len(table["header"]):
        raise DataError(f"{path}: a row of table {table['caption']!r} has "
                        f"{len(row)} cells for {len(table['header'])} columns")
      for cell in row:
        _legacy_cell(path, rec, cell)  # raises on a dangling reference


def load_records(results: Path) -> Records:
  """Reads and validates every record under ``results``.

  Args:
    results: the records folder (see the module docstring for its layout).

  Returns:
    The :class:`Records`; smoke records and superseded ``benchmarks.run``
    records are already left out.

  Raises:
    DataError: the folder is missing, or a record is not valid JSON, lacks the
      fields its kind needs, has a kind the report cannot render, or (legacy)
      points at a run or value it does not hold.
  """
  results = Path(results)
  if not results.is_dir():
    raise DataError(f"results folder {results} does not exist")
  out = Records()
  newest: dict[str, dict[str, Any]] = {}
  for path in sorted(results.glob("*.json")):
    rec = _read_json(path)
    _require(path, rec, RUN_FIELDS + ("config",), "a benchmark record")
    if rec["kind"] not in RUN_SECTIONS:
      raise DataError(f"{path}: kind {rec['kind']!r} has no report section; "
                      f"known kinds: {', '.join(RUN_SECTIONS)}")
    if rec["smoke"]:
      continue
    old = newest.get(rec["name"])
    if old is None or (rec["started_utc"], rec["config_hash"]) > (
        old["started_utc"], old["config_hash"]):
      newest[rec["name"]] = rec
  out.runs = sorted(newest.values(), key=lambda r: (r["kind"], r["name"]))
  for folder in sorted(p for p in results.iterdir()
                       if p.is_dir() and p.name != LEGACY):
    for path in sorted(folder.glob("*.json")):
      rec = _read_json(path)
      _require(path, rec, RUN_FIELDS + ("cell",), "a table cell record")
      if rec["kind"] != "table_cell":
        raise DataError(f"{path}: kind {rec['kind']!r} in a table folder "
                        "(expected 'table_cell')")
      if not rec["smoke"]:
        out.cells.setdefault(folder.name, []).append(rec)
  for path in sorted(results.glob("*.jsonl")):
    try:
      text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
      raise DataError(f"{path}: cannot read ({e})") from e
    for i, line in enumerate(text.splitlines(), 1):
      if not line.strip():
        continue
      try:
        rec = json.loads(line)
      except json.JSONDecodeError as e:
        raise DataError(f"{path}:{i}: not a JSON line ({e})") from e
      _require(Path(f"{path}:{i}"), rec, ("benchmark",), "a benchmark line")
      if rec["benchmark"] not in LINE_SECTIONS:
        raise DataError(f"{path}:{i}: benchmark {rec['benchmark']!r} has no "
                        f"report section; known: {', '.join(LINE_SECTIONS)}")
      out.lines.setdefault(rec["benchmark"], []).append(rec)
  legacy = []
  for path in sorted((results / LEGACY).glob("*.json")):
    rec = _read_json(path)
    _require(path, rec, ("kind",), "a legacy record")
    if rec["kind"] == "legacy_notes":
      _require(path, rec, ("benchmark", "description", "provenance"),
               "a legacy note")
      out.notes.setdefault(rec["benchmark"], []).append(rec)
    elif rec["kind"] == "legacy":
      _check_legacy(path, rec)
      legacy.append(rec)
    else:
      raise DataError(f"{path}: kind {rec['kind']!r} in legacy/ (expected "
                      "'legacy' or 'legacy_notes')")
  out.legacy = sorted(legacy, key=lambda r: (r["group"], r["order"], r["name"]))
  return out


def table_configs() -> list[tuple[str, dict[str, Any]]]:
  """``(name, config)`` of every ``table`` config in :mod:`benchmarks.configs`."""
  found = []
  for name in configs.names():
    config = configs.load(name)
    if config["kind"] == "table":
      found.append((name, config))
  return found


# --------------------------------------------------------------------------
# Markdown helpers


@dataclasses.dataclass(frozen=True)
class Plot:
  """A figure of the page: its file name under ``plots/`` and how to draw it."""
  name: str
  draw: Callable[[Path], None]  # writes the PNG to the given path


def _pct(mean: float, std: float) -> str:
  return f"{100 * mean:.2f} +- {100 * std:.2f}"


def _esc(text: Any) -> str:
  return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]],
           right: set[int] | None = None) -> list[str]:
  """A markdown table; columns in ``right`` (default: all but the first) align right."""
  right = set(range(1, len(header))) if right is None else right
  lines = ["| " + " | ".join(_esc(h) for h in header) + " |",
           "| " + " | ".join("---:" if i in right else "---"
                             for i in range(len(header))) + " |"]
  lines += ["| " + " | ".join(_esc(c) for c in row) + " |" for row in rows]
  return lines


def _code(commands: Sequence[str]) -> list[str]:
  return ["```"] + list(dict.fromkeys(commands)) + ["```"]


def _value(v: Any) -> str:
  """A setting as text: floats with %g, None as '-', lists comma-joined."""
  if v is None:
    return "-"
  if isinstance(v, bool):
    return str(v).lower()
  if isinstance(v, float):
    return f"{v:g}"
  if isinstance(v, (list, tuple)):
    return ", ".join(_value(x) for x in v)
  if isinstance(v, dict):
    return ", ".join(f"{k}={_value(x)}" for k, x in v.items()) or "-"
  return str(v)


def _doc_markdown(doc: str | None, drop_usage: bool = False) -> list[str]:
  """A docstring as markdown: indented paragraphs become code blocks.

  Args:
    doc: the docstring (reST roles such as :mod:`x` and ``x`` become `x`).
    drop_usage: leave out indented paragraphs (the section lists the exact
      commands itself).
  """
  if not doc:
    return []
  doc = re.sub(r":[a-z]+:`([^`]+)`", r"`\1`", doc).replace("``", "`")
  lines: list[str] = []
  for para in doc.strip().split("\n\n"):
    rows = para.split("\n")
    if all(r.startswith("  ") or not r.strip() for r in rows):
      if not drop_usage:
        lines += ["```"] + [r[2:] for r in rows] + ["```", ""]
    else:
      lines += [" ".join(r.strip() for r in rows), ""]
  return lines


def _module_doc(module: str) -> str | None:
  """The docstring of ``benchmarks/<module>.py`` read without importing it."""
  path = HERE / f"{module.replace('.', '/')}.py"
  try:
    return ast.get_docstring(ast.parse(path.read_text()))
  except OSError:
    return None


def _machine_text(machine: Any, versions: Any) -> str:
  if isinstance(machine, str):
    text = machine
  elif isinstance(machine, dict):
    text = f"{machine.get('cpus', '?')} CPUs, device {machine.get('device', '?')}"
    if machine.get("platform"):
      text += f" ({machine['platform']})"
  else:
    text = "machine not recorded"
  if isinstance(versions, dict) and versions:
    text += "; " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
  return text


def _runs_footer(records: Sequence[dict[str, Any]]) -> list[str]:
  """Machine, versions, dates and wall clock of a group of records."""
  by_machine: dict[str, list[dict[str, Any]]] = {}
  for r in records:
    versions = r.get("versions") or {k: r[k] for k in ("jax",) if k in r}
    by_machine.setdefault(_machine_text(r.get("machine"), versions), []).append(r)
  lines = []
  for text, group in by_machine.items():
    dates = sorted(r["started_utc"] for r in group if r.get("started_utc"))
    when = ("date not recorded" if not dates else f"started {dates[0]}"
            if len(dates) == 1 else f"started {dates[0]} to {dates[-1]}")
    walls = [r["wall_clock_s"] for r in group if r.get("wall_clock_s") is not None]
    wall = f"; {sum(walls):.0f} s wall clock in all" if walls else ""
    n = f"{len(group)} run{'s' if len(group) > 1 else ''}"
    lines.append(f"- {n} on {text}; {when}{wall}.")
  return ["Measured on:", ""] + lines


# --------------------------------------------------------------------------
# Tables (table configs + table_cell records)


def _attack_text(attack: dict[str, Any] | None) -> str:
  """A cell's training-set poisoning in one line, e.g. ``ntga (t=64), seed 0``."""
  if attack is None:
    return "none (clean training set)"
  text = attack["name"]
  if attack.get("settings"):
    text += f" ({_value(attack['settings'])})"
  text += f", seed {attack.get('seed')}"
  if attack.get("ratio") is not None:
    text += f", ratio {attack['ratio']:g}"
  return text


def _cell_settings(cell: dict[str, Any]) -> dict[str, str]:
  """The settings of a cell as ``{name: text}``, in a fixed order."""
  out = {f"data.{k}": "all" if v is None else _value(v)
         for k, v in cell["data"].items()}
  out["attack"] = _attack_text(cell["attack"])
  out.update({f"victim.{k}": _value(v) for k, v in cell["victim"].items()})
  for k, v in cell.items():
    if k not in ("row", "col", "data", "attack", "victim"):
      out[k] = _value(v)
  return out


def _settings(config: dict[str, Any]) -> list[str]:
  """Settings shared by all cells, then those that vary by column, row or cell."""
  cells = config["cells"]
  flat = [_cell_settings(c) for c in cells]
  keys = list(dict.fromkeys(k for f in flat for k in f))

  def val(f, k):
    return f.get(k, "")

  common, by_col, by_row, by_cell = [], [], [], []
  for k in keys:
    vals = [val(f, k) for f in flat]
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
        v = [val(f, k) for c, f in zip(cells, flat) if c[axis] == label]
        row.append(v[0] if v else "")
      rows.append(row)
    return ["", f"Settings that differ by {'column' if axis == 'col' else 'row'}:",
            ""] + _table(["setting"] + labels, rows, set())

  if by_col:
    lines += axis_table("col", config["cols"], by_col)
  if by_row:
    lines += axis_table("row", config["rows"], by_row)
  at = {(c["row"], c["col"]): f for c, f in zip(cells, flat)}
  for k in by_cell:
    rows = [[row] + [val(at[(row, col)], k) if (row, col) in at else ""
                     for col in config["cols"]] for row in config["rows"]]
    lines += ["", f"`{k}` of each cell:", ""]
    lines += _table([""] + list(config["cols"]), rows, set())
  return lines


def _match_cells(config: dict[str, Any], records: list[dict[str, Any]]
                 ) -> dict[tuple[str, str], dict[str, Any]]:
  """(row, col) -> the newest record whose hash is that of the current cell."""
  by_hash: dict[str, dict[str, Any]] = {}
  for r in records:
    old = by_hash.get(r["config_hash"])
    if old is None or r["started_utc"] > old["started_utc"]:
      by_hash[r["config_hash"]] = r
  found = {}
  for cell in config["cells"]:
    rec = by_hash.get(cell_hash(cell))
    if rec is not None:
      found[(cell["row"], cell["col"])] = rec
  return found


def _cell_text(rec: dict[str, Any] | None) -> str:
  """``final mean +- std (peak P)`` in %, or ``not run``."""
  if rec is None:
    return "not run"
  m = rec["metrics"]
  if len(m["per_seed"]) == 1:  # no spread to show: say so
    return (f"{100 * m['final_mean']:.2f} (peak {100 * m['peak_mean']:.2f}, "
            "1 seed)")
  return (f"{_pct(m['final_mean'], m['final_std'])} "
          f"(peak {100 * m['peak_mean']:.2f})")


def _wall_text(rec: dict[str, Any] | None) -> str:
  """The cell's wall clock (s) and, in brackets, its poisoning's and poison's size."""
  if rec is None:
    return "not run"
  text = f"{rec['wall_clock_s']:.0f}"
  poison = rec["metrics"].get("poison")
  if poison and poison.get("wall_clock_s") is not None:
    parts = [f"poison {poison['wall_clock_s']:.0f}"]
    if poison.get("psnr_db") is not None:
      parts.append(f"PSNR {poison['psnr_db']:.1f} dB")
    if poison.get("max_abs_delta_levels") is not None:
      parts.append(f"max delta {poison['max_abs_delta_levels']}")
    if poison.get("cached"):
      parts.append("cached")
    text += f" ({', '.join(parts)})"
  return text


def _grid(config: dict[str, Any], text: Callable[[str, str], str]) -> list[str]:
  """A rows x cols markdown table of ``text(row, col)``."""
  rows = [[row] + [text(row, col) for col in config["cols"]]
          for row in config["rows"]]
  return _table([""] + list(config["cols"]), rows)


def _render_table(name: str, config: dict[str, Any],
                  records: list[dict[str, Any]]) -> list[str]:
  from benchmarks import _tables  # pylint: disable=g-import-not-at-top
  found = _match_cells(config, records)
  paper = config.get("paper") or {}
  positions = {(c["row"], c["col"]) for c in config["cells"]}

  def cell(row: str, col: str) -> str:
    if (row, col) not in positions:
      return ""
    p = paper.get(row, {}).get(col)
    paper_text = "" if p is None else f"<br>*paper {p:.2f}*"
    return _cell_text(found.get((row, col))) + paper_text

  lines = [f"## {config['title']}", ""] + _doc_markdown(config["description"])
  lines += [f"{len(found)} of {len(config['cells'])} cells measured. Each cell: "
            "clean test accuracy (%) of the victim, final-epoch mean +- std over "
            "the seeds, and (peak) the mean over the seeds of the best epoch's "
            "accuracy; *paper*: the published value. `not run`: no record for "
            "this cell's current settings yet.", ""]
  lines += _grid(config, cell) + [""] + _settings(config) + [""]
  if found:
    lines += ["Wall clock per cell (s): the cell's whole run (its poisoning unless "
              "cached, then training over all seeds); in brackets the poisoning "
              "of its training set (`cached`: done once by an earlier cell and "
              "reused, not part of this cell's total), with the poison's PSNR "
              "against the clean images and its largest pixel change in levels "
              "of 255 where the record has them.", ""]
    lines += _grid(config, lambda r, c: _wall_text(found.get((r, c)))
                   if (r, c) in positions else "") + [""]
  lines += ["Commands: the whole table (cells that have a record are skipped), "
            "or one cell:", ""]
  cmds = [f"python -m benchmarks.run {name}"]
  if config["cells"]:
    cmds.append(_tables.cell_command(name, config["cells"][0]))
  lines += _code(cmds) + [""]
  if found:
    lines += _runs_footer([found[k] for k in sorted(found)]) + [""]
  lines += [f"Records: `benchmarks/results/{name}/<cell hash>.json`, one per cell.",
            ""]
  return lines


# --------------------------------------------------------------------------
# benchmarks.run records


def _poisoned_label(config: dict[str, Any], poison: dict[str, Any]) -> str:
  label = config["attack"]["name"]
  eps = poison.get("config", {}).get("eps")
  if eps is not None:
    label += f" (eps {eps:.3g})"
  if config["attack"].get("ratio") is not None:
    label += f", ratio {config['attack']['ratio']:g}"
  return label


def _poison_eval(r: dict[str, Any]) -> tuple[list[str], list[Plot]]:
  c, p = r["config"], r["metrics"]["poison"]
  rows = []
  for res in r["metrics"]["results"]:
    rows.append([_poisoned_label(c, p) if res["train_set"] == "poisoned"
                 else "clean", res["victim"], res["defense"], str(res["epochs"]),
                 str(len(res["per_seed"])),
                 _pct(res["final_mean"], res["final_std"]),
                 _pct(res["peak_mean"], res["peak_std"])])
  lines = [f"Data `{c['data']['spec']}`: {p['n_train']} training images, "
           f"{p.get('n_test', '?')} test images. Poisoning took "
           f"{p.get('wall_clock_s', float('nan')):.0f} s.", ""]
  lines += _table(["training set", "victim", "defense", "epochs", "seeds",
                   "final test acc. (%)", "peak test acc. (%)"], rows, {3, 4, 5, 6})
  return lines, []


def _attack_speed(r: dict[str, Any]) -> tuple[list[str], list[Plot]]:
  rows, points = [], []
  for res in r["metrics"]["results"]:
    rows.append([res["data"], res["attack"], str(res["n_images"]),
                 f"{res['seconds']:.2f}", f"{res['images_per_second']:.1f}"])
    points.append((Path(res["data"]).name, res["attack"], res["images_per_second"]))
  plot = Plot(f"{r['name']}.png", lambda png: _plot_speed(points, png))
  lines = _table(["data", "attack", "images", "seconds", "images / second"],
                 rows, {2, 3, 4})
  return lines + ["", f"![images per second per attack]({PLOTS}/{plot.name})"], [plot]


def _savefig(fig, png: Path) -> None:
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  try:
    io.atomic_write(png, lambda f: fig.savefig(
        f, format="png", dpi=100, metadata={"Software": None}))
  except OSError as e:
    raise OutputError(f"cannot write {png}: {e.strerror}") from e
  finally:
    plt.close(fig)


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _plot_speed(points: list[tuple[str, str, float]], png: Path) -> None:
  plt = _pyplot()
  datasets = list(dict.fromkeys(p[0] for p in points))
  attacks_ = list(dict.fromkeys(p[1] for p in points))
  value = {(d, a): v for d, a, v in points}
  width = 0.8 / max(1, len(datasets))
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for i, d in enumerate(datasets):
    xs = [j + i * width for j, a in enumerate(attacks_) if (d, a) in value]
    ys = [value[(d, a)] for a in attacks_ if (d, a) in value]
    ax.bar(xs, ys, width, label=d)
  ax.set_xticks([j + width * (len(datasets) - 1) / 2 for j in range(len(attacks_))])
  ax.set_xticklabels(attacks_)
  ax.set_yscale("log")
  ax.set_ylabel("images / second (log)")
  ax.set_title("Poison generation throughput")
  ax.legend(fontsize="small")
  fig.tight_layout()
  _savefig(fig, png)


def _ntga_step_speed(r: dict[str, Any]) -> tuple[list[str], list[Plot]]:
  c, m = r["config"], r["metrics"]
  rows = [[c["data"], str(c["block"]), str(c["targets"]),
           f"{m['seconds_per_step_ours']:.3g}",
           f"{m['seconds_per_step_reference_scheme']:.3g}",
           f"{m['speedup']:.1f}x", f"{m['gradient_cosine']:.5f}"]]
  return _table(["data", "block", "targets", "ntga (s / step)",
                 "reference scheme (s / step)", "speed-up", "gradient cosine"],
                rows, {1, 2, 3, 4, 5, 6}), []


def _cnn_kernel_speed(r: dict[str, Any]) -> tuple[list[str], list[Plot]]:
  c, m = r["config"], r["metrics"]
  rows = []
  for label, p in m["pairs"].items():
    shape = "x".join(str(d) for d in c["shapes"][label])
    for what in ("value", "grad"):
      rows.append([f"{label} ({shape}), {what}, us / pair",
                   f"{p[f'ntga_{what}_us']:.3g}",
                   f"{p[f'neural_tangents_{what}_us']:.3g}",
                   f"{p[f'{what}_speedup']:.1f}x"])
  s, cs = m["step"], c["step"]
  rows.append([f"NTGA PGD step, block {cs['block']}, {cs['targets']} targets, s",
               f"{s['ntga_seconds']:.3g}", f"{s['neural_tangents_seconds']:.3g}",
               f"{s['speedup']:.1f}x"])
  lines = _table(["measure", "ntga kernel", "neural-tangents", "speed-up"],
                 rows, {1, 2, 3})
  lines += ["", f"Cosine between the two PGD-step gradients: "
            f"{s['gradient_cosine']:.6f}."]
  return lines, []


def _victim_speed(r: dict[str, Any]) -> tuple[list[str], list[Plot]]:
  m = r["metrics"]
  rows = [[v["victim"], str(v["batch_size"]), f"{v['images_per_second']:.0f}",
           f"{v['flops_per_image'] / 1e9:.3g}", f"{v['achieved_gflops']:.3g}",
           f"{100 * v['fraction_of_matmul']:.0f}",
           f"{v['first_epoch_seconds']:.1f}", f"{v['epoch_seconds']:.1f}",
           f"{v['eval_seconds']:.1f}"] for v in m["victims"]]
  lines = _table(["victim", "batch", "train images/s", "GFLOP / image",
                  "GFLOP/s", "% of matmul rate", "epoch 1 (s, with compile)",
                  "epoch 2 (s)", "evaluation (s)"], rows, set(range(1, 9)))
  rows = [["x".join(str(d) for d in layer["shape"]),
           f"{layer['xla_gflops']:.3g}", f"{layer['patch_gflops']:.3g}",
           f"{100 * layer['patch_fraction_of_matmul']:.0f}",
           f"{layer['speedup']:.1f}x", f"{layer['max_grad_rel_diff']:.1e}"]
          for layer in m["layers"]]
  lines += ["", "One 3x3 SAME convolution, forward + backward (batch x side x "
            "channels in x out):", ""]
  lines += _table(["layer", "XLA conv GFLOP/s", "patch-matmul GFLOP/s",
                   "% of matmul rate", "speed-up", "max gradient rel. diff"],
                  rows, {1, 2, 3, 4, 5})
  lines += ["", f"Matmul rate of this machine, measured in the same run (a "
            f"jitted {m['matmul']['before']['n']}^2 float32 matmul, mean of before "
            f"and after): {m['matmul']['gflops']:.3g} GFLOP/s."]
  return lines, []


def _evaluate_command(r: dict[str, Any]) -> tuple[list[str], list[Plot]]:
  m = r["metrics"]
  rows = [[f"`{run['command']}`", str(run["n_train"]), str(run["n_test"]),
           f"{100 * run['final']:.2f}", f"{100 * run['peak']:.2f}",
           str(run["peak_epoch"]), f"{run['wall_clock_s'] / 60:.1f}",
           " / ".join(f"{100 * a:.1f}" for a in run["test_accuracy"])]
          for run in m["runs"]]
  return _table(["command", "train", "test", "final (%)", "peak (%)",
                 "peak epoch", "wall-clock (min)", "test accuracy per epoch (%)"],
                rows, {1, 2, 3, 4, 5, 6}), []


def _get(d: dict[str, Any], key: str, fmt: str, scale: float = 1.0) -> str:
  """``format(d[key] * scale, fmt)``, or '-' when the value is missing."""
  v = d.get(key)
  return "-" if v is None else format(v * scale, fmt)


def _ntga_block_sweep(r: dict[str, Any]) -> tuple[list[str], list[Any]]:
  m = r["metrics"]
  rows = []
  for p in m["points"]:
    ok = p.get("status", "ok") == "ok"
    rss = _get(p, "peak_rss_mib", ".0f")
    rows.append([p["surrogate"], str(p["block"]), str(p["targets"]),
                 p.get("status", "ok"), _get(p, "seconds_per_step", ".3g"),
                 rss if ok or rss == "-" else f">= {rss}",
                 _get(p, "flops_per_step", ".3g", 1e-9),
                 _get(p, "achieved_gflops", ".3g"),
                 _get(p, "fraction_of_matmul", ".1f", 100.0),
                 _get(p, "kernel_share", ".0f", 100.0),
                 _get(p, "loadavg_1m", ".1f")])
  mm = m["matmul"]
  lines = _table(["surrogate", "block", "targets", "status", "s / PGD step",
                  "peak RSS (MiB)", "kernel GFLOP / step", "kernel GFLOP/s",
                  "% of matmul rate", "kernels' % of the step", "load (1 min)"],
                 rows, {1, 2, 4, 5, 6, 7, 8, 9, 10})
  lines += ["", f"Matmul rate of this machine, measured in the same run (a jitted "
            f"{mm.get('n', '?')} x {mm.get('n', '?')} float32 matmul, before and "
            f"after the points): {mm['gflops']:.3g} GFLOP/s."]
  sources = sorted({str(p["flops_source"]) for p in m["points"]
                    if p.get("flops_source")})
  if sources:
    lines += ["", "FLOP counts: " + "; ".join(sources) + "."]
  if m.get("loadavg_before") is not None:
    lines += ["", "Load average (1, 5, 15 min) before the sweep: "
              + ", ".join(f"{x:.1f}" for x in m["loadavg_before"])
              + "; after: " + ", ".join(f"{x:.1f}" for x in m["loadavg_after"])
              + "."]
  return lines, [_SweepPlots(r)]


class _SweepPlots:
  """The block-sweep figures: drawn by :func:`benchmarks._block_sweep.plot`."""

  def __init__(self, record: dict[str, Any]):
    self.record = record

  def draw_all(self, folder: Path) -> list[Path]:
    from benchmarks import _block_sweep  # pylint: disable=g-import-not-at-top
    return list(_block_sweep.plot(self.record, folder))


RUN_SECTIONS: dict[str, tuple[str, str, Callable[[dict[str, Any]],
                                                 tuple[list[str], list]]]] = {
    # kind: (group, title, renderer)
    "attack_speed": ("speed", "Poison generation speed", _attack_speed),
    "ntga_step_speed": ("speed", "NTGA: seconds per PGD step, ntga vs the "
                        "reference scheme", _ntga_step_speed),
    "ntga_block_sweep": ("speed", "NTGA: time, memory and FLOP rate vs block size",
                         _ntga_block_sweep),
    "cnn_kernel_speed": ("speed", "The cnn surrogate's kernel: ntga vs "
                         "neural-tangents", _cnn_kernel_speed),
    "victim_speed": ("speed", "Victim training throughput", _victim_speed),
    "evaluate_command": ("other", "A victim trained as `ntga evaluate` runs it",
                         _evaluate_command),
    "poison_eval": ("other", "Poisoned training: clean test accuracy of victims",
                    _poison_eval),
}


def _config_doc(name: str) -> str | None:
  try:
    return importlib.import_module(f"benchmarks.configs.{name}").__doc__
  except ImportError:
    return _module_doc(f"configs.{name}")


def _render_run(r: dict[str, Any], plots_for: Callable[[list[Any]], list[str]]
                ) -> tuple[list[str], list[Any]]:
  _, title, renderer = RUN_SECTIONS[r["kind"]]
  lines = [f"### {title} (`{r['name']}`)", ""]
  lines += _doc_markdown(_strip_title(_config_doc(r["name"])), drop_usage=True)
  body, plots = renderer(r)
  lines += body + [""]
  sweep = [p for p in plots if isinstance(p, _SweepPlots)]
  if sweep:
    lines += [f"![{Path(n).stem}]({PLOTS}/{n})" for n in plots_for(sweep)] + [""]
  lines += ["Command:", ""] + _code([r["command"]]) + [""]
  lines += _runs_footer([r]) + [""]
  return lines, plots


def _strip_title(doc: str | None) -> str | None:
  """A docstring without its first line (the section heading says it)."""
  if not doc:
    return doc
  parts = doc.strip().split("\n", 1)
  return parts[1] if len(parts) > 1 else ""


# --------------------------------------------------------------------------
# JSONL lines of the stand-alone scripts


def _newest_per_setting(lines: list[dict[str, Any]],
                        key: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
  """The last line of each distinct setting, in order of first appearance."""
  newest: dict[str, dict[str, Any]] = {}
  for rec in lines:
    newest[json.dumps(key(rec), sort_keys=True)] = rec
  return list(newest.values())


def _speed_lines(lines: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
  def key(r):
    return [r.get("block"), r.get("targets"), r.get("surrogate"), r.get("t"),
            len(r.get("seconds_per_step_ours_all", []))]
  rows, cmds = [], []
  for r in _newest_per_setting(lines, key):
    repeats = len(r["seconds_per_step_ours_all"])
    rows.append([f"`--repeats {repeats}`", str(r["block"]), str(r["targets"]),
                 f"{r['seconds_per_step_ours']:.2f}",
                 f"{r['seconds_per_step_reference_scheme']:.1f}",
                 f"**{r['speedup']:.0f}x**", f"{r['gradient_cosine']:.5f}"])
    cmds.append(f"python -m benchmarks.ntga_speed --block {r['block']} "
                f"--targets {r['targets']} --repeats {repeats}")
  table = _table(["run", "block", "targets", "(a) ntga, s / step (median)",
                  "(b) reference scheme, s / step", "speed-up (b / a)",
                  "gradient cosine"], rows)
  return table, cmds


def _mnist_lines(lines: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
  def key(r):
    return [r.get("limit"), r.get("config"), r.get("seeds")]
  out, cmds = [], []
  for r in _newest_per_setting(lines, key):
    seeds = r["seeds"]
    header = (["training set"] + [f"seed {s}" for s in seeds] + ["mean"])
    rows = []
    for label, accs in ((f"clean {r['limit']}", r["mlp_clean_trained"]),
                        (f"NTGA-poisoned {r['limit']}", r["mlp_poison_trained"])):
      rows.append([label] + [f"{100 * a:.2f}" for a in accs]
                  + [f"{100 * sum(accs) / len(accs):.2f}"])
    out += ["Clean test accuracy (%) of the MLP:", ""] + _table(header, rows)
    out += ["", f"Poisoning took {r['poison_seconds']:.0f} s; max abs delta "
            f"{r['max_abs_delta_levels']} levels of 255 (eps "
            f"{r['config']['eps']:g}); NTGA settings: {_value(r['config'])}."]
    poisoned = Path(r["command"].rsplit("--out ", 1)[1]).parent
    cmds.append(f"python -m benchmarks.ntga_mnist --out {poisoned} --limit "
                f"{r['limit']} --seeds {' '.join(map(str, seeds))}")
    cmds.append(f"# which runs: {r['command']}")
  return out, cmds


def _devices_lines(lines: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
  def key(r):
    return [r.get("limit"), r.get("block"), r.get("targets"), r.get("surrogate"),
            [x["devices"] for x in r.get("runs", [])]]
  out, cmds = [], []
  for r in _newest_per_setting(lines, key):
    rows = [[str(x["devices"]), f"{x['seconds']:.1f}",
             f"{x['images_per_second']:.0f}", f"`{x['sha256_x'][:12]}`"]
            for x in r["runs"]]
    out += _table(["devices", "seconds", "images / s", "sha256 of the output"],
                  rows, {0, 1, 2})
    out += ["", f"{r['limit']} images, blocks of {r['block']}, {r['targets']} "
            f"targets, {r['surrogate']} surrogate; outputs identical on every "
            f"device count: {str(r['identical_outputs']).lower()}."]
    cmds.append("python -m benchmarks.ntga_devices --devices "
                + " ".join(str(x["devices"]) for x in r["runs"])
                + f" --limit {r['limit']} --block {r['block']} --targets {r['targets']}")
  return out, cmds


AV_KNOWN = {"benchmark", "command", "spec", "limit", "test_limit", "epochs", "attack", "augment",
            "attack_config", "seed", "victim", "final_test_accuracy",
            "peak_test_accuracy", "poison_seconds", "train_seconds", "machine",
            "versions", "started_utc"}


def _attacks_victims_lines(lines: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
  def key(r):
    return [r.get(k) for k in ("spec", "limit", "test_limit", "epochs", "attack",
                               "attack_config", "seed", "victim", "augment")]
  newest = _newest_per_setting(lines, key)
  groups: dict[str, list[dict[str, Any]]] = {}
  for r in newest:
    g = json.dumps([r.get(k) for k in ("spec", "limit", "test_limit", "epochs",
                                       "victim", "augment")])
    groups.setdefault(g, []).append(r)
  out, cmds = [], []
  for g, recs in groups.items():
    spec, limit, test_limit, epochs, victim, augment = json.loads(g)
    out += [f"`{victim}` on `{spec}`: {limit} training images, "
            f"{test_limit if test_limit is not None else 'all'} test images, "
            f"{epochs} epochs"
            + (f", victim augmentation `{augment}`." if augment else "."), ""]
    by_attack: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
      a = json.dumps([r["attack"], r.get("attack_config")], sort_keys=True)
      by_attack.setdefault(a, []).append(r)
    rows = []
    for a, rs in by_attack.items():
      finals = [x["final_test_accuracy"] for x in rs]
      peaks = [x["peak_test_accuracy"] for x in rs]
      extra = sorted({k for x in rs for k in x} - AV_KNOWN)
      rows.append([rs[0]["attack"], _value(rs[0].get("attack_config")),
                   ", ".join(str(x["seed"]) for x in rs),
                   _pct(*mean_std(finals)), _pct(*mean_std(peaks)),
                   f"{_mean(x.get('poison_seconds') for x in rs):.0f}",
                   f"{_mean(x.get('train_seconds') for x in rs):.0f}",
                   "; ".join(f"{k}: " + ", ".join(_value(x.get(k)) for x in rs)
                             for k in extra)])
      cmds += [x["command"] for x in rs]
    out += _table(["attack", "attack settings", "seeds", "final test acc. (%)",
                   "peak test acc. (%)", "poison (s, mean)", "train (s, mean)",
                   "other"], rows, {3, 4, 5, 6}) + [""]
  return out, cmds


def _mean(values) -> float:
  vals = [v for v in values if v is not None]
  return sum(vals) / len(vals) if vals else float("nan")


LINE_SECTIONS: dict[str, tuple[str, int, str, Callable]] = {
    # benchmark: (group, order, title, renderer)
    "ntga_speed": ("speed", 10, "NTGA: one PGD step on one block, ntga vs the "
                   "reference code's scheme", _speed_lines),
    "ntga_devices": ("speed", 30, "NTGA on 1, 2 and 4 (simulated) devices",
                     _devices_lines),
    "ntga_mnist": ("other", 10, "NTGA on 10,000 MNIST images vs a 2-hidden-layer "
                   "ReLU MLP", _mnist_lines),
    "attacks_victims": ("other", 20, "Other poisoners vs a victim "
                        "(benchmarks/attacks_victims.py)", _attacks_victims_lines),
}


def _render_lines(benchmark: str, lines: list[dict[str, Any]],
                  notes: list[dict[str, Any]]) -> list[str]:
  _, _, title, renderer = LINE_SECTIONS[benchmark]
  out = [f"### {title}", ""]
  out += _doc_markdown(_strip_title(_module_doc(benchmark)))
  body, cmds = renderer(lines)
  out += body + [""]
  for n in notes:
    out += [n["description"], "", f"({n['provenance']}.)", ""]
  out += ["Commands:", ""] + _code(cmds) + [""]
  out += _runs_footer(lines) + [""]
  out += [f"Records: `benchmarks/results/{benchmark}.jsonl` (the newest line of "
          "each distinct setting is shown).", ""]
  return out


# --------------------------------------------------------------------------
# Legacy (imported) records


def _lookup(values: Any, key: str) -> Any:
  for part in key.split("."):
    if isinstance(values, list):
      values = values[int(part)]
    else:
      values = values[part]
  return values


def _legacy_cell(path: Path | None, rec: dict[str, Any], cell: Any) -> str:
  """A legacy table cell: text, a reference into a run's values, or a list."""
  if isinstance(cell, str):
    return cell
  if isinstance(cell, list):
    return "".join(_legacy_cell(path, rec, c) for c in cell)
  if not isinstance(cell, dict) or "run" not in cell or "key" not in cell:
    raise DataError(f"{path}: bad table cell {cell!r}")
  run = rec["runs"].get(cell["run"])
  if run is None:
    raise DataError(f"{path}: a table cell refers to unknown run {cell['run']!r}")
  try:
    v = _lookup(run["values"], cell["key"])
  except (KeyError, IndexError, ValueError, TypeError) as e:
    raise DataError(f"{path}: run {cell['run']!r} has no value "
                    f"{cell['key']!r}") from e
  if not isinstance(v, (int, float)) or isinstance(v, bool):
    raise DataError(f"{path}: value {cell['key']!r} of run {cell['run']!r} is "
                    "not a number")
  v = v * cell.get("scale", 1)
  if cell.get("fmt", "") == "d":
    v = round(v)
  return format(v, cell.get("fmt", "")) + cell.get("suffix", "")


def _render_legacy(rec: dict[str, Any]) -> list[str]:
  lines = [f"### {rec['title']}", "", rec["description"], ""]
  for table in rec["tables"]:
    rows = [[_legacy_cell(None, rec, c) for c in row] for row in table["rows"]]
    lines += [f"{table['caption']}:", ""] + _table(table["header"], rows) + [""]
  runs = rec["runs"]
  lines += ["Commands (`#` names the run the numbers above come from, and where "
            "its record was imported from):", "", "```"]
  for run_id, run in runs.items():
    lines += [f"# {run_id}: {run['provenance']}", run["command"]]
  lines += ["```"]
  dates = sorted(run["finished_utc"] for run in runs.values()
                 if run.get("finished_utc"))
  when = ("date not recorded" if not dates else
          f"finished {dates[0]}" if len(dates) == 1 else
          f"finished {dates[0]} to {dates[-1]}")
  lines += ["", f"Measured on: {_machine_text(rec['machine'], rec.get('versions'))}; "
            f"{when}.", ""]
  return lines


# --------------------------------------------------------------------------
# The page


HEADER = """\
# Benchmark results

Generated by `python -m benchmarks.report` from the records in
`benchmarks/results/` alone: do not edit by hand (`python -m benchmarks.report
--check` fails when this page and the records disagree). Every number comes
with the command that produced it and the machine it ran on. Accuracies are
clean test accuracies in %: mean +- sample std (ddof=1) over seeds, final
(last epoch) and peak (best epoch).
"""

# group -> (section title, the paragraph that opens it or None)
GROUPS = {
    "speed": ("Speed and memory", None),
    "other": ("Other measurements",
              "Measurements made with standalone scripts beside the harness "
              "(`python -m benchmarks.run`): their settings differ from the "
              "tables above and some use one seed, as each section says; where "
              "they overlap, the tables (3 seeds each) supersede them."),
}


@dataclasses.dataclass
class Page:
  """The rendered page: its markdown and the figures it links to."""
  text: str
  plots: list[Any]  # Plot, or _SweepPlots (names known only once drawn)


def render(records: Records, tables: Sequence[tuple[str, dict[str, Any]]],
           plots_for: Callable[[list[Any]], list[str]]) -> Page:
  """The page for ``records`` and the ``table`` configs ``tables``.

  Args:
    records: see :func:`load_records`.
    tables: ``(name, config)`` of the table configs, in page order.
    plots_for: draws the figures that cannot be named before they are drawn
      (:class:`_SweepPlots`) and returns their file names under ``plots/``.

  Returns:
    The :class:`Page`.
  """
  toc: list[tuple[int, str]] = []
  body: list[str] = []
  plots: list[Any] = []

  def add(level: int, lines: list[str]) -> None:
    toc.append((level, lines[0].lstrip("# ")))
    body.extend(lines)

  for name, config in tables:
    add(2, _render_table(name, config, records.cells.get(name, [])))

  for group, (group_title, intro) in GROUPS.items():
    sections: list[tuple[tuple[int, str], list[str]]] = []
    for r in records.runs:
      if RUN_SECTIONS[r["kind"]][0] == group:
        lines, p = _render_run(r, plots_for)
        plots += p
        sections.append(((0, r["name"]), lines))
    for bench, lines_ in records.lines.items():
      g, order, _, _ = LINE_SECTIONS[bench]
      if g == group:
        sections.append(((100 + order, bench),
                         _render_lines(bench, lines_, records.notes.get(bench, []))))
    for rec in records.legacy:
      if rec["group"] == group:
        sections.append(((200 + rec["order"], rec["name"]), _render_legacy(rec)))
    if not sections:
      continue
    add(2, [f"## {group_title}", ""] + ([intro, ""] if intro else []))
    for _, lines in sorted(sections, key=lambda s: s[0]):
      add(3, lines)

  contents = ["## Contents", ""]
  for level, title in toc:
    indent = "  " * (level - 2)
    contents.append(f"{indent}- [{title}](#{_anchor(title)})")
  text = "\n".join([HEADER] + contents + [""] + body).rstrip("\n") + "\n"
  return Page(text, plots)


def _anchor(title: str) -> str:
  """GitHub's anchor for a heading: lower case, punctuation dropped, - for space."""
  out = []
  for ch in title.lower():
    if ch.isalnum() or ch in "-_":
      out.append(ch)
    elif ch == " ":
      out.append("-")
  return "".join(out)


# --------------------------------------------------------------------------
# Entry point


def _write_text(path: Path, text: str) -> None:
  """Writes ``text`` to a temp file beside ``path``, then renames it."""
  try:
    io.atomic_write(path, lambda f: f.write(text.encode()))
  except OSError as e:
    raise OutputError(f"cannot write {path}: {e.strerror}") from e


def _make_dir(folder: Path) -> None:
  try:
    folder.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise OutputError(f"cannot create {folder}: {e.strerror}") from e


def _sweep_names(folder: Path, make: bool = False
                 ) -> Callable[[list[Any]], list[str]]:
  def draw(jobs: list[Any]) -> list[str]:
    if make:
      _make_dir(folder)
    names = []
    for job in jobs:
      names += [Path(p).name for p in job.draw_all(folder)]
    return names
  return draw


def build(results: Path, out: Path, *, check: bool = False) -> tuple[str, bool]:
  """Renders the page; writes it and its plots, or (``check``) compares it.

  Args:
    results: the records folder.
    out: the markdown file; plots go to ``plots/`` beside it.
    check: write nothing (figures that must be drawn to be named are drawn
      into a temporary folder).

  Returns:
    ``(text, same)``: the markdown, and whether ``out`` already held it.
  """
  records = load_records(results)
  tables = table_configs()
  plot_dir = out.parent / PLOTS
  if check:
    with tempfile.TemporaryDirectory() as tmp:
      page = render(records, tables, _sweep_names(Path(tmp)))
  else:
    page = render(records, tables, _sweep_names(plot_dir, make=True))
  try:
    same = out.read_text() == page.text
  except (OSError, UnicodeDecodeError):
    same = False
  if not check:
    for plot in page.plots:
      if isinstance(plot, Plot):
        _make_dir(plot_dir)
        plot.draw(plot_dir / plot.name)
    _write_text(out, page.text)
  return page.text, same


def main(argv: Sequence[str] | None = None) -> int:
  """Command-line entry point; 0 done, 1 ``--check`` found a difference, 2 error."""
  p = argparse.ArgumentParser(prog="python -m benchmarks.report",
                              description=__doc__.split("\n")[0])
  p.add_argument("--results", default=str(RESULTS), help="records folder")
  p.add_argument("--out", default=str(DEFAULT_OUT),
                 help="markdown file to write (plots go to plots/ beside it)")
  p.add_argument("--check", action="store_true",
                 help="write nothing; exit 1 if FILE differs from the records")
  args = p.parse_args(sys.argv[1:] if argv is None else list(argv))
  out = Path(args.out)
  try:
    _, same = build(Path(args.results), out, check=args.check)
  except NTGAError as e:
    print(f"report: error: {e}", file=sys.stderr)
    return 2
  if args.check:
    if not same:
      print(f"report: {out} differs from what the records give; run "
            "`python -m benchmarks.report` to regenerate it", file=sys.stderr)
      return 1
    print(f"{out} is up to date", file=sys.stderr)
    return 0
  print(f"wrote {out}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
