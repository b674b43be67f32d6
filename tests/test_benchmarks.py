"""The benchmark harness: the kind registry, a smoke run of every kind, the cache, the report."""

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import _harness, _page, _records, configs, kinds, report, run
from benchmarks.kinds import ntga_block_sweep, ntga_step_speed, poison_eval, table
from ntga.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
RECORD_FIELDS = {"record_version", "name", "kind", "smoke", "config", "config_hash",
                 "seeds", "versions", "machine", "started_utc", "wall_clock_s",
                 "command", "metrics"}
# Configs whose smoke variant is too slow for the suite: ntga_demo runs the
# whole `ntga demo` (it has no size flags; the command kind is smoke-tested by
# poison_cli_cifar).
SLOW = {"ntga_demo"}
# Table configs are smoke-run cell by cell in tests/test_benchmark_tables.py.
TABLES = [n for n in configs.names() if configs.load(n)["kind"] == "table"]
SMOKE = [n for n in configs.names() if n not in TABLES and n not in SLOW]


# --------------------------------------------------------------------------
# The registry and the configs agree.


def test_every_config_kind_is_registered_and_every_kind_has_a_config_and_a_smoke_test():
  kinds_of = {n: configs.load(n)["kind"] for n in configs.names()}
  assert set(kinds_of.values()) <= set(kinds.REGISTRY)
  assert set(kinds.REGISTRY) <= set(kinds_of.values())  # each kind has a config
  smoke_tested = {kinds_of[n] for n in SMOKE} | ({"table"} if TABLES else set())
  assert smoke_tested == set(kinds.REGISTRY)  # ... and a smoke test
  for kind, module in kinds.REGISTRY.items():
    assert module.KIND == kind and module.GROUP in kinds.GROUPS
    assert callable(module.render) and callable(module.check)
    assert callable(getattr(module, "run", None)) or callable(getattr(module, "execute", None))
  record_kinds = [kinds.record_kind(m) for m in kinds.MODULES]
  assert len(set(record_kinds)) == len(record_kinds)


def test_an_unknown_kind_is_a_one_line_error():
  with pytest.raises(ConfigError, match="unknown benchmark kind 'nope'; known kinds: "):
    kinds.get("nope")
  with pytest.raises(DataError, match="kind 'nope' has no report section"):
    kinds.for_record("nope")


@pytest.mark.parametrize("name", configs.names())
def test_every_config_loads_in_both_variants(name):
  for smoke in (False, True):
    config = configs.load(name, smoke=smoke)
    assert config["kind"] in kinds.REGISTRY
    if config["kind"] == "table":
      table.check_table(name, config, smoke=smoke)
    json.dumps(config, allow_nan=False)  # JSON-serialisable
    assert configs.doc(name).strip()  # what it measures and the command
  assert _records.config_hash(configs.load(name)) != _records.config_hash(
      configs.load(name, smoke=True))


def test_config_hash_is_canonical():
  a = {"kind": "x", "b": [1, 2], "a": {"y": 1, "x": None}}
  b = {"a": {"x": None, "y": 1}, "b": [1, 2], "kind": "x"}
  assert _records.config_hash(a) == _records.config_hash(b)
  assert _records.config_hash(a) != _records.config_hash({**a, "b": [2, 1]})
  assert len(_records.config_hash(a)) == 64


def test_records_made_by_the_harness_still_match_their_configs():
  """A config whose dict changed would orphan its records (and its hash)."""
  checked = 0
  for path in _records.paths(_records.RESULTS):
    rec = _records.read(path)
    if not rec["command"].startswith("python -m benchmarks.run ") or rec["smoke"]:
      continue
    current = configs.load(rec["name"])
    if "cell" in rec:
      assert rec["config_hash"] in {table.cell_hash(c) for c in current["cells"]}, path
      assert path.name == f"{rec['config_hash'][:16]}.json"
    else:
      assert rec["config"] == current, path
      assert path == _records.record_path(path.parent, rec["name"], current)
    checked += 1
  assert checked >= 50


