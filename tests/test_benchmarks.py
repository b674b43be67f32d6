"""The benchmark harness: smoke run of every config, the cache, the report."""

import json
import os
import sys

import numpy as np
import pytest

from benchmarks import _tables, configs, report, run, runners
from ntga.errors import ConfigError

RECORD_FIELDS = {"record_version", "name", "kind", "smoke", "config", "config_hash",
                 "seeds", "versions", "machine", "started_utc", "wall_clock_s",
                 "command", "metrics"}


def _check_poison_eval(record):
  m = record["metrics"]
  assert m["poison"]["attack"] == "ntga"
  assert 0 < m["poison"]["max_abs_delta"] <= m["poison"]["config"]["eps"] + 1e-6
  assert [r["train_set"] for r in m["results"]] == ["clean", "poisoned"]
  for res in m["results"]:
    finals = [s["final"] for s in res["per_seed"]]
    peaks = [s["peak"] for s in res["per_seed"]]
    assert [s["seed"] for s in res["per_seed"]] == [0, 1, 2]
    assert all(0.0 <= f <= p <= 1.0 for f, p in zip(finals, peaks))
    assert res["final_mean"] == pytest.approx(np.mean(finals))
    assert res["final_std"] == pytest.approx(np.std(finals, ddof=1))
    assert res["peak_mean"] == pytest.approx(np.mean(peaks))


def _check_attack_speed(record):
  res = record["metrics"]["results"]
  assert [r["attack"] for r in res] == ["random", "cuda", "ops"]
  for r in res:
    assert r["n_images"] == 100 and r["seconds"] > 0
    assert r["images_per_second"] == pytest.approx(100 / r["seconds"])
    assert r["max_abs_delta_levels"] > 0


def _check_ntga_step_speed(record):
  m = record["metrics"]
  assert m["seconds_per_step_ours"] > 0 and m["seconds_per_step_reference_scheme"] > 0
  assert m["speedup"] == pytest.approx(
      m["seconds_per_step_reference_scheme"] / m["seconds_per_step_ours"])
  # Same objective, float32 vs float64: the gradients point the same way.
  assert m["gradient_cosine"] > 0.99


def _check_ntga_block_sweep(record):
  m, c = record["metrics"], record["config"]
  assert 0 < m["matmul"]["gflops"] < 1e5
  assert m["matmul"]["before"]["flops"] == 2 * c["matmul_n"] ** 3  # XLA's count
  points = m["points"]
  assert [(p["surrogate"], p["block"]) for p in points] == [
      (s, b) for s in c["surrogates"] for b in c["blocks"]]
  for p in points:
    assert p["status"] == "ok", p
    assert p["targets"] == c["targets"][p["surrogate"]]
    for key in ("seconds_per_step", "peak_rss_mib", "flops_per_step",
                "achieved_gflops", "kernel_seconds_per_step", "xla_planned_mib"):
      assert np.isfinite(p[key]) and p[key] > 0, (key, p)
    assert 0 < p["fraction_of_matmul"] < 1.5
    assert p["peak_rss_mib"] >= p["baseline_rss_mib"]
    assert p["flops_per_step"] == pytest.approx(
        p["n_slabs"] * p["flops_k_nn_slab"] + p["n_chunks"] * p["flops_k_mn_chunk"])
    # K_nn needs at least the B x B x 64 Gram matrix of the 8x8 digits.
    assert p["n_slabs"] * p["flops_k_nn_slab"] >= 2 * p["block"] ** 2 * 64
  for s in c["surrogates"]:
    small, big = (p["flops_per_step"] for p in points if p["surrogate"] == s)
    assert big > small


def _check_cnn_kernel_speed(record):
  m, c = record["metrics"], record["config"]
  assert set(m["pairs"]) == set(c["shapes"])
  for p in m["pairs"].values():
    for what in ("value", "grad"):
      assert p[f"ntga_{what}_us"] > 0 and p[f"neural_tangents_{what}_us"] > 0
      assert p[f"{what}_speedup"] == pytest.approx(
          p[f"neural_tangents_{what}_us"] / p[f"ntga_{what}_us"])
  # The same kernel: the PGD-step gradients agree.
  assert m["step"]["gradient_cosine"] > 0.999


