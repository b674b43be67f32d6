"""Kind ``ntga_block_sweep``: NTGA step time, peak RSS and FLOP rate vs block size.

For every (surrogate, block size) point it starts a fresh Python process
(:func:`main` with ``--point JSON``), so that the peak resident memory it
reports belongs to that point alone. The child process:

1. loads ``block + targets`` training images; the first ``block`` form the
   block, the rest the target set, streamed in chunks of ``target_chunk`` as
   :func:`ntga.pgd.poison` does;
2. compiles the PGD step, ``jax.grad`` of :func:`ntga.pgd._gp_loss` with
   respect to the block's pixels (exactly what ``attack_block`` evaluates per
   step: with the value unused, XLA drops the forward scan over the target
   chunks and keeps only the rematerialised backward one), calls it once to
   warm up, then times it (median of the timed calls);
3. counts the FLOPs of the step's *kernel computations* with XLA's own cost
   analysis. XLA counts the body of a loop once, whatever its trip count, and
   gives the LAPACK ``eigh`` custom call almost nothing, so the whole step's
   count is unusable; instead two loop-free pieces are compiled and counted,
   in the tile shapes the step uses: one square tile of K_nn
   (``k_nn_tile_rows`` a side) forward + backward (``n_k_nn_tiles`` per
   step: :func:`ntga.pgd.block_kernel` computes the upper triangle,
   :func:`ntga.pgd.block_tiles`) and one target chunk's K_mn tile forward +
   backward (``n_chunks`` x ``n_column_tiles`` per step, at most
   ``pgd.COLUMN_TILE`` block images each, as the rematerialised scan runs
   it). The same two compiled pieces are timed, so
   ``achieved_gflops`` is the FLOP rate of the kernel computations
   themselves, not diluted by the GP solve (eigh or Chebyshev) and the GP
   algebra; ``kernel_share`` says what part of the step they take;
4. prints one JSON line with its peak RSS (``getrusage(RUSAGE_SELF)``) and
   the memory XLA planned for the step (arguments, outputs, temporaries). A
   point whose plan would pass ``max_rss_gib`` is not run (status
   ``over_rss_cap_planned``), but its FLOPs and plan are still recorded.

The parent measures the machine's float32 matmul rate (a jitted ``n x n``
matmul, FLOPs from XLA's cost analysis, median of repeats) before and after
the points in the same run, and reports each point's achieved rate as a
fraction of it. It polls each child's resident memory and kills a child that
passes ``max_rss_gib`` (the machine is shared) or runs past
``point_timeout_s``; such points are recorded with that status, never dropped.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import ntga_block_sweep
  >>> metrics = ntga_block_sweep.run(configs.load("ntga_block_sweep", smoke=True))  # doctest: +SKIP
  >>> ntga_block_sweep.plot({"name": "s", "config_hash": "0" * 64,
  ...                        "metrics": metrics}, "/tmp")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from ntga.errors import ConfigError

KIND = "ntga_block_sweep"
GROUP = "speed"
REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
_POLL_S = 0.05
# The child's entry point (``-c`` rather than ``-m``, so that this module is
# imported once, as itself).
_CHILD = ("import sys; from benchmarks.kinds.ntga_block_sweep import main; "
          "sys.exit(main())")
_KEYS = ("data", "surrogates", "blocks", "targets", "target_chunk", "t",
         "repeats", "point_budget_s", "point_timeout_s", "max_rss_gib",
         "matmul_n", "matmul_repeats")


# --------------------------------------------------------------------------
# Timing helpers (child and parent).


def time_calls(fn: Callable[[], Any], repeats: int, budget_s: float
                ) -> list[float]:
  """Calls ``fn`` once to warm up, then times up to ``repeats`` calls.

  Timed calls stop early once they have taken ``budget_s`` in all; at least
  one call is always timed.
  """
  import jax  # pylint: disable=g-import-not-at-top
  jax.block_until_ready(fn())
  times: list[float] = []
  while len(times) < repeats and (not times or sum(times) < budget_s):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return times


def _xla_cost(compiled) -> dict[str, float]:
  """FLOPs and transcendentals of a compiled computation per XLA."""
  cost = compiled.cost_analysis()
  return {"flops": float(cost.get("flops", 0.0)),
          "transcendentals": float(cost.get("transcendentals", 0.0))}


def matmul_rate(n: int, repeats: int) -> dict[str, Any]:
  """The machine's float32 matmul rate: a jitted (n, n) @ (n, n).

  Args:
    n: matrix side.
    repeats: timed calls (after one warm-up); the median counts.

  Returns:
    ``n``, ``flops`` (XLA's count, 2 n^3), ``seconds`` (median),
    ``seconds_all`` and ``gflops``.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  keys = jax.random.split(jax.random.key(0))
  a = jax.random.normal(keys[0], (n, n), jnp.float32)
  b = jax.random.normal(keys[1], (n, n), jnp.float32)
  compiled = jax.jit(jnp.matmul).lower(a, b).compile()
  flops = _xla_cost(compiled)["flops"]
  times = time_calls(lambda: compiled(a, b), repeats, budget_s=math.inf)
  seconds = statistics.median(times)
  return {"n": n, "flops": flops, "seconds": seconds, "seconds_all": times,
          "gflops": flops / seconds / 1e9}


def _planned_mib(compiled) -> float:
  """MiB XLA plans for a compiled call's arguments, outputs and temporaries."""
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes
          + m.temp_size_in_bytes) / MIB


