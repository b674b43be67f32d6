"""Table configs (kind ``table``): smoke runs, per-cell cache, --cells, the poison cache."""

import json

import jax
import numpy as np
import pytest

from benchmarks import _page, configs, run
from benchmarks._records import Stopwatch, config_hash
from benchmarks.kinds import table
from ntga.errors import ConfigError, DataError

TABLES = [n for n in configs.names() if configs.load(n)["kind"] == "table"]
# Smoke-run here: one table per shape of cell. The others are checked (config
# and smoke config validate, in tests/test_benchmarks.py) but not run, to keep
# the suite's time: their smoke cells are the same kind of work as those of
# table5_cifar_full (fast victim on digits; clean, NTGA and defended cells;
# EM's poisoning is run by tests/test_attacks_minmin.py).
NOT_RUN = {"at_fast_screen", "ntga_aware_screen", "ntga_colour_sweep", "ortho_cifar_full",
           "seed_methods_cifar"}
SMOKE_RUN = [n for n in TABLES if n not in NOT_RUN]


def _records(out, name):
  return {p.name: json.loads(p.read_text()) for p in (out / name).glob("*.json")}


def _check_record(rec, name):
  table.check(rec)  # the kind's own check: hash, seeds, accuracies, poison
  assert rec["name"] == name and rec["smoke"]
  m = rec["metrics"]
  assert m["final_mean"] == pytest.approx(np.mean([s["final"] for s in m["per_seed"]]))
  assert rec["command"] == table.cell_command(name, rec["cell"], smoke=True)
  if rec["cell"]["attack"] is not None:  # the poison names the code that made it
    assert len(m["poison"]["code_fingerprint"]) == 16


def test_the_tables_not_run_exist():
  assert NOT_RUN <= set(TABLES) and "table5_cifar_full" in SMOKE_RUN


@pytest.mark.parametrize("name", SMOKE_RUN)
def test_smoke_table_fills_every_cell_renders_then_is_cached(name, tmp_path, capsys):
  config = configs.load(name, smoke=True)
  assert run.main([name, "--smoke", "--out", str(tmp_path)]) == 0
  recs = _records(tmp_path, name)
  hashes = {table.cell_hash(c)[:16] for c in config["cells"]}
  assert set(recs) == {h + ".json" for h in hashes}
  for rec in recs.values():
    _check_record(rec, name)
  lines, plots = table.render(name, config, list(recs.values()))
  n = len(config["cells"])  # cells that compute the same thing share a record
  assert f"{n} of {n} cells measured" in "\n".join(lines)
  assert "| not run" not in "\n".join(lines) and plots == []
  capsys.readouterr()
  # second run: nothing recomputed, every cell reported cached
  assert run.main([name, "--smoke", "--out", str(tmp_path)]) == 0
  assert f"0 run, {len(config['cells'])} cached" in capsys.readouterr().out


def test_cells_pattern_runs_a_part_and_shares_identical_cells(tmp_path, capsys):
  out = tmp_path / "res"
  assert run.main(["table4_ratio", "--smoke", "--out", str(out),
                   "--cells", "cuda / 0.*"]) == 0
  assert "2 run, 0 cached, 4 skipped" in capsys.readouterr().out
  recs = _records(out, "table4_ratio")
  assert sorted(r["cell"]["col"] for r in recs.values()) == ["0.0", "0.5"]
  # the clean (ratio 0.0) cell of the ntga row is the same computation: reused
  assert run.main(["table4_ratio", "--smoke", "--out", str(out),
                   "--cells", "ntga / 0.0"]) == 0
  assert "0 run, 1 cached" in capsys.readouterr().out
  # a poisoning is cached and shared between ratios of one attack
  cache = out / table.CACHE
  assert len(list(cache.glob("poison-*/poisoned.npz"))) == 1
  assert not list(cache.glob("poison-*/.checkpoints"))  # removed once written
  # a table whose folder does not exist yet reuses a cell of another table
  twin = tmp_path / "twin"
  (twin / "table4_ratio").mkdir(parents=True)
  for p in (out / "table4_ratio").glob("*.json"):
    (twin / "table4_ratio" / p.name).write_text(p.read_text())
  clean = {**configs.load("table4_ratio", smoke=True)["cells"][0],
           "row": "x", "col": "y"}
  status = table.run_table("other", {
      "title": "t", "description": "d", "rows": ["x"], "cols": ["y"],
      "paper": {}, "cells": [clean]}, smoke=True, out=twin)
  assert status["cells"][0]["status"] == "cached"
  rec = json.loads((twin / "other" / (table.cell_hash(clean)[:16] + ".json"))
                   .read_text())
  assert rec["reused_from"] == "table4_ratio" and rec["cell"]["row"] == "x"


