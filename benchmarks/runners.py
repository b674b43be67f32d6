"""The runners behind ``python -m benchmarks.run``: one per config ``kind``.

A runner is ``run(config: dict) -> dict`` of metrics (JSON-serialisable); the
caller (:mod:`benchmarks.run`) adds config, hash, versions, machine and
wall-clock. Runners validate their config and raise
:class:`ntga.errors.ConfigError` on a bad one.

Example:
  >>> from benchmarks import configs, runners
  >>> cfg = configs.load("attack_speed", smoke=True)
  >>> metrics = runners.RUNNERS[cfg["kind"]](cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import numpy as np

from benchmarks import _block_sweep, _evaluate_command, _kernel_speed, _victim_speed
from benchmarks._tables import MIN_SEEDS, attack_config, summarize
from benchmarks.configs import resolve_spec
from ntga.errors import ConfigError



# --------------------------------------------------------------------------
# poison_eval


def poison_eval(config: dict[str, Any]) -> dict[str, Any]:
  """Poisons a training set once, then trains every victim x defense per seed.

  Config keys: ``data`` (``spec``, ``limit``, ``test_limit``), ``attack``
  (``name``, ``seed``, ``ratio``, ``settings``: the attack's config fields),
  ``clean_baseline`` (also train on the clean set), ``victims`` (list of
  :class:`ntga.victims.train.TrainConfig` field dicts, each with a ``victim``),
  ``defenses`` (names) and ``seeds`` (at least 3; victim key = ``key(seed)``).

  Returns:
    ``poison`` (attack manifest fields and wall-clock) and ``results``: one
    entry per (train set, victim, defense) with per-seed final/peak test
    accuracy and their mean/std over seeds.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import attacks  # pylint: disable=g-import-not-at-top
  from ntga import cli, data  # pylint: disable=g-import-not-at-top
  from ntga.victims.train import TrainConfig, train_and_evaluate  # pylint: disable=g-import-not-at-top

  seeds = list(config["seeds"])
  if len(set(seeds)) < MIN_SEEDS:
    raise ConfigError(f"poison_eval needs at least {MIN_SEEDS} distinct seeds, "
                      f"got {seeds}")
  train_cfgs = []
  for v in config["victims"]:
    for defense in config["defenses"]:
      train_cfgs.append(TrainConfig(**{**v, "defense": defense}).resolved())

  d = config["data"]
  spec = resolve_spec(d["spec"])
  train = data.load(spec, "train", limit=d["limit"])
  test = data.load(spec, "test", limit=d["test_limit"])

  a = config["attack"]
  attack = attacks.get(a["name"])
  start = time.perf_counter()
  manifest, x_poisoned = cli.poison_dataset(
      attack, attack_config(attack, a["settings"]), train, seed=a["seed"],
      ratio=a["ratio"])
  manifest.pop("versions")
  poison = {**manifest, "wall_clock_s": time.perf_counter() - start,
            "n_train": len(train), "n_test": len(test)}

  train_sets = {"poisoned": dataclasses.replace(train, x=x_poisoned)}
  if config["clean_baseline"]:
    train_sets = {"clean": train, **train_sets}
  results = []
  for set_name, ds in train_sets.items():
    for cfg in train_cfgs:
      per_seed = []
      for seed in seeds:
        m = train_and_evaluate(jax.random.key(seed), ds, test, cfg, progress=False)
        per_seed.append({"seed": seed, "final": m["final_test_accuracy"],
                         "peak": m["peak_test_accuracy"],
                         "peak_epoch": m["peak_epoch"],
                         "test_accuracy": m["test_accuracy"],
                         "wall_clock_s": m["wall_clock_s"]})
      results.append({"train_set": set_name, "victim": cfg.victim,
                      "defense": cfg.defense, "epochs": cfg.epochs,
                      **summarize(per_seed)})
  return {"poison": poison, "results": results}


# --------------------------------------------------------------------------
# attack_speed


def attack_speed(config: dict[str, Any]) -> dict[str, Any]:
  """Times each attack's ``poison`` call on each dataset.

  Config keys: ``datasets`` (``spec``, ``limit``), ``attacks`` (``name``,
  ``settings``, optional ``limit``: a smaller subset for a slow attack) and
  ``seed``. The timed call includes JIT compilation, as a CLI run sees it.

  Returns:
    ``results``: one entry per (dataset, attack) with ``n_images``,
    ``seconds``, ``images_per_second`` and the perturbation's PSNR / max delta.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import attacks  # pylint: disable=g-import-not-at-top
  from ntga import data  # pylint: disable=g-import-not-at-top

  results = []
  for d in config["datasets"]:
    full = data.load(resolve_spec(d["spec"]), "train", limit=d["limit"])
    for a in config["attacks"]:
      attack = attacks.get(a["name"])
      cfg = attack_config(attack, a["settings"])
      ds = full
      if a.get("limit") is not None and a["limit"] < len(full):
        ds = data.load(resolve_spec(d["spec"]), "train", limit=a["limit"])
      extra = {"num_classes": ds.num_classes} if attack.resumable else {}
      start = time.perf_counter()
      x_p = np.asarray(attack.poison(jax.random.key(config["seed"]), ds.x, ds.y,
                                     cfg, **extra))
      seconds = time.perf_counter() - start
      stats = attacks.perturbation_stats(ds.x, x_p)
      results.append({"data": d["spec"], "attack": a["name"],
                      "settings": a["settings"], "n_images": len(ds),
                      "image_shape": list(ds.x.shape[1:]), "seconds": seconds,
                      "images_per_second": len(ds) / seconds, **stats})
  return {"results": results}


# --------------------------------------------------------------------------
# ntga_step_speed


def ntga_step_speed(config: dict[str, Any]) -> dict[str, Any]:
  """Seconds per PGD step, ours vs the reference scheme (benchmarks.ntga_speed).

  Config keys: ``data``, ``block``, ``targets``, ``repeats``, ``t``. The
  reference scheme needs float64: x64 is switched on for it only and restored.

  Returns:
    seconds per step of both variants, the speed-up and the cosine between
    their gradients.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from benchmarks import ntga_speed  # pylint: disable=g-import-not-at-top

  spec = resolve_spec(config["data"])
  ours = ntga_speed.run_ours(spec, config["block"], config["targets"],
                             config["repeats"], t=config["t"])
  x64 = jax.config.jax_enable_x64
  try:
    ref = ntga_speed.run_reference(spec, config["block"], config["targets"],
                                   t=config["t"])
  finally:
    jax.config.update("jax_enable_x64", x64)
  ga, gb = np.asarray(ours["grad"]), np.asarray(ref["grad"])
  cosine = float(ga @ gb / (np.linalg.norm(ga) * np.linalg.norm(gb)))
  return {"seconds_per_step_ours": ours["seconds"],
          "seconds_per_step_ours_all": ours["all_seconds"],
          "seconds_per_step_reference_scheme": ref["seconds"],
          "speedup": ref["seconds"] / ours["seconds"],
          "reference_slices": math.ceil(config["targets"] / 30),
          "gradient_cosine": cosine}


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "poison_eval": poison_eval,
    "attack_speed": attack_speed,
    "ntga_step_speed": ntga_step_speed,
    "ntga_block_sweep": _block_sweep.run,
    "cnn_kernel_speed": _kernel_speed.run,
    "victim_speed": _victim_speed.run,
    "evaluate_command": _evaluate_command.run,
}
