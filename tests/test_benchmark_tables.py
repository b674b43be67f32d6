"""Table configs (benchmarks/configs/table*.py): smoke runs, per-cell cache, --cells."""

import json

import numpy as np
import pytest

from benchmarks import _tables, configs, run
from ntga.errors import ConfigError

TABLES = ["table1_mnist", "table2_cifar", "table3_defenses", "table4_ratio",
          "table5_cifar_full"]


def _records(out, name):
  return {p.name: json.loads(p.read_text()) for p in (out / name).glob("*.json")}


def _check_record(rec, name):
  assert rec["kind"] == "table_cell" and rec["name"] == name and rec["smoke"]
  assert rec["config_hash"] == _tables.cell_hash(rec["cell"])
  m = rec["metrics"]
  finals = [s["final"] for s in m["per_seed"]]
  peaks = [s["peak"] for s in m["per_seed"]]
  assert [s["seed"] for s in m["per_seed"]] == rec["cell"]["seeds"]
  assert all(0.0 <= f <= p <= 1.0 for f, p in zip(finals, peaks))
  assert m["final_mean"] == pytest.approx(np.mean(finals))
  assert m["peak_mean"] == pytest.approx(np.mean(peaks))
  assert rec["command"] == _tables.cell_command(name, rec["cell"], smoke=True)
  attack = rec["cell"]["attack"]
  if attack is None:
    assert m["poison"] is None
  else:
    assert m["poison"]["attack"] == attack["name"]
    assert m["poison"]["max_abs_delta_levels"] > 0
    if attack["ratio"] is not None:
      assert m["poison"]["n_poisoned"] == round(attack["ratio"] * m["n_train"])


@pytest.mark.parametrize("name", TABLES)
def test_smoke_table_fills_every_cell_then_is_cached(name, tmp_path, capsys):
  config = configs.load(name, smoke=True)
  assert run.main([name, "--smoke", "--out", str(tmp_path)]) == 0
  recs = _records(tmp_path, name)
  hashes = {_tables.cell_hash(c)[:16] for c in config["cells"]}
  assert set(recs) == {h + ".json" for h in hashes}
  for rec in recs.values():
    _check_record(rec, name)
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
  assert len(list((out / _tables.CACHE).glob("poison-*/poisoned.npz"))) == 1
  # a table whose folder does not exist yet reuses a cell of another table
  twin = tmp_path / "twin"
  (twin / "table4_ratio").mkdir(parents=True)
  for p in (out / "table4_ratio").glob("*.json"):
    (twin / "table4_ratio" / p.name).write_text(p.read_text())
  clean = {**configs.load("table4_ratio", smoke=True)["cells"][0],
           "row": "x", "col": "y"}
  status = _tables.run_table("other", {
      "title": "t", "description": "d", "rows": ["x"], "cols": ["y"],
      "paper": {}, "cells": [clean]}, smoke=True, out=twin)
  assert status["cells"][0]["status"] == "cached"
  rec = json.loads((twin / "other" / (_tables.cell_hash(clean)[:16] + ".json"))
                   .read_text())
  assert rec["reused_from"] == "table4_ratio" and rec["cell"]["row"] == "x"


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
    _tables.check_table("x", config, smoke=False)


def test_min_seeds_lowers_the_seed_floor_per_table():
  one = _table([_cell("a", seeds=(0,))])
  with pytest.raises(ConfigError, match="at least 3 distinct seeds"):
    _tables.check_table("x", one, smoke=False)
  _tables.check_table("x", {**one, "min_seeds": 1}, smoke=False)


def test_cell_hash_ignores_labels_only():
  a, b = _cell("a"), _cell("b")
  assert _tables.cell_hash(a) == _tables.cell_hash(b)
  assert _tables.cell_hash(a) != _tables.cell_hash({**a, "defense": "jpeg"})
