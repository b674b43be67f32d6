"""Kind ``command``: wall clock, CPU time and memory of ``ntga`` commands.

Each configured command runs in a fresh process, one after the other, so the
numbers cover everything a user waits for: interpreter start, imports, data
decoding, compilation, the work and writing the outputs. The command's
resource use comes from ``wait4`` (user and system CPU seconds, peak resident
memory of the process and the children it waited for), and the JSON files it
names under ``outputs`` are read back from its output folder.

Config keys: ``commands`` (argv lists; ``ntga`` and ``python`` run with this
interpreter, ``{shared}`` at the start of an argument is the offline data
folder and ``{out}`` a fresh empty output folder per command) and
``outputs`` (file names of JSON files to keep from that folder, e.g.
``manifest.json``).

Example:
  >>> from benchmarks.kinds import command
  >>> command.run({"kind": "command", "outputs": ["manifest.json"], "commands": [
  ...     ["ntga", "poison", "--attack", "random", "--data", "digits",
  ...      "--out", "{out}"]]})["runs"][0]["exit_code"]  # doctest: +SKIP
  0
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from ntga.errors import ConfigError

KIND = "command"
GROUP = "speed"
OUT = "{out}"
# How each program named first in a configured argv is started.
_PROGRAMS = {"ntga": [sys.executable, "-m", "ntga"], "python": [sys.executable]}


def measured(argv: Sequence[str], env: dict[str, str] | None = None,
             cwd: Path | None = None) -> dict[str, Any]:
  """Runs ``argv`` to the end; returns its exit code, output and resource use.

  Args:
    argv: the program and its arguments.
    env: the environment (default: this process's).
    cwd: the working folder (default: this process's).

  Returns:
    ``exit_code``, ``wall_clock_s``, ``user_cpu_s``, ``system_cpu_s``,
    ``peak_rss_mib`` (of the process and the children it waited for),
    ``stdout`` and ``stderr``.
  """
  with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
  return {"exit_code": proc.returncode, "wall_clock_s": wall,
          "user_cpu_s": usage.ru_utime, "system_cpu_s": usage.ru_stime,
          "peak_rss_mib": usage.ru_maxrss / (1 << 20 if sys.platform == "darwin"
                                             else 1024),
          "stdout": stdout, "stderr": stderr}


def _argv(command: list[str], out: Path) -> list[str]:
  """The argv to start: the program resolved, placeholders filled in."""
  if not command or command[0] not in _PROGRAMS:
    raise ConfigError(f"command: {shlex.join(command)!r} must start with one of "
                      f"{', '.join(_PROGRAMS)}")
  return _PROGRAMS[command[0]] + [str(out) if a == OUT else resolve_spec(a)
                                  for a in command[1:]]


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Runs every configured command once, in order, each in a fresh process.

  Returns:
    ``runs``: per command, its text (placeholders kept), exit code, wall
    clock, CPU seconds, peak RSS and the ``outputs`` it wrote.

  Raises:
    ConfigError: a command that does not start with ``ntga`` or ``python``.
    RuntimeError: a command failed (its last error lines are in the message).
  """
  runs = []
  for command in config["commands"]:
    with tempfile.TemporaryDirectory() as tmp:
      out = Path(tmp) / "out"
      argv = _argv(command, out)
      m = measured(argv)
      if m["exit_code"] != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({m['exit_code']}): "
                           f"{m['stderr'].strip()[-2000:]}")
      outputs = {name: json.loads((out / name).read_text())
                 for name in config["outputs"] if (out / name).exists()}
    runs.append({"command": shlex.join(command), "exit_code": m["exit_code"],
                 "wall_clock_s": m["wall_clock_s"], "user_cpu_s": m["user_cpu_s"],
                 "system_cpu_s": m["system_cpu_s"],
                 "peak_rss_mib": m["peak_rss_mib"], "outputs": outputs})
  return {"runs": runs}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless every command ran once, in order, and succeeded,
  with a positive wall clock and only the configured outputs."""
  expect = _records.expect
  c, runs = record["config"], record["metrics"]["runs"]
  expect(len(runs) == len(c["commands"]),
         f"command: {len(runs)} runs of {len(c['commands'])} commands")
  for r in runs:
    expect(r.get("exit_code", 0) == 0, f"command {r['command']!r} failed")
    expect(_records.positive(r["wall_clock_s"]), f"command {r['command']!r}: wall clock")
    expect(set(r["outputs"]) <= set(c["outputs"]),
           f"command {r['command']!r}: outputs not in the config")


def _manifest(runs: list[dict[str, Any]]) -> list[str]:
  rows = [[f"`{r['command']}`", m.get("attack", "-"), _page.fmt(m.get("psnr_db"), ".1f"),
           _page.fmt(m.get("max_abs_delta_levels"), "d")]
          for r in runs for m in [r["outputs"].get("manifest.json")] if m]
  if not rows:
    return []
  return ["", "The poisons (from each run's `manifest.json`):", ""] + _page.table(
      ["command", "attack", "PSNR (dB)", "max abs delta (levels)"], rows)


def _demo(runs: list[dict[str, Any]]) -> list[str]:
  lines = []
  for r in runs:
    d = r["outputs"].get("demo_results.json")
    if not d:
      continue
    rows = [[f"`{v['victim']}`",
             f"{100 * v['clean_trained']:.1f} ({100 * v['clean_trained_peak']:.1f})",
             f"{100 * v['poison_trained']:.1f} ({100 * v['poison_trained_peak']:.1f})"]
            for v in d["victims"]]
    lines += ["", f"Clean test accuracy (%) after {d['epochs']} epochs, final (peak), "
              f"seed {d['seed']} (from `demo_results.json`):", ""]
    lines += _page.table(["victim", "clean-trained", "poison-trained"], rows)
  return lines


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  runs = r["metrics"]["runs"]
  rows = [[f"`{x['command']}`", f"{x['wall_clock_s']:.1f}",
           _page.fmt(x.get("user_cpu_s"), ".1f"),
           _page.fmt(x.get("system_cpu_s"), ".1f"),
           _page.fmt(x.get("peak_rss_mib"), ".1f", 1 / 1024)] for x in runs]
  lines = _page.table(["command", "wall clock (s)", "user CPU (s)",
                       "system CPU (s)", "peak RSS (GiB)"], rows)
  return lines + _manifest(runs) + _demo(runs), []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, each command's cost and outputs."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
