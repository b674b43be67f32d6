"""Kind ``attacks_victims``: one victim trained on each attack's poison.

Poisons a seeded, class-stratified subset of a training split with each
configured attack (one key for every attack), trains the victim (its recipe,
another key) for a few epochs on each poisoned set and on the clean one, and
records its clean test accuracy. For the attacks that train a source model
(EM, REM) it also records how that training went: rounds run (REM: source
iterations), whether EM reached its stop accuracy, and the source model's
final accuracy and loss on the perturbed training data. One seed and short
CPU trainings: for *relative* comparison.

Config keys: ``data`` (``spec``, ``limit``, ``test_limit``), ``victim``
(:class:`ntga.victims.train.TrainConfig` fields), ``attacks`` (list of
``label``, ``name`` (None: the clean set) and ``settings``), ``attack_seed``
and ``victim_seed``.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import attacks_victims
  >>> m = attacks_victims.run(configs.load("attacks_victims", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec

KIND = "attacks_victims"
GROUP = "other"


def _source_model_runs() -> dict[str, Any]:
  """Attack name -> its ``generate`` (poison plus the source model's history)."""
  from ntga.attacks import em, rem  # pylint: disable=g-import-not-at-top
  return {"em": em.generate, "rem": rem.generate}


def _poison(entry: dict[str, Any], train, seed: int):
  """``(images, full config dict or None, source-model info or None, seconds)``."""
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import attacks  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top
  from ntga.protocol import RunContext  # pylint: disable=g-import-not-at-top

  if entry["name"] is None:
    return train.x, None, None, 0.0
  attack = attacks.get(entry["name"])
  cfg = pipeline.build_config(attack, entry["settings"])
  context = RunContext(num_classes=train.num_classes)
  key = jax.random.key(seed)
  start = time.perf_counter()
  generate = _source_model_runs().get(entry["name"])
  info = None
  if generate is None:
    x = attack.poison(key, train.x, train.y, cfg, context)
  else:
    r = generate(key, train.x, train.y, cfg, context)
    x = r.x
    info = {"rounds": r.rounds, "stopped": r.stopped,
            "final_accuracy": round(r.accuracy[-1], 4),
            "final_loss": round(r.loss[-1], 4)}
  seconds = time.perf_counter() - start
  resolved = cfg.resolved(train.x.shape[1:])
  return x, dataclasses.asdict(resolved), info, seconds


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Poisons with every attack and trains the victim on each set.

  Returns:
    ``n_train``, ``n_test`` and ``results``: per attack its ``label``,
    ``attack``, ``attack_config`` (every field), ``final`` / ``peak`` test
    accuracy, ``poison_seconds``, ``train_seconds`` and, for EM/REM,
    ``source_model``.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import data  # pylint: disable=g-import-not-at-top
  from ntga.victims.train import TrainConfig, train_and_evaluate  # pylint: disable=g-import-not-at-top

  d = config["data"]
  spec = resolve_spec(d["spec"])
  train = data.load(spec, "train", limit=d["limit"])
  test = data.load(spec, "test", limit=d["test_limit"])
  tcfg = TrainConfig.from_flat(**config["victim"]).resolved()
  results = []
  for entry in config["attacks"]:
    x, full, info, poison_s = _poison(entry, train, config["attack_seed"])
    start = time.perf_counter()
    m = train_and_evaluate(jax.random.key(config["victim_seed"]),
                           dataclasses.replace(train, x=x), test, tcfg,
                           progress=False)
    res = {"label": entry["label"], "attack": entry["name"], "attack_config": full,
           "final": m["final_test_accuracy"], "peak": m["peak_test_accuracy"],
           "poison_seconds": poison_s,
           "train_seconds": time.perf_counter() - start}
    if info is not None:
      res["source_model"] = info
    results.append(res)
  return {"n_train": len(train), "n_test": len(test), "results": results}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless every configured attack has one result, in order,
  with 0 <= final <= peak <= 1 (where the peak was kept)."""
  expect = _records.expect
  c, res = record["config"], record["metrics"]["results"]
  expect([r["label"] for r in res] == [a["label"] for a in c["attacks"]],
         "attacks_victims: results differ from the config's attacks")
  for r in res:
    _records.check_accuracies([r["final"]], [r.get("peak")],
                              f"attacks_victims {r['label']}")


def _source_text(info: dict[str, Any] | None) -> str:
  if not info:
    return ""
  stop = "reached the stop accuracy" if info["stopped"] else "did not stop"
  return (f"{info['rounds']} rounds, {stop}; accuracy {100 * info['final_accuracy']:.1f}"
          f"%, loss {info['final_loss']:.3f}")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  c, m = r["config"], r["metrics"]
  d, v = c["data"], c["victim"]
  victim = ", ".join(f"{k} {_page.value(x)}" for k, x in v.items() if k != "victim")
  lines = [f"`{v['victim']}` ({victim}) on `{d['spec']}`: "
           f"{m.get('n_train', d['limit'])} training images, "
           f"{m.get('n_test', d['test_limit'] or 'all')} test images; attack key "
           f"{c['attack_seed']}, victim key {c['victim_seed']}.", ""]
  settings = {a["label"]: a["settings"] for a in c["attacks"]}
  rows = [[x["label"], _page.value(settings.get(x["label"]) or None),
           _page.fmt(x["final"], ".2f", 100), _page.fmt(x.get("peak"), ".2f", 100),
           _page.fmt(x.get("poison_seconds"), ".0f"),
           _page.fmt(x.get("train_seconds"), ".0f"),
           _source_text(x.get("source_model"))] for x in m["results"]]
  lines += _page.table(["attack", "settings (beside its defaults)",
                        "final test acc. (%)", "peak test acc. (%)", "poison (s)",
                        "train (s)", "source model"], rows, {2, 3, 4, 5})
  return lines, []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, one row per attack."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
