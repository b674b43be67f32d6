"""Regenerates the benchmark results page from the JSON records alone.

  python -m benchmarks.report [--results DIR] [--out FILE]

Reads every ``*.json`` record under DIR (default ``benchmarks/results/``),
ignores smoke records, keeps the newest record of each config name, and
writes a markdown page (default ``benchmarks/RESULTS_generated.md``) with one
table per config kind, each followed by the commands that produced it, plus a
PNG plot beside the page for ``attack_speed`` (images/second per attack).
Accuracies are mean +- sample std (ddof=1) over the seeds, final and peak
(best-epoch). The same records always give the same files.

Example:
  >>> from benchmarks import report
  >>> report.main(["--results", "/tmp/bench", "--out", "/tmp/bench/R.md"])  # doctest: +SKIP
  0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from ntga import io
from ntga.errors import DataError, NTGAError, OutputError

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_OUT = HERE / "RESULTS_generated.md"


def load_records(results: Path) -> list[dict[str, Any]]:
  """The newest non-smoke record of each config name, sorted by kind and name.

  Raises:
    DataError: the folder is missing, or a record is not valid JSON or lacks
      the fields every record has.
  """
  if not Path(results).is_dir():
    raise DataError(f"results folder {results} does not exist")
  newest: dict[str, dict[str, Any]] = {}
  for path in sorted(Path(results).glob("*.json")):
    try:
      rec = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise DataError(f"{path}: not a JSON record ({e})") from e
    missing = [k for k in ("name", "kind", "smoke", "config_hash", "started_utc",
                           "metrics", "command")
               if not isinstance(rec, dict) or k not in rec]
    if missing:
      raise DataError(f"{path}: not a benchmark record (missing {', '.join(missing)})")
    if rec["smoke"]:
      continue
    old = newest.get(rec["name"])
    if old is None or (rec["started_utc"], rec["config_hash"]) > (
        old["started_utc"], old["config_hash"]):
      newest[rec["name"]] = rec
  return sorted(newest.values(), key=lambda r: (r["kind"], r["name"]))


def _pct(mean: float, std: float) -> str:
  return f"{100 * mean:.2f} +- {100 * std:.2f}"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |",
           "| " + " | ".join("---:" if i in right else "---"
                             for i in range(len(header))) + " |"]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return lines


def _provenance(records: list[dict[str, Any]]) -> list[str]:
  lines = ["", "Produced by:", "", "```"]
  lines += [r["command"] for r in records]
  lines += ["```", ""]
  for r in records:
    m, v = r.get("machine", {}), r.get("versions", {})
    lines.append(
        f"- `{r['name']}` (config {r['config_hash'][:16]}): {r['started_utc']}, "
        f"{r.get('wall_clock_s', float('nan')):.0f} s wall-clock on "
        f"{m.get('cpus', '?')} CPUs / {m.get('device', '?')}, jax {v.get('jax')}, "
        f"ntga {v.get('ntga')}")
  return lines


def _poisoned_label(config: dict[str, Any], poison: dict[str, Any]) -> str:
  label = config["attack"]["name"]
  eps = poison.get("config", {}).get("eps")
  if eps is not None:
    label += f" (eps {eps:.3g})"
  if config["attack"].get("ratio") is not None:
    label += f", ratio {config['attack']['ratio']:g}"
  return label


def _poison_eval(records, out: Path) -> list[str]:
  del out
  rows = []
  for r in records:
    c, p = r["config"], r["metrics"]["poison"]
    for res in r["metrics"]["results"]:
      rows.append([r["name"], f"{c['data']['spec']} ({p['n_train']} train)",
                   _poisoned_label(c, p) if res["train_set"] == "poisoned"
                   else "clean",
                   res["victim"], res["defense"], str(res["epochs"]),
                   str(len(res["per_seed"])),
                   _pct(res["final_mean"], res["final_std"]),
                   _pct(res["peak_mean"], res["peak_std"])])
  return _table(["config", "data", "training set", "victim", "defense", "epochs",
                 "seeds", "final test acc. (%)", "peak test acc. (%)"],
                rows, {5, 6, 7, 8})


def _attack_speed(records, out: Path) -> list[str]:
  rows, points = [], []
  for r in records:
    for res in r["metrics"]["results"]:
      rows.append([r["name"], res["data"], res["attack"], str(res["n_images"]),
                   f"{res['seconds']:.2f}", f"{res['images_per_second']:.1f}"])
      points.append((f"{Path(res['data']).name}", res["attack"],
                     res["images_per_second"]))
  lines = _table(["config", "data", "attack", "images", "seconds",
                  "images / second"], rows, {3, 4, 5})
  png = out.with_name(out.stem + "_attack_speed.png")
  _plot_speed(points, png)
  return lines + ["", f"![images per second per attack]({png.name})"]


def _plot_speed(points: list[tuple[str, str, float]], png: Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

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
  try:
    fig.savefig(png, dpi=100, metadata={"Software": None})
  except OSError as e:
    raise OutputError(f"cannot write {png}: {e.strerror}") from e
  finally:
    plt.close(fig)


def _ntga_step_speed(records, out: Path) -> list[str]:
  del out
  rows = []
  for r in records:
    c, m = r["config"], r["metrics"]
    rows.append([r["name"], c["data"], str(c["block"]), str(c["targets"]),
                 f"{m['seconds_per_step_ours']:.3g}",
                 f"{m['seconds_per_step_reference_scheme']:.3g}",
                 f"{m['speedup']:.1f} x", f"{m['gradient_cosine']:.5f}"])
  return _table(["config", "data", "block", "targets", "ours (s / step)",
                 "reference scheme (s / step)", "speed-up", "gradient cosine"],
                rows, {2, 3, 4, 5, 6, 7})


SECTIONS: dict[str, tuple[str, Callable[[list, Path], list[str]]]] = {
    "poison_eval": ("Poisoned training: clean test accuracy of victims "
                    "(mean +- std over seeds)", _poison_eval),
    "attack_speed": ("Poison generation speed", _attack_speed),
    "ntga_step_speed": ("NTGA: seconds per PGD step, ours vs the reference "
                        "scheme", _ntga_step_speed),
}


def render(records: list[dict[str, Any]], out: Path) -> str:
  """The markdown page for ``records`` (writes plots beside ``out``)."""
  lines = ["# Benchmark results (generated)", "",
           "Generated by `python -m benchmarks.report` from the records in "
           "`benchmarks/results/`; do not edit by hand. Accuracies: mean +- "
           "sample std (ddof=1) over seeds, final (last epoch) and peak (best "
           "epoch), in %."]
  if not records:
    lines += ["", "No non-smoke records yet: run `python -m benchmarks.run CONFIG`."]
  kinds = {r["kind"] for r in records}
  for kind in [k for k in SECTIONS if k in kinds] + sorted(kinds - set(SECTIONS)):
    group = [r for r in records if r["kind"] == kind]
    title, section = SECTIONS.get(kind, (kind, None))
    lines += ["", f"## {title}", ""]
    if section is None:
      lines.append(f"(no report section for kind {kind!r})")
    else:
      lines += section(group, out)
    lines += _provenance(group)
  return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
  """Writes ``text`` to a temp file beside ``path``, then renames it."""
  try:
    io.atomic_write(path, lambda f: f.write(text.encode()))
  except OSError as e:
    raise OutputError(f"cannot write {path}: {e.strerror}") from e


def main(argv: Sequence[str] | None = None) -> int:
  """Command-line entry point; returns the exit status (2 on a user error)."""
  p = argparse.ArgumentParser(prog="python -m benchmarks.report",
                              description=__doc__.split("\n")[0])
  p.add_argument("--results", default=str(RESULTS), help="records folder")
  p.add_argument("--out", default=str(DEFAULT_OUT), help="markdown file to write")
  args = p.parse_args(sys.argv[1:] if argv is None else list(argv))
  out = Path(args.out)
  try:
    _write_text(out, render(load_records(Path(args.results)), out))
  except NTGAError as e:
    print(f"report: error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {out}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