def test_the_poison_cache_key_covers_the_attacks_code(tmp_path, monkeypatch):
  from ntga import attacks  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top
  cell = next(c for c in configs.load("table4_ratio", smoke=True)["cells"]
              if c["attack"] is not None and c["attack"]["name"] == "cuda")
  cache = tmp_path / "cache"
  code = pipeline.code_fingerprint(attacks.get("cuda"))
  _, first = table.poisoned_train_set(cell, cache=cache)
  _, again = table.poisoned_train_set(cell, cache=cache)
  assert not first["cached"] and again["cached"]  # same code: the cache serves it
  assert first["code_fingerprint"] == again["code_fingerprint"] == code
  path = table.cell_path(tmp_path, "t", cell)
  # An edited attack: its fingerprint changes, so it is poisoned again ...
  monkeypatch.setattr(pipeline, "code_fingerprint", lambda attack: "0" * 16)
  _, edited = table.poisoned_train_set(cell, cache=cache)
  assert not edited["cached"]
  assert len(list(cache.glob("poison-*/poisoned.npz"))) == 2
  # ... while the cell (its hash, its record's path) stays the same.
  assert table.cell_path(tmp_path, "t", cell) == path


def test_a_resumed_poisoning_and_cell_report_the_time_of_every_sitting(tmp_path):
  # A killed sitting left its count behind: 1000 s of poisoning, 5000 s of cell.
  name = "table4_ratio"
  cell = next(c for c in configs.load(name, smoke=True)["cells"]
              if c["attack"] is not None and c["attack"]["name"] == "cuda")
  out, cache = tmp_path / "res", tmp_path / "res" / table.CACHE
  from ntga import attacks  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top
  key = table.poison_key(cell, pipeline.code_fingerprint(attacks.get("cuda")))
  folder = cache / f"poison-{config_hash(key)[:16]}"
  folder.mkdir(parents=True)
  (folder / table.ELAPSED).write_text(json.dumps({"seconds": 1000.0}))
  cache_cell = cache / f"cell-{table.cell_hash(cell)[:16]}{table.ELAPSED}"
  cache_cell.write_text(json.dumps({"seconds": 5000.0}))
  table.run_table(name, {**configs.load(name, smoke=True), "cells": [cell]},
                  smoke=True, out=out, cache=cache, log=lambda _: None)
  rec = json.loads(table.cell_path(out, name, cell).read_text())
  assert 1000 < rec["metrics"]["poison"]["wall_clock_s"] < 1000 + rec["wall_clock_s"]
  assert 5000 < rec["wall_clock_s"] < 5000 + 600
  # once kept, the counts are gone: a later poisoning starts from zero
  assert not (folder / table.ELAPSED).exists() and not cache_cell.exists()


def test_a_stopwatch_writes_its_running_total_while_it_runs(tmp_path):
  import time  # pylint: disable=g-import-not-at-top
  path = tmp_path / "t.json"
  with Stopwatch(path, every=0.05) as watch:
    time.sleep(0.3)
    assert 0 < json.loads(path.read_text())["seconds"] <= watch.seconds()
  assert json.loads(path.read_text())["seconds"] == pytest.approx(watch.seconds())
  assert Stopwatch(path).earlier == pytest.approx(watch.seconds())


def test_bad_cells_pattern_and_cells_on_a_plain_config_are_errors(tmp_path, capsys):
  assert run.main(["table4_ratio", "--smoke", "--out", str(tmp_path),
                   "--cells", "nope / *"]) == 2
  assert "matches no cell" in capsys.readouterr().err
  assert run.main(["attack_speed", "--smoke", "--out", str(tmp_path),
                   "--cells", "x"]) == 2
  assert "table configs only" in capsys.readouterr().err