def test_benchmarks_call_library_functions_and_set_no_global_switch():
  """No CLI module, no pyplot, no matplotlib.use, no jax.config.update."""
  for path in (ROOT / "benchmarks").rglob("*.py"):
    if "results" in path.parts:
      continue
    for node in ast.walk(ast.parse(path.read_text())):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
      elif isinstance(node, ast.Attribute):
        assert ast.unparse(node) not in ("matplotlib.use", "jax.config.update"), path
      assert not [n for n in names if "cli" in n.split(".") or "pyplot" in n], (path, names)


# --------------------------------------------------------------------------
# Every kind: a smoke run through the harness, its check, its section, the cache.


@pytest.mark.parametrize("name", SMOKE)
def test_smoke_run_writes_a_checked_record_renders_it_then_hits_the_cache(
    name, tmp_path, monkeypatch, capsys):
  config = configs.load(name, smoke=True)
  kind = kinds.get(config["kind"])
  argv = [name, "--smoke", "--out", str(tmp_path)]
  assert run.main(argv) == 0
  files = list(tmp_path.glob("*.json"))
  assert files == [_records.record_path(tmp_path, name, config)]
  record = json.loads(files[0].read_text())
  assert set(record) == RECORD_FIELDS
  assert record["smoke"] is True and record["name"] == name
  assert record["kind"] == config["kind"] and record["config"] == config
  assert record["config_hash"] == _records.config_hash(config)
  assert record["versions"]["jax"] and record["machine"]["cpus"] >= 1
  assert record["command"] == "python -m benchmarks.run " + " ".join(argv)
  assert record["wall_clock_s"] > 0
  kind.check(record)
  lines, plots = kind.render(name, configs.load(name), [record])
  text = "\n".join(lines)
  assert record["command"] in text and "Measured on:" in text
  for plot in plots:  # the figures draw
    plot.draw(tmp_path / plot.name)
    assert (tmp_path / plot.name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / plot.name).unlink()
  capsys.readouterr()

  # Second call: served from the cache, the kind never runs.
  def must_not_run(config):
    raise AssertionError(f"recomputed {config['kind']}")
  monkeypatch.setattr(kind, "run", must_not_run)
  mtime = files[0].stat().st_mtime_ns
  assert run.main(argv) == 0
  assert json.loads(capsys.readouterr().out) == record
  assert files[0].stat().st_mtime_ns == mtime

  # --force recomputes (with a stand-in run, to stay fast) and replaces it.
  monkeypatch.setattr(kind, "run", lambda config: {"fake": 1})
  assert run.main(argv + ["--force"]) == 0
  assert json.loads(files[0].read_text())["metrics"] == {"fake": 1}
  assert len(list(tmp_path.iterdir())) == 1  # no temp file left behind


def test_unknown_config_is_a_one_line_error(tmp_path, capsys):
  assert run.main(["no_such_config", "--out", str(tmp_path)]) == 2
  err = capsys.readouterr().err.strip()
  assert "unknown benchmark config 'no_such_config'" in err and "poison_eval" in err
  assert "\n" not in err
  assert not list(tmp_path.iterdir())


def test_cells_on_a_plain_config_is_an_error(tmp_path):
  with pytest.raises(ConfigError, match="table configs only"):
    _harness.run_config(kinds.get("attack_speed"), "attack_speed",
                        configs.load("attack_speed", smoke=True),
                        _harness.Options(out=tmp_path, cells="x"))


def test_poison_eval_needs_three_seeds():
  config = {**configs.load("poison_eval", smoke=True), "seeds": [0, 1, 1]}
  with pytest.raises(ConfigError, match="at least 3 distinct seeds"):
    poison_eval.run(config)


