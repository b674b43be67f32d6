"""Kind ``poison_vs_plain``: a whole ``ntga poison`` run vs a plain float64 NTGA.

Two programs poison the same images with the same blocks, target set and
settings (fnn surrogate, L_inf, eps and step eps / 4 by default, seed 0),
each in a fresh process run by :func:`benchmarks.kinds.command.measured`, so
both times cover interpreter start, imports, data decoding, compilation,
the work and writing the output:

(a) ``ntga poison --attack ntga``, the library as users run it;
(b) ``python -m benchmarks.plain_ntga``: float64, neural-tangents' kernel,
    K_nn and K_mn whole, one ``eigh`` per block per step with autodiff
    through it (see :mod:`benchmarks.plain_ntga`).

Recorded per program: exit code, wall clock, user and system CPU seconds,
peak RSS and the largest per-pixel change of its output in uint8 levels;
then the speed-up (b's wall clock over a's) and the fraction of pixels where
the two outputs are equal. Config keys: ``data`` (a spec, may start with
``{shared}``), ``limit``, ``block``, ``targets``, ``steps``, ``t``.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import poison_vs_plain
  >>> m = poison_vs_plain.run(configs.load("poison_vs_plain", smoke=True))  # doctest: +SKIP
  >>> m["speedup"] > 0  # doctest: +SKIP
  True
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from benchmarks.kinds.command import measured

KIND = "poison_vs_plain"
GROUP = "speed"
ROOT = Path(__file__).resolve().parents[2]  # where ``-m benchmarks...`` resolves
VARIANTS = ("ntga", "plain")
# Where each program's output lands under the run's folder (ntga poison
# writes train.npz into the folder its --out names).
OUTPUTS = {"ntga": Path("ntga") / "train.npz", "plain": Path("plain.npz")}


def commands(config: dict[str, Any], out: Path) -> dict[str, list[str]]:
  """The argv of (a) ``ntga poison`` and (b) the plain NTGA, writing under ``out``.

  Args:
    config: the config (``data`` may keep its ``{shared}`` prefix).
    out: a folder; (a) writes ``out/ntga/train.npz``, (b) ``out/plain.npz``.

  Returns:
    ``{"ntga": argv, "plain": argv}``, both started with this interpreter.

  Example:
    >>> commands({"data": "digits", "limit": 120, "block": 60, "targets": 40,
    ...           "steps": 2, "t": 64.0}, Path("o"))["ntga"][2:4]
    ['ntga', 'poison']
  """
  spec = resolve_spec(config["data"])
  settings = (f"block_size={config['block']},target_size={config['targets']},"
              f"steps={config['steps']},t={config['t']:g}")
  return {
      "ntga": [sys.executable, "-m", "ntga", "poison", "--attack", "ntga",
               "--data", spec, "--limit", str(config["limit"]),
               "--set", settings, "--out", str(out / OUTPUTS["ntga"].parent)],
      "plain": [sys.executable, "-m", "benchmarks.plain_ntga", "--data", spec,
                "--limit", str(config["limit"]), "--block", str(config["block"]),
                "--targets", str(config["targets"]),
                "--steps", str(config["steps"]), "--t", f"{config['t']:g}",
                "--out", str(out / OUTPUTS["plain"])]}


def _shown(argv: list[str], config: dict[str, Any]) -> str:
  """``argv`` as a command line without machine paths: the interpreter as
  ``python``, the data spec as in the config and the output (last) as OUT."""
  spec = resolve_spec(config["data"])
  words = ["python"] + [config["data"] if w == spec else w for w in argv[1:-1]]
  return shlex.join(words + ["OUT"])


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Runs (a) then (b), each once in a fresh process, and compares their outputs.

  Returns:
    ``runs`` (per variant: the command, exit code, wall clock, CPU seconds,
    peak RSS, ``max_abs_delta_levels``), ``speedup`` (plain / ntga wall
    clock), ``agree_fraction`` (pixels equal in both outputs),
    ``eps_levels`` (the bound both keep) and ``n_images``.

  Raises:
    RuntimeError: a program failed (its last error lines are in the message),
      or the outputs' rows are not the loaded images' rows.
  """
  from ntga import bounds, data  # pylint: disable=g-import-not-at-top
  from ntga.protocol import default_eps  # pylint: disable=g-import-not-at-top

  ds = data.load(resolve_spec(config["data"]), "train", limit=config["limit"])
  clean = ds.x.astype(np.int32)
  runs, outputs = {}, {}
  with tempfile.TemporaryDirectory() as tmp:
    argv = commands(config, Path(tmp))
    for variant in VARIANTS:
      m = measured(argv[variant], cwd=ROOT)
      if m["exit_code"] != 0:
        raise RuntimeError(f"{shlex.join(argv[variant])} failed "
                           f"({m['exit_code']}): {m['stderr'].strip()[-2000:]}")
      with np.load(Path(tmp) / OUTPUTS[variant]) as f:
        if not (np.array_equal(f["index"], ds.index)
                and np.array_equal(f["y"], ds.y)):
          raise RuntimeError(f"{variant}: the output's rows are not the "
                             f"loaded images' rows")
        outputs[variant] = f["x"]
      runs[variant] = {
          "command": _shown(argv[variant], config),
          "exit_code": m["exit_code"], "wall_clock_s": m["wall_clock_s"],
          "user_cpu_s": m["user_cpu_s"], "system_cpu_s": m["system_cpu_s"],
          "peak_rss_mib": m["peak_rss_mib"],
          "max_abs_delta_levels": int(np.abs(outputs[variant].astype(np.int32)
                                             - clean).max())}
  return {"runs": runs,
          "speedup": runs["plain"]["wall_clock_s"] / runs["ntga"]["wall_clock_s"],
          "agree_fraction": float(np.mean(outputs["ntga"] == outputs["plain"])),
          "eps_levels": bounds.eps_levels(default_eps(ds.x.shape[1:])),
          "n_images": int(len(ds.x))}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless both programs ran and exited 0 with positive
  times, the speed-up is the ratio of their wall clocks, both outputs stay
  within eps and the agreement is a fraction."""
  expect = _records.expect
  m = record["metrics"]
  expect(set(m["runs"]) == set(VARIANTS),
         f"poison_vs_plain: runs {sorted(m['runs'])}, expected {list(VARIANTS)}")
  for variant, r in m["runs"].items():
    expect(r["exit_code"] == 0, f"poison_vs_plain: {variant} exited {r['exit_code']}")
    expect(_records.positive(r["wall_clock_s"]),
           f"poison_vs_plain: {variant} wall clock is not positive")
    expect(0 <= r["max_abs_delta_levels"] <= m["eps_levels"],
           f"poison_vs_plain: {variant} changed a pixel by "
           f"{r['max_abs_delta_levels']} levels, more than eps "
           f"({m['eps_levels']})")
  expect(_records.close(m["speedup"], m["runs"]["plain"]["wall_clock_s"]
                        / m["runs"]["ntga"]["wall_clock_s"]),
         "poison_vs_plain: speedup is not plain / ntga wall clock")
  expect(0.0 <= m["agree_fraction"] <= 1.0,
         f"poison_vs_plain: agreement {m['agree_fraction']} is not a fraction")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  c, m = r["config"], r["metrics"]
  names = {"ntga": "(a) `ntga poison`", "plain": "(b) plain float64"}
  rows = [[names[v], f"{x['wall_clock_s']:.1f}", _page.fmt(x["user_cpu_s"], ".1f"),
           _page.fmt(x["system_cpu_s"], ".1f"),
           _page.fmt(x["peak_rss_mib"], ".2f", 1 / 1024),
           f"{x['max_abs_delta_levels']} / {m['eps_levels']}"]
          for v in VARIANTS for x in [m["runs"][v]]]
  lines = [f"{m['n_images']} images of {c['data']}, blocks of {c['block']}, "
           f"{c['targets']} targets, {c['steps']} steps, t = {c['t']:g}.", ""]
  lines += _page.table(["program", "wall clock (s)", "user CPU (s)",
                        "system CPU (s)", "peak RSS (GiB)",
                        "max abs delta (levels)"], rows)
  lines += ["", f"Speed-up (b / a, wall clock): **{m['speedup']:.2f}x**; "
            f"pixels equal in both outputs: {100 * m['agree_fraction']:.2f}%.",
            "", "The two programs:", ""]
  lines += _page.code([m["runs"][v]["command"] for v in VARIANTS])
  return lines, []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, both programs' cost and the speed-up."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
