"""NTGA cost vs block size: seconds per PGD step, peak RSS, achieved FLOP rate.

The runner of config kind ``ntga_block_sweep`` (``benchmarks/configs/
ntga_block_sweep.py``). For every (surrogate, block size) point it starts a
fresh Python process (``python -m benchmarks._block_sweep --point JSON``), so
that the peak resident memory it reports belongs to that point alone. The child
process:

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
   count is unusable; instead two loop-free pieces are compiled and counted:
   K_nn's forward + backward (once per step) and one target chunk's K_mn
   forward + backward (``n_chunks`` times per step, as the rematerialised scan
   runs it). The same two compiled pieces are timed, so ``achieved_gflops`` is
   the FLOP rate of the kernel computations themselves, not diluted by the
   eigendecomposition and the GP algebra; ``kernel_share`` says what part of
   the step they take;
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
  >>> from benchmarks import _block_sweep, configs
  >>> metrics = _block_sweep.run(configs.load("ntga_block_sweep", smoke=True))  # doctest: +SKIP
  >>> _block_sweep.plot({"name": "ntga_block_sweep", "metrics": metrics}, "/tmp")  # doctest: +SKIP
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

from benchmarks.configs import resolve_spec
from ntga.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
_POLL_S = 0.05
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

  # The kernel computations, as two loop-free pieces XLA can count: one slab
  # of K_nn's rows forward + backward (the step builds K_nn in n_slabs such
  # slabs, pgd.block_kernel), and one target chunk's K_mn forward +
  # backward.
  n_slabs, rows = pgd.slab_shape(block, chunk)
  keys = jax.random.split(jax.random.key(0))
  ct_nn = jax.random.normal(keys[0], (rows, block), jnp.float32)
  ct_mn = jax.random.normal(keys[1], (chunk, block), jnp.float32)
  cx = tx[0]
  nn = jax.jit(jax.grad(lambda x: jnp.vdot(kernel_fn(x[:rows], x), ct_nn))
               ).lower(xb).compile()
  mn = jax.jit(jax.grad(lambda x: jnp.vdot(kernel_fn(cx, x), ct_mn))
               ).lower(xb).compile()
  cost_nn, cost_mn = _xla_cost(nn), _xla_cost(mn)
  out = {
      "compile_seconds": compile_s,
      "flops_per_step": n_slabs * cost_nn["flops"] + n_chunks * cost_mn["flops"],
      "transcendentals_per_step": (n_slabs * cost_nn["transcendentals"]
                                   + n_chunks * cost_mn["transcendentals"]),
      "flops_k_nn_slab": cost_nn["flops"], "flops_k_mn_chunk": cost_mn["flops"],
      "n_slabs": n_slabs, "slab_rows": rows, "n_chunks": n_chunks, "xla_planned_mib": _planned_mib(step),
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
  kernel_s = (n_slabs * statistics.median(nn_times)
              + n_chunks * statistics.median(mn_times))
  return {
      "seconds_per_step": seconds, "seconds_per_step_all": step_times, **out,
      "kernel_seconds_per_step": kernel_s,
      "kernel_seconds_k_nn_slab_all": nn_times,
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


def _run_child(point: dict[str, Any], timeout_s: float, max_rss_mib: float
               ) -> dict[str, Any]:
  """Runs :func:`measure_point` in a fresh process under a time/memory cap."""
  cmd = [sys.executable, "-m", "benchmarks._block_sweep", "--point",
         json.dumps(point)]
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
      res = _run_child(point, config["point_timeout_s"], point["max_rss_mib"])
      points.append({"surrogate": surrogate, "block": block,
                     "targets": point["targets"], "loadavg_1m": load, **res})
  after = matmul_rate(config["matmul_n"], config["matmul_repeats"])
  matmul_s = statistics.median(before["seconds_all"] + after["seconds_all"])
  gflops = before["flops"] / matmul_s / 1e9
  for p in points:
    p["flops_source"] = ("xla_cost_analysis: n_slabs x (K_nn slab fwd+bwd) + "
                         "n_chunks x (K_mn chunk fwd+bwd)")
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


def plot(record: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
  """Draws seconds/step, peak RSS and fraction of matmul rate vs block size.

  Args:
    record: an ``ntga_block_sweep`` record (``name`` and ``metrics`` are used).
    out_dir: folder for the PNGs (must exist).

  Returns:
    The three PNG paths ``<name>_seconds.png``, ``<name>_rss.png`` and
    ``<name>_flops.png``, each written atomically. The RSS plot also draws
    XLA's planned memory (dotted) and marks with crosses the points not run
    because that plan passed the cap, and those killed (at the memory they
    had reached).
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top
  from ntga import io  # pylint: disable=g-import-not-at-top

  m = record["metrics"]
  points = m["points"]
  surrogates = list(dict.fromkeys(p["surrogate"] for p in points))
  panels = [
      ("seconds", "seconds_per_step", "seconds per PGD step (log)",
       "NTGA: seconds per PGD step per block", True),
      ("rss", "peak_rss_mib", "peak RSS (MiB, log)",
       "NTGA: peak resident memory per point", True),
      ("flops", "fraction_of_matmul",
       f"kernel GFLOP/s / matmul GFLOP/s ({m['matmul']['gflops']:.1f})",
       "NTGA kernels: fraction of the machine's matmul rate", False),
  ]
  paths = []
  for suffix, key, ylabel, title, logy in panels:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, s in enumerate(surrogates):
      color = f"C{i}"
      mine = [p for p in points if p["surrogate"] == s]
      ok = [p for p in mine if p["status"] == "ok"]
      targets = mine[0]["targets"]
      ax.plot([p["block"] for p in ok], [p[key] for p in ok], "o-", color=color,
              label=f"{s} ({targets} targets)")
      if suffix == "rss":
        _plot_memory_plan(ax, mine, s, color)
      for status in dict.fromkeys(p["status"] for p in mine):
        bad = [p for p in mine if p["status"] == status
               and status not in ("ok", "over_rss_cap_planned") and p.get(key)]
        if bad:
          ax.plot([p["block"] for p in bad], [p[key] for p in bad], "x",
                  color=color, markersize=9, label=f"{s}: {status}")
    cap = record.get("config", {}).get("max_rss_gib")
    if suffix == "rss" and cap:
      ax.axhline(cap * 1024, color="grey", linestyle="--", linewidth=1,
                 label=f"RSS cap ({cap:g} GiB)")
    ax.set_xscale("log", base=2)
    blocks = sorted({p["block"] for p in points})
    ax.set_xticks(blocks)
    ax.set_xticklabels([str(b) for b in blocks])
    if logy:
      ax.set_yscale("log")
      plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
      ax.yaxis.set_major_locator(ticker.LogLocator(10, subs=(1.0, 2.0, 5.0)))
      ax.yaxis.set_major_formatter(plain)
      ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    else:
      ax.set_ylim(bottom=0)
    ax.set_xlabel("block size (training examples)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(out_dir) / f"{record['name']}_{suffix}.png"
    try:
      io.atomic_write(path, lambda f, fig=fig: fig.savefig(
          f, format="png", dpi=100, metadata={"Software": None}))
    finally:
      plt.close(fig)
    paths.append(path)
  return paths


def main(argv: Sequence[str] | None = None) -> int:
  """Child entry point: ``--point JSON`` measures one point, prints JSON."""
  p = argparse.ArgumentParser(prog="python -m benchmarks._block_sweep",
                              description=__doc__.split("\n")[0])
  p.add_argument("--point", required=True,
                 help="JSON of one point (see measure_point)")
  args = p.parse_args(argv)
  print(json.dumps(measure_point(json.loads(args.point))))
  return 0


if __name__ == "__main__":
  sys.exit(main())
