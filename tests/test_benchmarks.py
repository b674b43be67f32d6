"""The benchmark harness: smoke run of every config, the cache, the report."""

import json
import os

import numpy as np
import pytest

from benchmarks import configs, report, run, runners
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


CHECKS = {"poison_eval": _check_poison_eval, "attack_speed": _check_attack_speed,
          "ntga_step_speed": _check_ntga_step_speed}


def test_every_config_has_a_runner_and_a_check():
  names = configs.names()
  assert {"poison_eval", "attack_speed", "ntga_step_speed"} <= set(names)
  for name in names:
    for smoke in (False, True):
      config = configs.load(name, smoke=smoke)
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


@pytest.mark.parametrize("name", configs.names())
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


def test_report_from_records_alone(tmp_path):
  results = tmp_path / "results"
  results.mkdir()
  pe_config = {"kind": "poison_eval",
               "data": {"spec": "{shared}/mnist", "limit": 10000, "test_limit": None},
               "attack": {"name": "ntga", "seed": 0, "ratio": None, "settings": {}}}
  pe = {"poison": {"n_train": 10000, "config": {"eps": 0.3}},
        "results": [{"train_set": "clean", "victim": "fnn-relu", "defense": "none",
                     "epochs": 20, "per_seed": _seeds([.96, .97, .98], [.97, .98, .99]),
                     "final_mean": .97, "final_std": .01, "peak_mean": .98,
                     "peak_std": .01},
                    {"train_set": "poisoned", "victim": "fnn-relu",
                     "defense": "none", "epochs": 20,
                     "per_seed": _seeds([.1, .2, .3], [.4, .5, .6]),
                     "final_mean": .2, "final_std": .1, "peak_mean": .5,
                     "peak_std": .1}]}
  _write(results, _fake_record("poison_eval", "poison_eval", pe_config, pe))
  # An older record of the same config name (superseded) and a smoke record.
  old = _fake_record("poison_eval", "poison_eval", {**pe_config, "seeds": [7, 8, 9]},
                     pe, started="2025-01-01T00:00:00+00:00")
  old["command"] = "OLD COMMAND"
  _write(results, old)
  smoke = _fake_record("poison_eval_smoke", "poison_eval", {"kind": "poison_eval"},
                       pe, smoke=True)
  smoke["command"] = "SMOKE COMMAND"
  _write(results, smoke)
  speed = {"results": [
      {"data": "{shared}/mnist", "attack": a, "n_images": 60000, "seconds": s,
       "images_per_second": 60000 / s} for a, s in (("random", 2.0), ("cuda", 30.0))]}
  _write(results, _fake_record("attack_speed", "attack_speed",
                               {"kind": "attack_speed"}, speed))
  step = {"seconds_per_step_ours": 1.5, "seconds_per_step_reference_scheme": 450.0,
          "speedup": 300.0, "gradient_cosine": 0.99998}
  _write(results, _fake_record("ntga_step_speed", "ntga_step_speed",
                               {"kind": "ntga_step_speed", "data": "{shared}/mnist",
                                "block": 512, "targets": 10000}, step))

  out = tmp_path / "page" / "R.md"
  out.parent.mkdir()
  assert report.main(["--results", str(results), "--out", str(out)]) == 0
  text = out.read_text()
  assert ("| poison_eval | {shared}/mnist (10000 train) | ntga (eps 0.3) | fnn-relu "
          "| none | 20 | 3 | 20.00 +- 10.00 | 50.00 +- 10.00 |") in text
  assert "| 97.00 +- 1.00 | 98.00 +- 1.00 |" in text
  assert "| attack_speed | {shared}/mnist | cuda | 60000 | 30.00 | 2000.0 |" in text
  assert "| 1.5 | 450 | 300.0 x | 0.99998 |" in text
  assert "python -m benchmarks.run poison_eval\n" in text
  assert "OLD COMMAND" not in text and "SMOKE COMMAND" not in text
  assert text.index("## Poisoned training") < text.index("## Poison generation speed")
  png = out.parent / "R_attack_speed.png"
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert "![images per second per attack](R_attack_speed.png)" in text

  # Deterministic: the same records give byte-identical files.
  first = (text, png.read_bytes())
  os.remove(out)
  assert report.main(["--results", str(results), "--out", str(out)]) == 0
  assert (out.read_text(), png.read_bytes()) == first


def test_report_rejects_a_broken_record(tmp_path, capsys):
  (tmp_path / "x.json").write_text("{not json")
  assert report.main(["--results", str(tmp_path), "--out",
                      str(tmp_path / "R.md")]) == 2
  assert "x.json: not a JSON record" in capsys.readouterr().err
  assert not (tmp_path / "R.md").exists()