def test_reference_scheme_runs_in_float64_without_switching_x64_on():
  import jax  # pylint: disable=g-import-not-at-top
  assert not jax.config.jax_enable_x64
  ref = ntga_step_speed.run_reference("digits", 8, 30)
  assert not jax.config.jax_enable_x64  # scoped: nothing global changed
  assert ref["grad"].shape == (8 * 8 * 8 * 1,) and np.all(np.isfinite(ref["grad"]))
  ours = ntga_step_speed.run_ours("digits", 8, 30, repeats=1)
  cosine = ours["grad"] @ ref["grad"] / (np.linalg.norm(ours["grad"])
                                         * np.linalg.norm(ref["grad"]))
  assert cosine > 0.99


# --------------------------------------------------------------------------
# The report, from synthetic records.


def _base(name, kind, config, metrics, *, smoke=False,
          started="2026-01-01T00:00:00+00:00", command=None):
  return {"record_version": 1, "name": name, "kind": kind, "smoke": smoke,
          "config": config, "config_hash": _records.config_hash(config),
          "seeds": [], "versions": {"jax": "0.0", "ntga": "0.0"},
          "machine": {"cpus": 2, "device": "cpu"}, "started_utc": started,
          "wall_clock_s": 12.0, "command": command or f"python -m benchmarks.run {name}",
          "metrics": metrics}


def _write(folder, record, stem=None):
  stem = stem or f"{record['name']}-{record['config_hash'][:16]}"
  (folder / f"{stem}.json").write_text(json.dumps(record))


def _step(repeats, ours, ref, **kw):
  config = {**configs.load("ntga_step_speed"), "repeats": repeats}
  return _base("ntga_step_speed", "ntga_step_speed", config, {
      "seconds_per_step_ours": ours, "seconds_per_step_ours_all": [ours] * repeats,
      "seconds_per_step_reference_scheme": ref, "speedup": ref / ours,
      "reference_slices": 334, "gradient_cosine": 0.99998}, **kw)


def _sweep():
  # Two blocks per surrogate (the smoke config runs one), so lines have slopes.
  c = {**configs.load("ntga_block_sweep", smoke=True), "blocks": [32, 64]}
  points = [{"surrogate": s, "block": b, "targets": c["targets"][s], "status": "ok",
             "seconds_per_step": 0.01 * b, "seconds_per_step_all": [0.01 * b],
             "peak_rss_mib": 0.5 * b + 300, "baseline_rss_mib": 300.0,
             "flops_per_step": 2e7 * b * k, "n_k_nn_tiles": 1, "n_chunks": 2,
             "n_column_tiles": 1, "flops_k_nn_tile": 1e7 * b * k, "flops_k_mn_chunk": 5e6 * b * k,
             "xla_planned_mib": 10.0, "kernel_seconds_per_step": 0.005 * b,
             "flops_source": "xla", "achieved_gflops": 10.0, "fraction_of_matmul": 0.1,
             "kernel_share": 0.5, "loadavg_1m": 1.0}
            for s, k in (("fnn", 1), ("cnn", 3)) for b in c["blocks"]]
  points[-1] = {"surrogate": "cnn", "block": 64, "targets": 100,
                "status": "rss_cap_exceeded", "peak_rss_mib": 8200.0,
                "flops_source": "xla", "loadavg_1m": 1.5}
  return _base("ntga_block_sweep", "ntga_block_sweep", c, {
      "matmul": {"n": 256, "gflops": 100.0, "before": {"flops": 2 * 256 ** 3}},
      "loadavg_before": [1.0, 1.0, 1.0], "loadavg_after": [2.0, 1.0, 1.0],
      "points": points})


def _seeds(finals, peaks):
  return [{"seed": i, "final": f, "peak": p, "peak_epoch": 1}
          for i, (f, p) in enumerate(zip(finals, peaks))]


def _cell(row, col, epochs=3, attack=None, defense="none"):
  return {"row": row, "col": col,
          "data": {"spec": "{shared}/mnist", "limit": 100, "test_limit": None},
          "attack": attack, "victim": {"victim": row, "epochs": epochs},
          "defense": defense, "seeds": [0, 1, 2]}