def _table(cells, rows=("r",), cols=("a", "b")):
  return {"kind": "table", "title": "t", "description": "d", "rows": list(rows),
          "cols": list(cols), "paper": {}, "cells": cells}


def _cell(col="a", seeds=(0, 1, 2)):
  return {"row": "r", "col": col, "data": {}, "attack": None, "victim": {},
          "defense": "none", "seeds": list(seeds)}


@pytest.mark.parametrize("config, message", [
    (_table([_cell("a"), _cell("a")]), "two cells"),
    (_table([_cell("c")]), "not in rows/cols"),
    (_table([_cell("a", seeds=(0, 0, 1))]), "at least 3 distinct seeds"),
    (_table([{"row": "r", "col": "a"}]), "lacks"),
    ({"kind": "table", "cells": []}, "needs 'title'"),
])
def test_malformed_table_configs_are_rejected(config, message):
  with pytest.raises(ConfigError, match=message):
    table.check_table("x", config, smoke=False)


def test_min_seeds_lowers_the_seed_floor_per_table():
  one = _table([_cell("a", seeds=(0,))])
  with pytest.raises(ConfigError, match="at least 3 distinct seeds"):
    table.check_table("x", one, smoke=False)
  table.check_table("x", {**one, "min_seeds": 1}, smoke=False)


def test_cell_hash_ignores_labels_only():
  a, b = _cell("a"), _cell("b")
  assert table.cell_hash(a) == table.cell_hash(b)
  assert table.cell_hash(a) != table.cell_hash({**a, "defense": "jpeg"})


def _cell_record(finals, peaks, poison=None, attack=None):
  cell = {**_cell("a", seeds=range(len(finals))), "attack": attack}
  return {"name": "x", "kind": "table_cell", "cell": cell,
          "config_hash": table.cell_hash(cell),
          "metrics": {"poison": poison, "n_train": 10,
                      "final_mean": float(np.mean(finals)),
                      "final_std": float(np.std(finals, ddof=1)) if len(finals) > 1 else 0.0,
                      "peak_mean": float(np.mean(peaks)),
                      "per_seed": [{"seed": i, "final": f, "peak": p}
                                   for i, (f, p) in enumerate(zip(finals, peaks))]}}


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(config_hash="0" * 64), "hash is not the cell's"),
    (lambda r: r["metrics"]["per_seed"][0].update(peak=0.1), "peak 0.1 below final"),
    (lambda r: r["metrics"].update(final_mean=0.9), "final_mean is not the mean"),
    (lambda r: r["metrics"].update(poison={"attack": "ntga"}),
     "poison metadata does not match"),
])
def test_cell_check_catches_inconsistent_records(change, message):
  rec = _cell_record([0.5, 0.6], [0.7, 0.8])
  table.check(rec)
  change(rec)
  with pytest.raises(DataError, match=message):
    table.check(rec)


def test_cell_check_on_a_ratio_cell_counts_the_poisoned_images():
  attack = {"name": "cuda", "seed": 0, "ratio": 0.5, "settings": {}}
  rec = _cell_record([0.5], [0.6], attack=attack, poison={
      "attack": "cuda", "max_abs_delta_levels": 9, "n_poisoned": 5})
  table.check(rec)
  rec["metrics"]["poison"]["n_poisoned"] = 4
  with pytest.raises(DataError, match="4 images poisoned at ratio 0.5"):
    table.check(rec)


def test_a_cell_with_robust_eps_records_and_renders_robust_accuracy(tmp_path):
  cell = {"row": "r", "col": "a", "attack": None, "defense": "none",
          "data": {"spec": "digits", "limit": 64, "test_limit": 32},
          "victim": {"victim": "fnn", "epochs": 1, "batch_size": 32,
                     "robust_eps": 0.3}, "seeds": [0, 1]}
  config = {**_table([cell], cols=("a",)), "min_seeds": 1}
  table.run_table("t", config, smoke=True, out=tmp_path, log=lambda _: None)
  (rec,) = _records(tmp_path, "t").values()
  table.check(rec)
  m = rec["metrics"]
  robust = [s["robust"] for s in m["per_seed"]]
  assert len(robust) == 2 and all(0.0 <= r <= s["final"]
                                  for r, s in zip(robust, m["per_seed"]))
  assert m["robust_mean"] == pytest.approx(np.mean(robust))
  text = "\n".join(table.render("t", config, [rec])[0])
  assert "Robust test accuracy (%)" in text
  assert _page.pct(m["robust_mean"], m["robust_std"]) in text
  # a robust accuracy that disagrees with its mean is caught
  m["per_seed"][0]["robust"] = 1.0
  with pytest.raises(DataError, match="robust_mean is not the mean"):
    table.check(rec)
  del m["robust_mean"]
  with pytest.raises(DataError, match="robust_mean is recorded iff"):
    table.check(rec)


