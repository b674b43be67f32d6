"""Kind ``evaluate_command``: ``ntga evaluate`` as a user runs it.

The command runs in a fresh process (``python -m ntga evaluate ...``) once
per seed (and per victim, when the config lists ``victims``), so the
recorded wall clock covers everything a user waits for: start-up, decoding
the data, compilation, training and the per-epoch clean test evaluations. Its
``metrics.json`` gives final and peak accuracy; ``wait4`` gives the process's
CPU time and peak memory.

Config keys: ``args`` (the ``ntga evaluate`` flags; a leading ``{shared}`` in
any of them is the offline data folder), ``seeds`` and, optionally,
``victims`` (run ``ARGS --victim V`` for each).

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import evaluate_command
  >>> m = evaluate_command.run(configs.load("fast_cifar_clean", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from benchmarks.kinds import command as command_kind
from ntga.errors import ConfigError

KIND = "evaluate_command"
GROUP = "other"


def command(args: list[str], seed: int) -> list[str]:
  """The argv of one run: ``ntga evaluate ARGS --seed SEED`` (no output folder)."""
  return ["ntga", "evaluate", *args, "--seed", str(seed)]


def _variants(config: dict[str, Any]) -> list[list[str]]:
  """The flag lists to run: ``args``, or ``args --victim V`` per victim."""
  if "victims" not in config:
    return [list(config["args"])]
  return [[*config["args"], "--victim", v] for v in config["victims"]]


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Runs the command once per (victim,) seed in a fresh process.

  Returns:
    ``runs``: per run, the command, ``wall_clock_s`` of the process, its
    ``user_cpu_s`` and ``peak_rss_mib``, ``final``/``peak`` test accuracy,
    ``peak_epoch``, per-epoch ``test_accuracy`` and ``train_time_s``;
    ``final_mean``, ``peak_mean``.

  Raises:
    ConfigError: the args set ``--seed`` or ``--out`` (the runner does), or
      ``--victim`` beside ``victims``.
    RuntimeError: a run failed.
  """
  if "--out" in config["args"] or "--seed" in config["args"]:
    raise ConfigError("evaluate_command sets --seed and --out itself")
  if "victims" in config and "--victim" in config["args"]:
    raise ConfigError("evaluate_command: give the victim in args or in victims, "
                      "not both")
  runs = []
  for args in _variants(config):
    for seed in config["seeds"]:
      with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = [sys.executable, "-m", "ntga", *command(
            [resolve_spec(a) for a in args], seed)[1:], "--out", str(out),
            "--no-progress"]
        p = command_kind.measured(argv)
        if p["exit_code"] != 0:
          raise RuntimeError(f"{shlex.join(argv)} failed ({p['exit_code']}): "
                             f"{p['stderr'].strip()[-2000:]}")
        m = json.loads((out / "metrics.json").read_text())
      runs.append({"seed": seed, "command": shlex.join(command(args, seed)),
                   "wall_clock_s": p["wall_clock_s"], "user_cpu_s": p["user_cpu_s"],
                   "peak_rss_mib": p["peak_rss_mib"],
                   "final": m["final_test_accuracy"],
                   "peak": m["peak_test_accuracy"], "peak_epoch": m["peak_epoch"],
                   "test_accuracy": m["test_accuracy"],
                   "train_time_s": m.get("train_time_s"),
                   "n_train": m["n_train"], "n_test": m["n_test"]})
  mean = lambda k: sum(r[k] for r in runs) / len(runs)  # noqa: E731
  return {"runs": runs, "final_mean": mean("final"), "peak_mean": mean("peak")}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless there is one run per (victim,) seed of the config,
  each an evaluate command with 0 <= final <= peak = max over epochs <= 1."""
  expect = _records.expect
  m, c = record["metrics"], record["config"]
  expect([r["seed"] for r in m["runs"]] == list(c["seeds"]) * len(_variants(c)),
         "evaluate_command: runs differ from the config's seeds")
  for r in m["runs"]:
    expect(" evaluate " in f" {r['command']} ", f"{r['command']!r} is no evaluate run")
    expect(_records.positive(r["wall_clock_s"]), f"{r['command']!r}: wall clock")
    _records.check_accuracies([r["final"]], [r["peak"]], repr(r["command"]))
    expect(max(r["test_accuracy"]) == r["peak"],
           f"{r['command']!r}: peak is not the best epoch's accuracy")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  runs = r["metrics"]["runs"]
  usage = any(x.get("user_cpu_s") is not None for x in runs)
  rows = []
  for x in runs:
    row = [f"`{x['command']}`", str(x["n_train"]), str(x["n_test"]),
           f"{100 * x['final']:.2f}", f"{100 * x['peak']:.2f}",
           str(x["peak_epoch"]), f"{x['wall_clock_s'] / 60:.1f}"]
    if usage:
      row += [_page.fmt(x.get("user_cpu_s"), ".0f"),
              _page.fmt(x.get("peak_rss_mib"), ".0f")]
    rows.append(row + [" / ".join(f"{100 * a:.1f}" for a in x["test_accuracy"])])
  header = ["command", "train", "test", "final (%)", "peak (%)", "peak epoch",
            "wall-clock (min)"]
  if usage:
    header += ["user CPU (s)", "peak RSS (MiB)"]
  header.append("test accuracy per epoch (%)")
  return _page.table(header, rows, set(range(1, len(header) - 1))), []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, one row per run."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