NTGA = {"name": "ntga", "seed": 0, "ratio": None, "settings": {"t": 64.0}}
TABLE = {"kind": "table", "title": "Table 9: a synthetic table",
         "description": "DESCRIPTION OF TABLE 9.", "rows": ["fnn", "cnn"],
         "cols": ["clean", "ntga"], "paper": {"fnn": {"ntga": 2.57}},
         "cells": [_cell("fnn", "clean"), _cell("fnn", "ntga", attack=NTGA),
                   _cell("cnn", "clean"),
                   _cell("cnn", "ntga", attack=NTGA, defense="jpeg")]}


def _cell_record(cell, finals, peaks, *, smoke=False, started="2026-01-02T00:00:00+00:00"):
  metrics = {"poison": None if cell["attack"] is None else
             {"attack": "ntga", "wall_clock_s": 30.0, "cached": False, "n_train": 100,
              "max_abs_delta_levels": 76},
             "n_train": 100, "n_test": 100,
             "final_mean": float(np.mean(finals)),
             "final_std": float(np.std(finals, ddof=1)),
             "peak_mean": float(np.mean(peaks)), "peak_std": float(np.std(peaks, ddof=1)),
             "per_seed": _seeds(finals, peaks)}
  return {"record_version": 1, "name": "table9", "kind": "table_cell", "smoke": smoke,
          "cell": cell, "config_hash": table.cell_hash(cell), "seeds": [0, 1, 2],
          "versions": {"jax": "0.0"}, "machine": {"cpus": 2, "device": "cpu"},
          "started_utc": started, "wall_clock_s": 40.0,
          "command": table.cell_command("table9", cell), "metrics": metrics}


def _results(tmp_path):
  """A results folder: plain records (two settings of one config, a superseded
  and a smoke record), a block sweep, and table cells (matched, stale, smoke)."""
  results = tmp_path / "results"
  (results / "table9").mkdir(parents=True)
  _write(results, _step(5, 0.5, 75.0, command="STEP FIVE"))
  _write(results, _step(3, 1.5, 450.0, command="STEP THREE"))
  _write(results, _step(3, 9.0, 9.0, started="2025-01-01T00:00:00+00:00",
                        command="OLD COMMAND"), stem="ntga_step_speed-old")
  _write(results, {**_step(3, 1.0, 2.0, command="SMOKE COMMAND"), "smoke": True},
         stem="ntga_step_speed-smoke")
  _write(results, _sweep())
  cells = TABLE["cells"]
  for rec in (_cell_record(cells[0], [.96, .97, .98], [.97, .98, .99]),
              _cell_record(cells[1], [.02, .03, .04], [.09, .10, .11]),
              # cnn / clean: only a stale record (other epochs); cnn / ntga: smoke only.
              _cell_record(_cell("cnn", "clean", epochs=99), [.5] * 3, [.6] * 3),
              _cell_record(cells[3], [.7] * 3, [.8] * 3, smoke=True)):
    (results / "table9" / f"{rec['config_hash'][:16]}.json").write_text(json.dumps(rec))
  return results


def _fake_panel(record, panel, png):
  png.write_bytes(b"\x89PNG\r\n\x1a\nfake " + panel.encode())


@pytest.fixture
def report_env(tmp_path, monkeypatch):
  """Synthetic records, the synthetic table config, fake sweep figures."""
  known = {"table9": TABLE, **{n: configs.load(n) for n in
                               ("ntga_step_speed", "ntga_block_sweep", "attack_speed")}}
  monkeypatch.setattr(report, "known_configs", lambda: known)
  monkeypatch.setattr(configs, "doc", lambda name: f"TITLE OF {name}.\n\nDOC OF {name}.")
  monkeypatch.setattr(ntga_block_sweep, "_draw_panel", _fake_panel)
  out = tmp_path / "page" / "R.md"
  out.parent.mkdir()
  return _results(tmp_path), out