def _peak_rss_mib() -> float:
  """This process's peak resident set size in MiB."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / MIB if sys.platform == "darwin" else peak / 1024


# --------------------------------------------------------------------------
# One point (runs in a child process).


def _point_data(spec: str, block: int, targets: int, chunk: int):
  """Block images/labels and the chunked target set, as float32 numpy."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ntga import data  # pylint: disable=g-import-not-at-top

  ds = data.load(spec, "train", limit=block + targets)
  if len(ds) < block + targets:
    raise ConfigError(f"{spec} has {len(ds)} training images; block {block} + "
                      f"targets {targets} need more")
  x = ds.x.astype(np.float32) / 255.0
  y = np.eye(ds.num_classes, dtype=np.float32)[ds.y]
  n_chunks = targets // chunk
  tx = x[block:].reshape((n_chunks, chunk) + x.shape[1:])
  ty = y[block:].reshape(n_chunks, chunk, -1)
  return x[:block], y[:block], tx, ty, ds.num_classes


def measure_point(point: dict[str, Any]) -> dict[str, Any]:
  """Measures one (surrogate, block) point in this process.

  Args:
    point: ``spec`` (a resolved data spec), ``surrogate``, ``block``,
      ``targets``, ``target_chunk``, ``t``, ``repeats``, ``budget_s`` and
      ``max_rss_mib``. If the memory XLA plans for the step (arguments,
      outputs, temporaries) plus this process's resident memory would pass
      ``max_rss_mib``, nothing is run: the FLOP counts and the plan are
      returned with status ``over_rss_cap_planned``.

  Returns:
    Seconds per PGD step (median, all timed calls, compile time), the kernel
    computations' FLOPs per step (XLA) and seconds (timed pieces), their
    achieved GFLOP/s, XLA's planned memory and baseline / peak RSS in MiB.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ntga import pgd, surrogates  # pylint: disable=g-import-not-at-top

  block, chunk = point["block"], point["target_chunk"]
  xb, yb, tx, ty, classes = _point_data(point["spec"], block, point["targets"],
                                        chunk)
  xb, yb, tx, ty = (jnp.asarray(a) for a in (xb, yb, tx, ty))
  n_chunks = tx.shape[0]
  tw = jnp.ones(tx.shape[:2], jnp.float32)
  mask = jnp.ones(block, jnp.float32)
  kernel_fn = surrogates.get(point["surrogate"], classes)
  baseline = _peak_rss_mib()

  # The PGD step: the gradient attack_block takes, once per step.
  loss = lambda x: pgd._gp_loss(x, yb, mask, tx, ty, tw, kernel_fn=kernel_fn,
                                   t=point["t"], diag_reg=1e-4, loss="ce")
  start = time.perf_counter()
  step = jax.jit(jax.grad(loss)).lower(xb).compile()
  compile_s = time.perf_counter() - start

  # The kernel computations, as two loop-free pieces XLA can count: one
  # square tile of K_nn forward + backward (the step computes n_nn of them,
  # K_nn's upper triangle, pgd.block_kernel), and one target chunk's K_mn
  # tile forward + backward (n_chunks x n_tiles of them, pgd.tiled_kernel).
  n_nn, rows = pgd.block_tiles(block, chunk)
  n_tiles, cols = pgd.slab_shape(block, pgd.COLUMN_TILE)
  keys = jax.random.split(jax.random.key(0))
  ct_nn = jax.random.normal(keys[0], (rows, rows), jnp.float32)
  ct_mn = jax.random.normal(keys[1], (chunk, cols), jnp.float32)
  cx = tx[0]
  def pieces(kfn):
    nn = jax.jit(jax.grad(lambda x: jnp.vdot(kfn(x[:rows], x[-rows:]),
                                             ct_nn))).lower(xb).compile()
    mn = jax.jit(jax.grad(lambda x: jnp.vdot(kfn(cx, x[:cols]), ct_mn))
                 ).lower(xb).compile()
    return nn, mn

  nn, mn = pieces(kernel_fn)
  # Counted in one piece: the cnn kernel's sub-tiles are a loop, whose body
  # XLA counts once. Same computation, same FLOPs.
  cost_nn, cost_mn = (_xla_cost(c) for c in pieces(
      surrogates.get(point["surrogate"], classes, sub_tiles=False)))
  out = {
      "compile_seconds": compile_s,
      "flops_per_step": (n_nn * cost_nn["flops"]
                         + n_chunks * n_tiles * cost_mn["flops"]),
      "transcendentals_per_step": (
          n_nn * cost_nn["transcendentals"]
          + n_chunks * n_tiles * cost_mn["transcendentals"]),
      "flops_k_nn_tile": cost_nn["flops"], "flops_k_mn_chunk": cost_mn["flops"],
      "n_k_nn_tiles": n_nn, "k_nn_tile_rows": rows, "n_chunks": n_chunks,
      "n_column_tiles": n_tiles, "tile_columns": cols,
      "xla_planned_mib": _planned_mib(step),
      "baseline_rss_mib": baseline,
  }
  if baseline + out["xla_planned_mib"] > point["max_rss_mib"]:
    return {"status": "over_rss_cap_planned", **out,
            "peak_rss_mib": _peak_rss_mib()}

  repeats, budget = point["repeats"], point["budget_s"]
  step_times = time_calls(lambda: step(xb), repeats, budget)
  nn_times = time_calls(lambda: nn(xb), repeats, budget)
  mn_times = time_calls(lambda: mn(xb), repeats, budget)
  seconds = statistics.median(step_times)
  kernel_s = (n_nn * statistics.median(nn_times)
              + n_chunks * n_tiles * statistics.median(mn_times))
  return {
      "seconds_per_step": seconds, "seconds_per_step_all": step_times, **out,
      "kernel_seconds_per_step": kernel_s,
      "kernel_seconds_k_nn_tile_all": nn_times,
      "kernel_seconds_k_mn_chunk_all": mn_times,
      "kernel_share": kernel_s / seconds,
      "achieved_gflops": out["flops_per_step"] / kernel_s / 1e9,
      "peak_rss_mib": _peak_rss_mib(),
  }


# --------------------------------------------------------------------------
# The parent: one child process per point.


def _rss_mib(pid: int) -> tuple[float, float] | None:
  """(current, peak) resident memory of process ``pid`` in MiB, from /proc."""
  try:
    text = Path(f"/proc/{pid}/status").read_text()
  except OSError:
    return None
  fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
  kib = lambda k: float(fields.get(k, "0 kB").split()[0])
  return kib("VmRSS") / 1024, kib("VmHWM") / 1024


def run_child(child: str, point: dict[str, Any], timeout_s: float,
              max_rss_mib: float) -> dict[str, Any]:
  """Measures one point in a fresh process under a time/memory cap.

  Args:
    child: Python source run with ``-c`` and ``--point JSON`` (a kind's
      ``main``, which prints the point's result as a last JSON line).
    point: the point's settings.
    timeout_s: wall-clock cap.
    max_rss_mib: resident-memory cap (polled from /proc).

  Returns:
    The child's JSON (``status`` defaults to ``ok``), or the cap, signal or
    exit that stopped it with the tail of its stderr.
  """
  cmd = [sys.executable, "-c", child, "--point", json.dumps(point)]
  with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO)
    status, seen_peak = None, 0.0
    try:
      while proc.poll() is None:
        rss = _rss_mib(proc.pid)
        if rss is not None:
          seen_peak = max(seen_peak, *rss)
        if seen_peak > max_rss_mib:
          status = "rss_cap_exceeded"
        elif time.perf_counter() - start > timeout_s:
          status = "timeout"
        if status:
          proc.kill()
          proc.wait()
          break
        time.sleep(_POLL_S)
    finally:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
    wall = time.perf_counter() - start
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
  if status is None and proc.returncode == 0:
    return {"status": "ok", "point_wall_s": wall,  # the child may override
            **json.loads(stdout.strip().splitlines()[-1])}
  if status is None:
    code = proc.returncode
    status = (f"killed by {signal.Signals(-code).name}" if code < 0
              else f"failed (exit {code})")
  return {"status": status, "point_wall_s": wall,
          "peak_rss_mib": seen_peak or None,
          "error_tail": stderr.strip().splitlines()[-3:]}


def _check(config: dict[str, Any]) -> None:
  missing = [k for k in _KEYS if k not in config]
  if missing:
    raise ConfigError(f"ntga_block_sweep config lacks {', '.join(missing)}")
  for s in config["surrogates"]:
    if s not in config["targets"]:
      raise ConfigError(f"ntga_block_sweep: no target-set size for surrogate {s!r}")
    if config["targets"][s] % config["target_chunk"]:
      raise ConfigError(f"ntga_block_sweep: targets[{s!r}] = {config['targets'][s]} "
                        f"is not a multiple of target_chunk {config['target_chunk']}")
  if min(config["blocks"]) < 2 or config["repeats"] < 1:
    raise ConfigError("ntga_block_sweep: blocks must be >= 2 and repeats >= 1")
  if not Path("/proc/self/status").exists():
    raise ConfigError("ntga_block_sweep polls /proc/PID/status for its memory "
                      "cap, which this system lacks")


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Sweeps NTGA's block size for each surrogate (see the module docstring).

  Config keys: ``data``, ``surrogates``, ``blocks``, ``targets`` (per
  surrogate), ``target_chunk``, ``t``, ``repeats`` (timed calls after a
  warm-up), ``point_budget_s`` (stop timing a piece once its timed calls took
  this long; at least one is timed), ``point_timeout_s``, ``max_rss_gib``,
  ``matmul_n``, ``matmul_repeats``.

  Returns:
    ``matmul`` (the machine's rate before and after the points, and their
    median ``gflops``), ``loadavg_before`` / ``loadavg_after`` (1, 5, 15 min)
    and ``points``: one entry per (surrogate, block) with ``status`` (``ok``,
    ``over_rss_cap_planned``, ``rss_cap_exceeded``, ``timeout``,
    ``killed by SIG...``, ``failed (exit N)``), ``seconds_per_step``,
    ``peak_rss_mib``, ``flops_per_step``, ``flops_source``,
    ``achieved_gflops`` (kernel FLOPs / kernel seconds),
    ``fraction_of_matmul``, ``step_gflops`` (kernel FLOPs / the whole step's
    seconds) and the details of :func:`measure_point`.
  """
  _check(config)
  spec = resolve_spec(config["data"])
  load_before = list(os.getloadavg())
  before = matmul_rate(config["matmul_n"], config["matmul_repeats"])
  points = []
  for surrogate in config["surrogates"]:
    for block in config["blocks"]:
      point = {"spec": spec, "surrogate": surrogate, "block": block,
               "targets": config["targets"][surrogate],
               "target_chunk": config["target_chunk"], "t": config["t"],
               "repeats": config["repeats"], "budget_s": config["point_budget_s"],
               "max_rss_mib": config["max_rss_gib"] * 1024}
      load = os.getloadavg()[0]
      res = run_child(_CHILD, point, config["point_timeout_s"],
                      point["max_rss_mib"])
      points.append({"surrogate": surrogate, "block": block,
                     "targets": point["targets"], "loadavg_1m": load, **res})
  after = matmul_rate(config["matmul_n"], config["matmul_repeats"])
  matmul_s = statistics.median(before["seconds_all"] + after["seconds_all"])
  gflops = before["flops"] / matmul_s / 1e9
  for p in points:
    p["flops_source"] = ("xla_cost_analysis: n_k_nn_tiles x (K_nn tile "
                         "fwd+bwd) + n_chunks x n_column_tiles x (K_mn "
                         "chunk tile fwd+bwd)")
    if p["status"] == "ok":
      p["fraction_of_matmul"] = p["achieved_gflops"] / gflops
      p["step_gflops"] = p["flops_per_step"] / p["seconds_per_step"] / 1e9
  return {"matmul": {"n": config["matmul_n"], "gflops": gflops,
                     "before": before, "after": after},
          "loadavg_before": load_before, "loadavg_after": list(os.getloadavg()),
          "points": points}


# --------------------------------------------------------------------------
# Plots.


def _plot_memory_plan(ax, points: list[dict[str, Any]], surrogate: str,
                      color: str) -> None:
  """XLA's plan plus the baseline RSS, dotted; crosses where it was not run."""
  planned = [p for p in points if p.get("xla_planned_mib")]
  value = lambda p: p["baseline_rss_mib"] + p["xla_planned_mib"]
  ax.plot([p["block"] for p in planned], [value(p) for p in planned], ":",
          color=color, label=f"{surrogate}: baseline + XLA plan")
  skipped = [p for p in planned if p["status"] == "over_rss_cap_planned"]
  if skipped:
    ax.plot([p["block"] for p in skipped], [value(p) for p in skipped], "x",
            color=color, markersize=9,
            label=f"{surrogate}: plan over the cap, not run")


PANELS = ("seconds", "rss", "flops")


def _draw_panel(record: dict[str, Any], panel: str, png: Path) -> None:
  """One of the figures of :func:`plot` (``panel`` in :data:`PANELS`)."""
  m = record["metrics"]
  points = m["points"]
  surrogates = list(dict.fromkeys(p["surrogate"] for p in points))
  key, ylabel, title, logy = {
      "seconds": ("seconds_per_step", "seconds per PGD step (log)",
                  "NTGA: seconds per PGD step per block", True),
      "rss": ("peak_rss_mib", "peak RSS (MiB, log)",
              "NTGA: peak resident memory per point", True),
      "flops": ("fraction_of_matmul",
                f"kernel GFLOP/s / matmul GFLOP/s ({m['matmul']['gflops']:.1f})",
                "NTGA kernels: fraction of the machine's matmul rate", False),
  }[panel]
  fig = _page.figure((6, 3.8))
  ax = fig.subplots()
  for i, s in enumerate(surrogates):
    color = f"C{i}"
    mine = [p for p in points if p["surrogate"] == s]
    ok = [p for p in mine if p["status"] == "ok"]
    targets = mine[0]["targets"]
    ax.plot([p["block"] for p in ok], [p[key] for p in ok], "o-", color=color,
            label=f"{s} ({targets} targets)")
    if panel == "rss":
      _plot_memory_plan(ax, mine, s, color)
    for status in dict.fromkeys(p["status"] for p in mine):
      bad = [p for p in mine if p["status"] == status
             and status not in ("ok", "over_rss_cap_planned") and p.get(key)]
      if bad:
        ax.plot([p["block"] for p in bad], [p[key] for p in bad], "x",
                color=color, markersize=9, label=f"{s}: {status}")
  _page.finish_block_axes(fig, ax, record, png, panel=panel, ylabel=ylabel,
                          title=title, logy=logy)


def plots(record: dict[str, Any]) -> list[_page.Plot]:
  """The record's three figures, named ``<name>-<hash8>_<panel>.png``."""
  return _page.panel_plots(record, PANELS, _draw_panel)


def plot(record: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
  """Draws seconds/step, peak RSS and fraction of matmul rate vs block size.

  Args:
    record: an ``ntga_block_sweep`` record (``name``, ``config_hash``,
      ``metrics`` and, for the RSS cap, ``config`` are used).
    out_dir: folder for the PNGs (must exist).

  Returns:
    The three PNG paths (see :func:`plots`), each written atomically. The
    RSS plot also draws XLA's planned memory (dotted) and marks with crosses
    the points not run because that plan passed the cap, and those killed
    (at the memory they had reached).
  """
  paths = []
  for p in plots(record):
    p.draw(Path(out_dir) / p.name)
    paths.append(Path(out_dir) / p.name)
  return paths


# --------------------------------------------------------------------------
# Check and render.


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless the sweep's numbers hang together.

  Every (surrogate, block) point of the config is there in order with its
  surrogate's target count; XLA counted 2 n^3 FLOPs for the matmul; every
  point that ran (``ok``) has finite positive time, memory and FLOP figures,
  a FLOP count that is the sum of its pieces and at least a block's Gram
  matrix, a rate below 1.5x the matmul rate and a peak RSS above its
  baseline; a surrogate's FLOPs per step grow with the block.
  """
  expect = _records.expect
  m, c = record["metrics"], record["config"]
  expect(0 < m["matmul"]["gflops"] < 1e5, "ntga_block_sweep: implausible matmul rate")
  expect(m["matmul"]["before"]["flops"] == 2 * c["matmul_n"] ** 3,
         "ntga_block_sweep: matmul FLOPs are not 2 n^3")
  points = m["points"]
  expect([(p["surrogate"], p["block"]) for p in points]
         == [(s, b) for s in c["surrogates"] for b in c["blocks"]],
         "ntga_block_sweep: points differ from the config's surrogates x blocks")
  for p in points:
    what = f"ntga_block_sweep {p['surrogate']} block {p['block']}"
    expect(p["targets"] == c["targets"][p["surrogate"]], f"{what}: target count")
    if p["status"] != "ok":
      continue
    for key in ("seconds_per_step", "peak_rss_mib", "flops_per_step",
                "achieved_gflops", "kernel_seconds_per_step", "xla_planned_mib"):
      expect(_records.positive(p[key]), f"{what}: {key} = {p[key]}")
    expect(0 < p["fraction_of_matmul"] < 1.5, f"{what}: fraction of matmul rate")
    expect(p["peak_rss_mib"] >= p["baseline_rss_mib"], f"{what}: peak below baseline")
    expect(_records.close(p["flops_per_step"],
                          p["n_k_nn_tiles"] * p["flops_k_nn_tile"]
                          + p["n_chunks"] * p["n_column_tiles"]
                          * p["flops_k_mn_chunk"]),
           f"{what}: FLOPs per step are not the pieces' sum")
    # K_nn's upper triangle needs at least half the B x B x 64 Gram matrix
    # (64 pixels or more).
    expect(p["n_k_nn_tiles"] * p["flops_k_nn_tile"] >= p["block"] ** 2 * 64,
           f"{what}: too few K_nn FLOPs")
  for s in c["surrogates"]:
    flops = [p["flops_per_step"] for p in points
             if p["surrogate"] == s and p.get("flops_per_step")]
    expect(all(a < b for a, b in zip(flops, flops[1:])),
           f"ntga_block_sweep {s}: FLOPs do not grow with the block")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  m = r["metrics"]
  fmt = _page.fmt
  rows = []
  for p in m["points"]:
    ok = p.get("status", "ok") == "ok"
    rss = fmt(p.get("peak_rss_mib"), ".0f")
    rows.append([p["surrogate"], str(p["block"]), str(p["targets"]),
                 p.get("status", "ok"), fmt(p.get("seconds_per_step"), ".3g"),
                 rss if ok or rss == "-" else f">= {rss}",
                 fmt(p.get("flops_per_step"), ".3g", 1e-9),
                 fmt(p.get("achieved_gflops"), ".3g"),
                 fmt(p.get("fraction_of_matmul"), ".1f", 100.0),
                 fmt(p.get("kernel_share"), ".0f", 100.0),
                 fmt(p.get("loadavg_1m"), ".1f")])
  mm = m["matmul"]
  lines = _page.table(["surrogate", "block", "targets", "status", "s / PGD step",
                       "peak RSS (MiB)", "kernel GFLOP / step", "kernel GFLOP/s",
                       "% of matmul rate", "kernels' % of the step",
                       "load (1 min)"], rows, {1, 2, 4, 5, 6, 7, 8, 9, 10})
  lines += ["", f"Matmul rate of this machine, measured in the same run (a jitted "
            f"{mm.get('n', '?')} x {mm.get('n', '?')} float32 matmul, before and "
            f"after the points): {mm['gflops']:.3g} GFLOP/s."]
  sources = sorted({str(p["flops_source"]) for p in m["points"]
                    if p.get("flops_source")})
  if sources:
    lines += ["", "FLOP counts: " + "; ".join(sources) + "."]
  if m.get("loadavg_before") is not None:
    lines += ["", _page.load_text(m["loadavg_before"], m["loadavg_after"])]
  figures = plots(r)
  lines += [""] + [p.link(p.name[:-len(".png")]) for p in figures]
  return lines, figures


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, the points and three figures."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)


def point_main(prog: str, description: str,
               measure: Callable[[dict[str, Any]], dict[str, Any]],
               argv: Sequence[str] | None = None) -> int:
  """A sweep's child entry point: ``--point JSON`` measures one point, prints JSON.

  Args:
    prog: the program name in the usage line.
    description: one line for ``--help``.
    measure: maps a point's settings to its JSON-able result.
    argv: the arguments (default ``sys.argv[1:]``).

  Returns:
    0 (the exit status).
  """
  p = argparse.ArgumentParser(prog=prog, description=description)
  p.add_argument("--point", required=True,
                 help="JSON of one point (see measure_point)")
  args = p.parse_args(sys.argv[1:] if argv is None else argv)
  print(json.dumps(measure(json.loads(args.point))))
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  """Child entry point: ``--point JSON`` measures one point, prints JSON."""
  return point_main("ntga_block_sweep point", __doc__.split("\n")[0],
                    measure_point, argv)