def test_a_seed_killed_part_way_resumes_after_its_last_epoch(tmp_path, monkeypatch):
  from ntga.victims import checkpoint  # pylint: disable=g-import-not-at-top
  cell = {"row": "r", "col": "a", "attack": None, "defense": "none",
          "data": {"spec": "digits", "limit": 64, "test_limit": 32},
          "victim": {"victim": "fnn", "epochs": 3, "batch_size": 32}, "seeds": [0]}
  straight = table.run_cell(cell, cache=tmp_path / "a", log=lambda _: None)
  assert not list((tmp_path / "a").glob("*.ckpt"))  # removed once kept
  real_save = checkpoint.EpochCheckpoints.save

  def killed_after_epoch_2(self, epoch, *args, **kwargs):
    real_save(self, epoch, *args, **kwargs)
    if epoch == 2:
      raise KeyboardInterrupt

  monkeypatch.setattr(checkpoint.EpochCheckpoints, "save", killed_after_epoch_2)
  with pytest.raises(KeyboardInterrupt):
    table.run_cell(cell, cache=tmp_path / "b", log=lambda _: None)
  assert not list((tmp_path / "b").glob("seed-*.json"))
  assert len(list((tmp_path / "b").glob("seed-*.ckpt"))) == 1
  monkeypatch.setattr(checkpoint.EpochCheckpoints, "save", real_save)
  lines = []
  resumed = table.run_cell(cell, cache=tmp_path / "b", log=lines.append)
  assert any("resumed after epoch 2" in line for line in lines), lines
  for key in ("final", "peak", "peak_epoch", "test_accuracy"):
    assert resumed["per_seed"][0][key] == straight["per_seed"][0][key], key
  assert not list((tmp_path / "b").glob("*.ckpt"))


def test_a_cell_keeps_each_seed_and_resumes_or_extends_from_them(tmp_path, monkeypatch):
  from ntga.victims import train as vtrain  # pylint: disable=g-import-not-at-top
  trained = []
  real = vtrain.train_and_evaluate

  def counting(key, *args, **kwargs):
    trained.append(int(jax.random.key_data(key)[-1]))
    return real(key, *args, **kwargs)

  monkeypatch.setattr(vtrain, "train_and_evaluate", counting)
  cell = {"row": "r", "col": "a", "attack": None, "defense": "none",
          "data": {"spec": "digits", "limit": 64, "test_limit": 32},
          "victim": {"victim": "fnn", "epochs": 1, "batch_size": 32}, "seeds": [0, 1]}
  first = table.run_cell(cell, cache=tmp_path, log=lambda _: None)
  assert trained == [0, 1] and len(list(tmp_path.glob("seed-*.json"))) == 2
  # the same cell again (a rerun after a kill): nothing is trained
  again = table.run_cell(cell, cache=tmp_path, log=lambda _: None)
  assert trained == [0, 1] and again == first
  # one more seed, relabelled: only the new seed trains
  more = table.run_cell({**cell, "row": "x", "seeds": [0, 1, 2]}, cache=tmp_path,
                        log=lambda _: None)
  assert trained == [0, 1, 2] and more["per_seed"][:2] == first["per_seed"]
  # other settings are another key
  table.run_cell({**cell, "victim": {**cell["victim"], "lr": 0.01}, "seeds": [0]},
                 cache=tmp_path, log=lambda _: None)
  assert trained == [0, 1, 2, 0]
  # and so is other victims' code: a seed that older code trained is not reused
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(pipeline, "source_fingerprint", lambda *m: "edited victims")
  table.run_cell(cell, cache=tmp_path, log=lambda _: None)
  assert trained == [0, 1, 2, 0, 0, 1]