def test_report_renders_every_section_from_records_alone(report_env):
  results, out = report_env
  assert report.main(["--results", str(results), "--out", str(out)]) == 0
  text = out.read_text()
  # Table: matched by hash; stale and smoke records ignored; paper value beside ours.
  assert "| fnn | 97.00 +- 1.00 (peak 98.00) | 3.00 +- 1.00 (peak 10.00)<br>*paper 2.57* |" in text
  assert "| cnn | not run | not run |" in text
  assert "2 of 4 cells measured" in text and "DESCRIPTION OF TABLE 9." in text
  assert "python -m benchmarks.run table9\n" in text
  assert "python -m benchmarks.run table9 --cells 'fnn / clean'" in text
  assert "| fnn | 40 | 40 (poison 30, max delta 76) |" in text
  assert "`seeds` = 0, 1, 2" in text
  assert "| `attack` | none (clean training set) | ntga (t=64), seed 0 |" in text
  assert "`victim.epochs` = 3" in text and "`data.test_limit` = all" in text
  assert "`defense` of each cell:\n\n|  | clean | ntga |" in text
  # A plain config: one section, titled by its docstring, each config's newest
  # record with its own command; superseded and smoke records left out.
  assert "### TITLE OF ntga_step_speed (`ntga_step_speed`)\n\nDOC OF ntga_step_speed." in text
  assert "#### Run 1 of 2" in text and "#### Run 2 of 2" in text
  assert "| {shared}/mnist | 512 | 10000 | 3 | 1.5 | 450 | **300x** | 0.99998 |" in text
  assert "| {shared}/mnist | 512 | 10000 | 5 | 0.5 | 75 | **150x** | 0.99998 |" in text
  assert "STEP THREE" in text and "STEP FIVE" in text
  assert "OLD COMMAND" not in text and "SMOKE COMMAND" not in text
  assert "attack_speed" not in text  # a config without records has no section
  # The sweep, its figures and the machine.
  assert "| fnn | 32 | 100 | ok | 0.32 | 316 | 0.64 | 10 | 10.0 | 50 | 1.0 |" in text
  assert "| cnn | 64 | 100 | rss_cap_exceeded | - | >= 8200 | - | - | - | - | 1.5 |" in text
  stem = f"ntga_block_sweep-{_sweep()['config_hash'][:8]}"
  assert f"![{stem}_seconds](plots/{stem}_seconds.png)" in text
  assert (out.parent / "plots" / f"{stem}_rss.png").read_bytes().endswith(b"fake rss")
  assert "- 1 run on 2 CPUs, device cpu; jax 0.0, ntga 0.0; started 2026-01-01" in text
  # Order: tables first, then speed and memory; contents link the sections.
  order = [text.index(h) for h in ("## Table 9", "## Speed and memory",
                                   "### TITLE OF ntga_block_sweep",
                                   "### TITLE OF ntga_step_speed")]
  assert order == sorted(order)
  assert "- [Table 9: a synthetic table](#table-9-a-synthetic-table)" in text
  assert "  - [TITLE OF ntga_step_speed (`ntga_step_speed`)]" in text


def test_report_is_deterministic_and_check_compares_the_page(report_env, capsys):
  results, out = report_env
  args = ["--results", str(results), "--out", str(out)]
  assert report.main(args) == 0
  first = out.read_bytes()
  shutil.rmtree(out.parent / "plots")
  out.unlink()
  assert report.main(args) == 0
  assert out.read_bytes() == first
  capsys.readouterr()
  assert report.main(args + ["--check"]) == 0
  assert "is up to date" in capsys.readouterr().err
  out.write_text(out.read_text().replace("97.00 +- 1.00", "97.10 +- 1.00"))
  assert report.main(args + ["--check"]) == 1
  err = capsys.readouterr().err.strip()
  assert "differs from what the records give" in err and "\n" not in err
  assert "97.10" in out.read_text()  # --check writes nothing