def _check_victim_speed(record):
  m, c = record["metrics"], record["config"]
  assert [v["settings"] for v in m["victims"]] == c["victims"]
  for v in m["victims"]:
    for key in ("images_per_second", "flops_per_image", "achieved_gflops",
                "epoch_seconds"):
      assert np.isfinite(v[key]) and v[key] > 0, (key, v)
    assert v["achieved_gflops"] == pytest.approx(
        v["flops_per_image"] * v["images_per_second"] / 1e9, rel=1e-6)
  assert [layer["shape"] for layer in m["layers"]] == c["layers"]
  for layer in m["layers"]:  # the same convolution, computed two ways
    assert layer["max_grad_rel_diff"] < 1e-4
    assert layer["speedup"] == pytest.approx(
        layer["xla_seconds"] / layer["patch_seconds"])
  assert m["matmul"]["gflops"] > 0


def _check_evaluate_command(record):
  m, c = record["metrics"], record["config"]
  assert [r["seed"] for r in m["runs"]] == c["seeds"]
  for r in m["runs"]:
    assert r["command"].startswith("ntga evaluate ") and "--seed" in r["command"]
    assert 0 <= r["final"] <= r["peak"] <= 1 and r["wall_clock_s"] > 0
    assert max(r["test_accuracy"]) == r["peak"]


CHECKS = {"poison_eval": _check_poison_eval, "attack_speed": _check_attack_speed,
          "ntga_step_speed": _check_ntga_step_speed,
          "ntga_block_sweep": _check_ntga_block_sweep,
          "cnn_kernel_speed": _check_cnn_kernel_speed,
          "victim_speed": _check_victim_speed,
          "evaluate_command": _check_evaluate_command}


def test_every_config_has_a_runner_and_a_check():
  names = configs.names()
  assert {"poison_eval", "attack_speed", "ntga_step_speed"} <= set(names)
  for name in names:
    for smoke in (False, True):
      config = configs.load(name, smoke=smoke)
      if config["kind"] == "table":  # run cell by cell: tests/test_benchmark_tables.py
        _tables.check_table(name, config, smoke=smoke)
      else:
        assert config["kind"] in runners.RUNNERS and config["kind"] in CHECKS
      json.dumps(config, allow_nan=False)  # JSON-serialisable
    assert run.config_hash(configs.load(name)) != run.config_hash(
        configs.load(name, smoke=True))


def test_config_hash_is_canonical():
  a = {"kind": "x", "b": [1, 2], "a": {"y": 1, "x": None}}
  b = {"a": {"x": None, "y": 1}, "b": [1, 2], "kind": "x"}
  assert run.config_hash(a) == run.config_hash(b)
  assert run.config_hash(a) != run.config_hash({**a, "b": [2, 1]})
  assert len(run.config_hash(a)) == 64


@pytest.mark.parametrize("name", [
    n for n in configs.names() if configs.load(n, smoke=True)["kind"] != "table"])
def test_smoke_run_writes_a_record_then_hits_the_cache(name, tmp_path, monkeypatch,
                                                       capsys):
  argv = [name, "--smoke", "--out", str(tmp_path)]
  assert run.main(argv) == 0
  files = list(tmp_path.glob("*.json"))
  assert [f.name for f in files] == [run.record_path(
      tmp_path, name, configs.load(name, smoke=True)).name]
  record = json.loads(files[0].read_text())
  assert set(record) == RECORD_FIELDS
  assert record["smoke"] is True and record["name"] == name
  assert record["config"] == configs.load(name, smoke=True)
  assert record["config_hash"] == run.config_hash(record["config"])
  assert files[0].name == f"{name}-{record['config_hash'][:16]}.json"
  assert record["versions"]["jax"] and record["machine"]["cpus"] >= 1
  assert record["command"] == "python -m benchmarks.run " + " ".join(argv)
  assert record["wall_clock_s"] > 0
  CHECKS[record["kind"]](record)
  capsys.readouterr()

  # Second call: served from the cache, the runner is never called.
  def must_not_run(config):
    raise AssertionError(f"recomputed {config['kind']}")
  monkeypatch.setitem(runners.RUNNERS, record["kind"], must_not_run)
  mtime = files[0].stat().st_mtime_ns
  assert run.main(argv) == 0
  assert json.loads(capsys.readouterr().out) == record
  assert files[0].stat().st_mtime_ns == mtime

  # --force recomputes (with a stand-in runner, to stay fast) and replaces it.
  monkeypatch.setitem(runners.RUNNERS, record["kind"], lambda config: {"fake": 1})
  assert run.main(argv + ["--force"]) == 0
  assert json.loads(files[0].read_text())["metrics"] == {"fake": 1}
  assert len(list(tmp_path.iterdir())) == 1  # no temp file left behind


