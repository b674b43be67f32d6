"""Kind ``poison_eval``: poison a training set once, then train victims x defenses on it.

Config keys: ``data`` (``spec``, ``limit``, ``test_limit``), ``attack``
(``name``, ``seed``, ``ratio``, ``settings``: the attack's config fields),
``clean_baseline`` (also train on the clean set), ``victims`` (list of
:class:`ntga.victims.train.TrainConfig` field dicts, each with a ``victim``),
``defenses`` (names) and ``seeds`` (at least 3; victim key = ``key(seed)``).

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import poison_eval
  >>> metrics = poison_eval.run(configs.load("poison_eval", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from ntga.errors import ConfigError

KIND = "poison_eval"
GROUP = "other"
MIN_SEEDS = 3


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Poisons the training set, then trains every victim x defense per seed.

  Returns:
    ``poison`` (attack manifest fields and wall-clock) and ``results``: one
    entry per (train set, victim, defense) with per-seed final/peak test
    accuracy and their mean/std over seeds.

  Raises:
    ConfigError: fewer than 3 distinct seeds, or bad victim/attack settings.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import attacks, data  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top
  from ntga.victims.train import TrainConfig, train_and_evaluate  # pylint: disable=g-import-not-at-top

  seeds = list(config["seeds"])
  if len(set(seeds)) < MIN_SEEDS:
    raise ConfigError(f"poison_eval needs at least {MIN_SEEDS} distinct seeds, "
                      f"got {seeds}")
  train_cfgs = []
  for v in config["victims"]:
    for defense in config["defenses"]:
      train_cfgs.append(TrainConfig.from_flat(**{**v, "defense": defense}).resolved())

  d = config["data"]
  spec = resolve_spec(d["spec"])
  train = data.load(spec, "train", limit=d["limit"])
  test = data.load(spec, "test", limit=d["test_limit"])

  a = config["attack"]
  attack = attacks.get(a["name"])
  start = time.perf_counter()
  manifest, x_poisoned = pipeline.poison_dataset(
      attack, pipeline.build_config(attack, a["settings"]), train, seed=a["seed"],
      ratio=a["ratio"], progress=False)
  manifest.pop("versions")
  poison = {**manifest, "wall_clock_s": time.perf_counter() - start,
            "n_train": len(train), "n_test": len(test)}

  train_sets = {"poisoned": dataclasses.replace(train, x=x_poisoned)}
  if config["clean_baseline"]:
    train_sets = {"clean": train, **train_sets}
  results = []
  for set_name, ds in train_sets.items():
    for cfg in train_cfgs:
      per_seed = [_records.seed_result(seed, train_and_evaluate(
          jax.random.key(seed), ds, test, cfg, progress=False)) for seed in seeds]
      results.append({"train_set": set_name, "victim": cfg.victim,
                      "defense": cfg.defense.name, "epochs": cfg.epochs,
                      **_records.summarize(per_seed)})
  return {"poison": poison, "results": results}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless the record's poison and results fit its config.

  The poison is the configured attack and stays within its eps; the results
  cover (clean and) poisoned training for every victim x defense, each over
  the configured seeds with consistent means.
  """
  expect = _records.expect
  c, m = record["config"], record["metrics"]
  p = m["poison"]
  expect(p["attack"] == c["attack"]["name"], f"poison_eval: poisoned by {p['attack']!r}")
  expect(0 < p["max_abs_delta"] <= p["config"]["eps"] + 1e-6,
         f"poison_eval: max delta {p['max_abs_delta']} outside (0, eps]")
  sets = (["clean"] if c["clean_baseline"] else []) + ["poisoned"]
  per_set = len(c["victims"]) * len(c["defenses"])
  expect([r["train_set"] for r in m["results"]]
         == [s for s in sets for _ in range(per_set)],
         f"poison_eval: results are not {per_set} per training set {sets}")
  for res in m["results"]:
    expect([s["seed"] for s in res["per_seed"]] == list(c["seeds"]),
           "poison_eval: seeds differ from the config's")
    _records.check_summary(res, f"poison_eval {res['train_set']}/{res['victim']}")


def _label(config: dict[str, Any], poison: dict[str, Any]) -> str:
  label = config["attack"]["name"]
  eps = poison.get("config", {}).get("eps")
  if eps is not None:
    label += f" (eps {eps:.3g})"
  if config["attack"].get("ratio") is not None:
    label += f", ratio {config['attack']['ratio']:g}"
  return label


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  c, p = r["config"], r["metrics"]["poison"]
  rows = []
  for res in r["metrics"]["results"]:
    rows.append([_label(c, p) if res["train_set"] == "poisoned" else "clean",
                 res["victim"], res["defense"], str(res["epochs"]),
                 str(len(res["per_seed"])),
                 _page.pct(res["final_mean"], res["final_std"]),
                 _page.pct(res["peak_mean"], res["peak_std"])])
  lines = [f"Data `{c['data']['spec']}`: {p['n_train']} training images, "
           f"{p.get('n_test', '?')} test images. Poisoning took "
           f"{p.get('wall_clock_s', float('nan')):.0f} s.", ""]
  lines += _page.table(["training set", "victim", "defense", "epochs", "seeds",
                        "final test acc. (%)", "peak test acc. (%)"], rows,
                       {3, 4, 5, 6})
  return lines, []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, the victims' accuracies."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