def test_attack_speed_section_and_its_figure_are_deterministic(tmp_path):
  from benchmarks.kinds import attack_speed  # pylint: disable=g-import-not-at-top
  rec = _base("attack_speed", "attack_speed", configs.load("attack_speed"), {"results": [
      {"data": "{shared}/mnist", "attack": a, "settings": {}, "n_images": 60000,
       "seconds": s, "images_per_second": 60000 / s, "max_abs_delta_levels": 8}
      for a, s in (("random", 2.0), ("cuda", 30.0))]})
  lines, plots = attack_speed.render("attack_speed", rec["config"], [rec])
  assert "| {shared}/mnist | cuda | 60000 | 30.00 | 2000.0 | - | 8 |" in lines
  [plot] = plots
  plot.draw(tmp_path / "a.png")
  plot.draw(tmp_path / "b.png")
  first = (tmp_path / "a.png").read_bytes()
  assert first[:8] == b"\x89PNG\r\n\x1a\n" and first == (tmp_path / "b.png").read_bytes()


def test_committed_results_page_matches_the_records():
  """benchmarks/RESULTS.md is generated: a hand edit or a new record fails here."""
  assert report.main(["--check"]) == 0, (
      "benchmarks/RESULTS.md is out of date: run `python -m benchmarks.report`")


def test_committed_page_carries_no_machine_paths_or_history_notes():
  text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
  for bad in ("/tmp/", "/work/", "imported from", "transcribed", "session 1",
              "session-1", "raw output lost"):
    assert bad not in text, bad


@pytest.mark.parametrize("name, content, message", [
    ("x.json", "{not json", "x.json: not a JSON record"),
    ("x.json", '{"name": "x"}', "x.json: not a benchmark record (missing kind"),
    ("x.json", json.dumps({**_step(3, 1.0, 2.0), "kind": "mystery"}),
     "kind 'mystery' has no report section"),
    ("x.json", json.dumps({**_step(3, 1.0, 2.0), "name": "nope"}),
     "a record of unknown config 'nope'"),
    ("t/x.json", json.dumps({**_step(3, 1.0, 2.0), "kind": "table_cell"}),
     "kind 'table_cell' in a record of ntga_step_speed"),
    ("x.json", json.dumps({**_step(3, 1.0, 2.0), "metrics": {
        **_step(3, 1.0, 2.0)["metrics"], "speedup": 7.0}}),
     "speedup is not reference / ours"),
    ("x.json", json.dumps({**_step(3, 1.0, 2.0), "metrics": {}}),
     "ntga_step_speed record lacks 'seconds_per_step_ours'"),
])
def test_report_rejects_a_broken_record(tmp_path, capsys, monkeypatch, name, content,
                                        message):
  monkeypatch.setattr(report, "known_configs",
                      lambda: {"ntga_step_speed": configs.load("ntga_step_speed")})
  path = tmp_path / "results" / name
  path.parent.mkdir(parents=True)
  path.write_text(content)
  out = tmp_path / "R.md"
  assert report.main(["--results", str(tmp_path / "results"), "--out", str(out)]) == 2
  err = capsys.readouterr().err.strip()
  assert message in err and err.startswith("report: error: ") and "\n" not in err
  assert not out.exists()


def test_page_helpers():
  assert _page.fmt(None, ".1f") == "-" and _page.fmt(7.6, "d") == "8"
  assert _page.when_text([{"finished_utc": "B"}, {"finished_utc": "A"}]) == "finished A to B"
  assert _page.when_text([{}]) == "date not recorded"
  assert _page.command_lines(None) == ["Command not recorded.", ""]
  assert _page.machine_text({"cpus": 2, "memory": "24 GiB", "device": "cpu",
                             "load": "shared"}, {}) == "2 CPUs, 24 GiB RAM, device cpu, shared"
  assert _page.doc_title("``x``: a thing.\n\nmore") == "`x`: a thing"
  assert _page.doc_markdown("A\nb.\n\n* ``one``: a\n  b;\n* two.\n\n  cmd") == [
      "A b.", "", "* `one`: a b;", "* two.", "", "```", "cmd", "```", ""]


# --------------------------------------------------------------------------
# The block sweep's pieces.


