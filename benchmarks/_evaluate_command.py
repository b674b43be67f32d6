"""Wall-clock and accuracy of an ``ntga evaluate`` command, as a user runs it.

The command runs in a fresh subprocess (``python -m ntga.cli evaluate ...``)
once per seed, so the recorded wall-clock covers everything a user waits for:
start-up, decoding the data, compilation, training and the per-epoch clean
test evaluations. Its ``metrics.json`` gives final and peak accuracy.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.configs import resolve_spec
from ntga.errors import ConfigError


def command(args: list[str], seed: int) -> list[str]:
  """The argv of one run: ``ntga evaluate ARGS --seed SEED`` (no output folder)."""
  return ["ntga", "evaluate", *args, "--seed", str(seed)]


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Runner of kind ``evaluate_command`` (see the module docstring).

  Config keys: ``args`` (the ``ntga evaluate`` flags; a leading ``{shared}``
  in any of them is the offline data folder), ``seeds``.

  Returns:
    ``runs``: per seed, the command, ``wall_clock_s`` of the subprocess,
    ``final``/``peak`` test accuracy, ``peak_epoch``, per-epoch
    ``test_accuracy`` and ``train_time_s``; ``final_mean``, ``peak_mean``.
  """
  if "--out" in config["args"] or "--seed" in config["args"]:
    raise ConfigError("evaluate_command sets --seed and --out itself")
  args = [resolve_spec(a) for a in config["args"]]
  runs = []
  for seed in config["seeds"]:
    with tempfile.TemporaryDirectory() as tmp:
      out = Path(tmp) / "run"
      argv = [sys.executable, "-m", "ntga.cli", *command(args, seed)[1:],
              "--out", str(out), "--no-progress"]
      start = time.perf_counter()
      proc = subprocess.run(argv, capture_output=True, text=True, check=False)
      wall = time.perf_counter() - start
      if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
      m = json.loads((out / "metrics.json").read_text())
    runs.append({"seed": seed,
                 "command": shlex.join(command(config["args"], seed)),
                 "wall_clock_s": wall, "final": m["final_test_accuracy"],
                 "peak": m["peak_test_accuracy"], "peak_epoch": m["peak_epoch"],
                 "test_accuracy": m["test_accuracy"],
                 "train_time_s": m.get("train_time_s"),
                 "n_train": m["n_train"], "n_test": m["n_test"]})
  mean = lambda k: sum(r[k] for r in runs) / len(runs)  # noqa: E731
  return {"runs": runs, "final_mean": mean("final"), "peak_mean": mean("peak")}