def test_unknown_config_is_a_one_line_error(tmp_path, capsys):
  assert run.main(["no_such_config", "--out", str(tmp_path)]) == 2
  err = capsys.readouterr().err.strip()
  assert "unknown benchmark config 'no_such_config'" in err and "poison_eval" in err
  assert "\n" not in err
  assert not list(tmp_path.iterdir())


def test_poison_eval_needs_three_seeds():
  config = {**configs.load("poison_eval", smoke=True), "seeds": [0, 1, 1]}
  with pytest.raises(ConfigError, match="at least 3 distinct seeds"):
    runners.poison_eval(config)


def _fake_record(name, kind, config, metrics, *, smoke=False,
                 started="2026-01-01T00:00:00+00:00"):
  return {"record_version": 1, "name": name, "kind": kind, "smoke": smoke,
          "config": config, "config_hash": run.config_hash(config), "seeds": [0, 1, 2],
          "versions": {"jax": "0.0", "ntga": "0.0"},
          "machine": {"cpus": 2, "device": "cpu"}, "started_utc": started,
          "wall_clock_s": 12.0, "command": f"python -m benchmarks.run {name}",
          "metrics": metrics}


def _write(folder, record):
  path = folder / f"{record['name']}-{record['config_hash'][:16]}.json"
  path.write_text(json.dumps(record))


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
  from benchmarks import _tables
  metrics = {"poison": None if cell["attack"] is None else
             {"wall_clock_s": 30.0, "cached": False, "n_train": 100},
             "final_mean": float(np.mean(finals)),
             "final_std": float(np.std(finals, ddof=1)),
             "peak_mean": float(np.mean(peaks)), "peak_std": float(np.std(peaks, ddof=1)),
             "per_seed": _seeds(finals, peaks)}
  return {"record_version": 1, "name": "table9", "kind": "table_cell", "smoke": smoke,
          "cell": cell, "config_hash": _tables.cell_hash(cell), "seeds": [0, 1, 2],
          "versions": {"jax": "0.0"}, "machine": {"cpus": 2, "device": "cpu"},
          "started_utc": started, "wall_clock_s": 40.0,
          "command": _tables.cell_command("table9", cell), "metrics": metrics}


def _legacy_record():
  return {"record_version": 1, "kind": "legacy", "name": "old_thing", "group": "other",
          "order": 5, "title": "An imported result", "description": "LEGACY PROSE.",
          "machine": "an old box", "versions": {"jax": "0.0"},
          "runs": {"a": {"command": "old-command --x 1", "provenance": "imported from /x",
                         "finished_utc": "2025-05-05T00:00:00+00:00",
                         "values": {"acc": [0.5, 0.9876]}}},
          "tables": [{"caption": "Numbers", "header": ["what", "acc (%)"],
                      "rows": [["a", [{"run": "a", "key": "acc.1", "scale": 100,
                                       "fmt": ".2f"}, " %"]]]}]}