def test_block_sweep_plot_draws_three_pngs_deterministically(tmp_path):
  points = [{"surrogate": s, "block": b, "targets": 100, "status": "ok",
             "seconds_per_step": b * k, "peak_rss_mib": 300.0 + b,
             "baseline_rss_mib": 300.0, "xla_planned_mib": b * k / 2,
             "fraction_of_matmul": 0.1 * k} for s, k in (("fnn", 1), ("cnn", 3))
            for b in (256, 512)]
  points.append({"surrogate": "cnn", "block": 1024, "targets": 100,
                 "status": "over_rss_cap_planned", "peak_rss_mib": 400.0,
                 "baseline_rss_mib": 300.0, "xla_planned_mib": 9000.0})
  points.append({"surrogate": "cnn", "block": 2048, "targets": 100,
                 "status": "rss_cap_exceeded", "peak_rss_mib": 8200.0})
  record = {"name": "sweep", "config_hash": "ab" * 32, "config": {"max_rss_gib": 8.0},
            "metrics": {"matmul": {"gflops": 50.0}, "points": points}}
  paths = ntga_block_sweep.plot(record, tmp_path)
  assert [p.name for p in paths] == ["sweep-abababab_seconds.png",
                                     "sweep-abababab_rss.png", "sweep-abababab_flops.png"]
  first = [p.read_bytes() for p in paths]
  assert all(b[:8] == b"\x89PNG\r\n\x1a\n" for b in first)
  assert [p.read_bytes() for p in ntga_block_sweep.plot(record, tmp_path)] == first
  assert sorted(tmp_path.iterdir()) == sorted(paths)  # no temp files left


def test_block_sweep_check_counts_column_tiles():
  # A step of 4 column tiles does 4 K_mn tiles per target chunk; a record
  # that counted one is caught.
  record = _sweep()
  for p in record["metrics"]["points"]:
    if p["status"] == "ok":
      p["n_column_tiles"] = 4
      p["flops_per_step"] = (p["n_k_nn_tiles"] * p["flops_k_nn_tile"]
                             + p["n_chunks"] * 4 * p["flops_k_mn_chunk"])
  ntga_block_sweep.check(record)
  p = record["metrics"]["points"][0]
  p["flops_per_step"] = (p["n_k_nn_tiles"] * p["flops_k_nn_tile"]
                         + p["n_chunks"] * p["flops_k_mn_chunk"])
  with pytest.raises(_records.DataError, match="pieces' sum"):
    ntga_block_sweep.check(record)


def test_block_sweep_point_in_process_and_its_memory_plan():
  point = {"spec": "digits", "surrogate": "fnn", "block": 32, "targets": 40,
           "target_chunk": 20, "t": 64.0, "repeats": 2, "budget_s": 5.0,
           "max_rss_mib": 1e6}
  m = ntga_block_sweep.measure_point(point)
  assert "status" not in m and m["n_chunks"] == 2
  # K_nn cut in 2 pieces of 16: its upper triangle is 3 tiles of 16 x 16
  # (pgd.block_kernel with chunk 20).
  assert (m["n_k_nn_tiles"], m["k_nn_tile_rows"]) == (3, 16)
  # The block fits one column tile (pgd.COLUMN_TILE).
  assert (m["n_column_tiles"], m["tile_columns"]) == (1, 32)
  assert 1 <= len(m["seconds_per_step_all"]) <= 2 and m["seconds_per_step"] > 0
  assert m["flops_per_step"] == (3 * m["flops_k_nn_tile"] + 2 * m["n_column_tiles"]
                                 * m["flops_k_mn_chunk"]) > 0
  assert m["achieved_gflops"] == pytest.approx(
      m["flops_per_step"] / m["kernel_seconds_per_step"] / 1e9)
  # A plan over the cap: counted and compiled, never run.
  over = ntga_block_sweep.measure_point({**point, "max_rss_mib": 1.0})
  assert over["status"] == "over_rss_cap_planned"
  assert over["flops_per_step"] == m["flops_per_step"]
  assert "seconds_per_step" not in over