def _jsonl_lines():
  machine = {"platform": "P", "cpus": 2, "device": "cpu", "jax": "0.0"}
  speed = {"benchmark": "ntga_speed", "block": 512, "targets": 10000, "surrogate": "fnn",
           "t": 64.0, "seconds_per_step_ours": 0.5, "seconds_per_step_ours_all": [0.5] * 5,
           "seconds_per_step_reference_scheme": 75.0, "speedup": 150.0,
           "gradient_cosine": 0.99998, "machine": machine}
  mnist = {"benchmark": "ntga_mnist", "limit": 10000,
           "command": "ntga poison --attack ntga --data D --limit 10000 --out /o/poisoned",
           "config": {"eps": 0.3}, "max_abs_delta_levels": 76, "poison_seconds": 700.0,
           "seeds": [0, 1, 2], "mlp_clean_trained": [0.96, 0.97, 0.98],
           "mlp_poison_trained": [0.01, 0.02, 0.03], "machine": machine}
  devices = {"benchmark": "ntga_devices", "limit": 2048, "block": 256, "targets": 1000,
             "surrogate": "fnn", "identical_outputs": True, "machine": machine,
             "runs": [{"devices": d, "seconds": 20.0 * d, "images_per_second": 2048 / (20 * d),
                       "sha256_x": "ab" * 32} for d in (1, 2)]}
  av = [{"benchmark": "attacks_victims", "command": f"python -m benchmarks.attacks_victims --seed {s}",
         "spec": "digits", "limit": 100, "test_limit": None, "epochs": 1, "attack": "cuda",
         "attack_config": {"pb": 0.3}, "seed": s, "victim": "cnn",
         "final_test_accuracy": f, "peak_test_accuracy": f + 0.1, "poison_seconds": 1.0,
         "train_seconds": 2.0, "machine": machine, "versions": {"jax": "0.0"},
         "started_utc": "2026-01-03T00:00:00+00:00", "em_stop_accuracy": 0.99}
        for s, f in ((0, 0.2), (1, 0.3), (2, 0.4))]
  return {"ntga_speed": [dict(speed, speedup=1.0, seconds_per_step_ours=9.0), speed],
          "ntga_mnist": [mnist], "ntga_devices": [devices], "attacks_victims": av}


class _FakeSweep:
  """Stands in for benchmarks._block_sweep: one tiny PNG per record."""

  @staticmethod
  def plot(record, out_dir):
    path = out_dir / f"{record['name']}_seconds.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    return [path]


def _results(tmp_path):
  """A results folder with a record of every kind the report renders."""
  results = tmp_path / "results"
  (results / "table9").mkdir(parents=True)
  (results / "legacy").mkdir()
  pe_config = {"kind": "poison_eval",
               "data": {"spec": "{shared}/mnist", "limit": 10000, "test_limit": None},
               "attack": {"name": "ntga", "seed": 0, "ratio": None, "settings": {}}}
  pe = {"poison": {"n_train": 10000, "n_test": 10000, "wall_clock_s": 5.0,
                   "config": {"eps": 0.3}},
        "results": [{"train_set": "poisoned", "victim": "fnn-relu", "defense": "none",
                     "epochs": 20, "per_seed": _seeds([.1, .2, .3], [.4, .5, .6]),
                     "final_mean": .2, "final_std": .1, "peak_mean": .5, "peak_std": .1}]}
  _write(results, _fake_record("poison_eval", "poison_eval", pe_config, pe))
  old = _fake_record("poison_eval", "poison_eval", {**pe_config, "seeds": [7, 8, 9]}, pe,
                     started="2025-01-01T00:00:00+00:00")
  old["command"] = "OLD COMMAND"
  _write(results, old)
  smoke = _fake_record("poison_eval_smoke", "poison_eval", {"kind": "poison_eval"}, pe,
                       smoke=True)
  smoke["command"] = "SMOKE COMMAND"
  _write(results, smoke)
  speed = {"results": [
      {"data": "{shared}/mnist", "attack": a, "n_images": 60000, "seconds": s,
       "images_per_second": 60000 / s} for a, s in (("random", 2.0), ("cuda", 30.0))]}
  _write(results, _fake_record("attack_speed", "attack_speed", {"kind": "attack_speed"},
                               speed))
  step = {"seconds_per_step_ours": 1.5, "seconds_per_step_reference_scheme": 450.0,
          "speedup": 300.0, "gradient_cosine": 0.99998}
  _write(results, _fake_record("ntga_step_speed", "ntga_step_speed",
                               {"kind": "ntga_step_speed", "data": "{shared}/mnist",
                                "block": 512, "targets": 10000}, step))
  sweep = {"matmul": {"n": 256, "gflops": 100.0}, "loadavg_before": [1.0, 1.0, 1.0],
           "loadavg_after": [2.0, 1.0, 1.0], "points": [
      {"surrogate": s, "block": b, "targets": 1000, "status": "ok",
       "seconds_per_step": 0.01 * b, "peak_rss_mib": 0.5 * b, "flops_per_step": 1e9 * b,
       "flops_source": "xla", "achieved_gflops": 10.0, "fraction_of_matmul": 0.1,
       "kernel_share": 0.5, "loadavg_1m": 1.0}
      for s in ("fnn", "cnn") for b in (256, 512)] + [
      {"surrogate": "cnn", "block": 4096, "targets": 1000, "status": "rss_cap_exceeded",
       "peak_rss_mib": 8200.0, "flops_source": "xla", "loadavg_1m": 1.5}]}
  _write(results, _fake_record("ntga_block_sweep", "ntga_block_sweep",
                               {"kind": "ntga_block_sweep"}, sweep))
  cells = TABLE["cells"]
  for rec in (_cell_record(cells[0], [.96, .97, .98], [.97, .98, .99]),
              _cell_record(cells[1], [.02, .03, .04], [.09, .10, .11]),
              # cnn / clean: only a stale record (other epochs); cnn / ntga: smoke only.
              _cell_record(_cell("cnn", "clean", epochs=99), [.5] * 3, [.6] * 3),
              _cell_record(cells[3], [.7] * 3, [.8] * 3, smoke=True)):
    (results / "table9" / f"{rec['config_hash'][:16]}.json").write_text(json.dumps(rec))
  for bench, lines in _jsonl_lines().items():
    (results / f"{bench}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
  (results / "legacy" / "old_thing.json").write_text(json.dumps(_legacy_record()))
  (results / "legacy" / "notes.json").write_text(json.dumps(
      {"kind": "legacy_notes", "benchmark": "ntga_speed", "description": "SPEED NOTE.",
       "provenance": "transcribed from somewhere"}))
  return results


@pytest.fixture
def report_env(tmp_path, monkeypatch):
  """Synthetic records of every kind, the synthetic table config, a fake sweep plot."""
  monkeypatch.setattr(report, "table_configs", lambda: [("table9", TABLE)])
  monkeypatch.setitem(sys.modules, "benchmarks._block_sweep", _FakeSweep)
  out = tmp_path / "page" / "R.md"
  out.parent.mkdir()
  return _results(tmp_path), out


def test_table_wall_clock_names_the_poisons_size():
  rec = {"wall_clock_s": 511.2, "metrics": {"poison": {
      "wall_clock_s": 269.0, "psnr_db": 33.04, "max_abs_delta_levels": 8,
      "cached": True}}}
  assert report._wall_text(rec) == "511 (poison 269, PSNR 33.0 dB, max delta 8, cached)"
  assert report._wall_text({"wall_clock_s": 40.0, "metrics": {"poison": None}}) == "40"


def test_report_renders_every_kind_from_records_alone(report_env):
  results, out = report_env
  assert report.main(["--results", str(results), "--out", str(out)]) == 0
  text = out.read_text()
  # Table: matched by hash; stale and smoke records ignored; paper value beside ours.
  assert "| fnn | 97.00 +- 1.00 (peak 98.00) | 3.00 +- 1.00 (peak 10.00)<br>*paper 2.57* |" in text
  assert "| cnn | not run | not run |" in text
  assert "2 of 4 cells measured" in text and "DESCRIPTION OF TABLE 9." in text
  assert "python -m benchmarks.run table9\n" in text
  assert "python -m benchmarks.run table9 --cells 'fnn / clean'" in text
  assert "| fnn | 40 | 40 (poison 30) |" in text  # wall clock, of which poisoning
  assert "`seeds` = 0, 1, 2" in text
  assert "| `attack` | none (clean training set) | ntga (t=64), seed 0 |" in text
  assert "| `victim.epochs` | 3 | 3 |" not in text  # shared settings are stated once
  assert "`victim.epochs` = 3" in text and "`data.test_limit` = all" in text
  assert "`defense` of each cell:\n\n|  | clean | ntga |" in text
  assert "| cnn | none | jpeg |" in text
  # benchmarks.run records.
  assert ("| ntga (eps 0.3) | fnn-relu | none | 20 | 3 | 20.00 +- 10.00 | "
          "50.00 +- 10.00 |") in text
  assert "| {shared}/mnist | cuda | 60000 | 30.00 | 2000.0 |" in text
  assert "| 1.5 | 450 | 300.0x | 0.99998 |" in text
  assert "| fnn | 256 | 1000 | ok | 2.56 | 128 | 256 | 10 | 10.0 | 50 | 1.0 |" in text
  assert "| cnn | 4096 | 1000 | rss_cap_exceeded | - | >= 8200 | - | - | - | - | 1.5 |" in text
  assert "float32 matmul, before and after the points): 100 GFLOP/s." in text
  assert "![ntga_block_sweep_seconds](plots/ntga_block_sweep_seconds.png)" in text
  assert "OLD COMMAND" not in text and "SMOKE COMMAND" not in text
  # JSONL lines: the newest line of a setting wins.
  assert "| `--repeats 5` | 512 | 10000 | 0.50 | 75.0 | **150x** | 0.99998 |" in text
  assert "python -m benchmarks.ntga_speed --block 512 --targets 10000 --repeats 5" in text
  assert "SPEED NOTE." in text and "**1x**" not in text
  assert "| NTGA-poisoned 10000 | 1.00 | 2.00 | 3.00 | 2.00 |" in text
  assert "python -m benchmarks.ntga_mnist --out /o --limit 10000 --seeds 0 1 2" in text
  assert "| 2 | 40.0 | 51 | `abababababab` |" in text
  assert ("| cuda | pb=0.3 | 0, 1, 2 | 30.00 +- 10.00 | 40.00 +- 10.00 | 1 | 2 | "
          "em_stop_accuracy: 0.99, 0.99, 0.99 |") in text
  # Legacy: values come from the runs, with their command and provenance.
  assert "| a | 98.76 % |" in text and "LEGACY PROSE." in text
  assert "# a: imported from /x\nold-command --x 1" in text
  # Order: tables first, then speed and memory, then the rest.
  order = [text.index(h) for h in ("## Table 9", "## Speed and memory",
                                   "### Poison generation speed", "### NTGA: one PGD step",
                                   "## Other measurements", "### Poisoned training",
                                   "### An imported result")]
  assert order == sorted(order)
  assert "- [Table 9: a synthetic table](#table-9-a-synthetic-table)" in text
  png = out.parent / "plots" / "attack_speed.png"
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert "![images per second per attack](plots/attack_speed.png)" in text
  assert (out.parent / "plots" / "ntga_block_sweep_seconds.png").exists()


def test_report_is_deterministic_and_check_compares_the_page(report_env, capsys):
  results, out = report_env
  args = ["--results", str(results), "--out", str(out)]
  assert report.main(args) == 0
  png = out.parent / "plots" / "attack_speed.png"
  first = (out.read_bytes(), png.read_bytes())
  out.unlink()
  png.unlink()
  assert report.main(args) == 0
  assert (out.read_bytes(), png.read_bytes()) == first
  capsys.readouterr()
  assert report.main(args + ["--check"]) == 0
  assert "is up to date" in capsys.readouterr().err
  out.write_text(out.read_text().replace("97.00 +- 1.00", "97.10 +- 1.00"))
  assert report.main(args + ["--check"]) == 1
  err = capsys.readouterr().err.strip()
  assert "differs from what the records give" in err and "\n" not in err
  assert "97.10" in out.read_text()  # --check writes nothing


def test_committed_results_page_matches_the_records():
  """benchmarks/RESULTS.md is generated: a hand edit or a new record fails here."""
  assert report.main(["--check"]) == 0, (
      "benchmarks/RESULTS.md is out of date: run `python -m benchmarks.report`")


@pytest.mark.parametrize("name, content, message", [
    ("x.json", "{not json", "x.json: not a JSON record"),
    ("x.json", '{"name": "x"}', "x.json: not a benchmark record (missing kind"),
    ("x.json", json.dumps({"name": "x", "kind": "mystery", "smoke": False,
                           "config_hash": "0", "started_utc": "", "metrics": {},
                           "command": "", "config": {}}),
     "kind 'mystery' has no report section"),
    ("t/x.json", json.dumps({"name": "t", "kind": "poison_eval", "smoke": False,
                             "config_hash": "0", "started_utc": "", "metrics": {},
                             "command": "", "cell": {}}),
     "kind 'poison_eval' in a table folder"),
    ("x.jsonl", '{"benchmark": "ntga_speed"}\n{oops\n', "x.jsonl:2: not a JSON line"),
    ("x.jsonl", '{"benchmark": "nope"}\n', "benchmark 'nope' has no report section"),
    ("legacy/x.json", json.dumps({**_legacy_record(), "tables": [
        {"caption": "c", "header": ["v"], "rows": [[{"run": "b", "key": "acc.0"}]]}]}),
     "refers to unknown run 'b'"),
    ("legacy/x.json", json.dumps({**_legacy_record(), "tables": [
        {"caption": "c", "header": ["v"], "rows": [[{"run": "a", "key": "acc.7"}]]}]}),
     "run 'a' has no value 'acc.7'"),
])
def test_report_rejects_a_broken_record(tmp_path, capsys, monkeypatch, name, content,
                                        message):
  monkeypatch.setattr(report, "table_configs", lambda: [])
  path = tmp_path / "results" / name
  path.parent.mkdir(parents=True)
  path.write_text(content)
  out = tmp_path / "R.md"
  assert report.main(["--results", str(tmp_path / "results"), "--out", str(out)]) == 2
  err = capsys.readouterr().err.strip()
  assert message in err and err.startswith("report: error: ") and "\n" not in err
  assert not out.exists()


def test_block_sweep_plot_draws_three_pngs_deterministically(tmp_path):
  from benchmarks import _block_sweep
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
  record = {"name": "sweep", "config": {"max_rss_gib": 8.0},
            "metrics": {"matmul": {"gflops": 50.0}, "points": points}}
  paths = _block_sweep.plot(record, tmp_path)
  assert [p.name for p in paths] == ["sweep_seconds.png", "sweep_rss.png",
                                     "sweep_flops.png"]
  first = [p.read_bytes() for p in paths]
  assert all(b[:8] == b"\x89PNG\r\n\x1a\n" for b in first)
  assert [p.read_bytes() for p in _block_sweep.plot(record, tmp_path)] == first
  assert sorted(tmp_path.iterdir()) == sorted(paths)  # no temp files left


def test_block_sweep_point_in_process_and_its_memory_plan():
  from benchmarks import _block_sweep
  point = {"spec": "digits", "surrogate": "fnn", "block": 32, "targets": 40,
           "target_chunk": 20, "t": 64.0, "repeats": 2, "budget_s": 5.0,
           "max_rss_mib": 1e6}
  m = _block_sweep.measure_point(point)
  assert "status" not in m and m["n_chunks"] == 2
  # K_nn in 2 slabs of 16 rows (pgd.block_kernel with chunk 20).
  assert (m["n_slabs"], m["slab_rows"]) == (2, 16)
  assert 1 <= len(m["seconds_per_step_all"]) <= 2 and m["seconds_per_step"] > 0
  assert m["flops_per_step"] == (2 * m["flops_k_nn_slab"]
                                 + 2 * m["flops_k_mn_chunk"]) > 0
  assert m["achieved_gflops"] == pytest.approx(
      m["flops_per_step"] / m["kernel_seconds_per_step"] / 1e9)
  # A plan over the cap: counted and compiled, never run.
  over = _block_sweep.measure_point({**point, "max_rss_mib": 1.0})
  assert over["status"] == "over_rss_cap_planned"
  assert over["flops_per_step"] == m["flops_per_step"]
  assert "seconds_per_step" not in over
