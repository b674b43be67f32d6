"""Kind ``ntga_predictor_sweep``: NTGA step time and memory per GP predictor vs block size.

NTGA's GP applies phi(K_nn) to the block's labels either from an eigh of
K_nn (``predictor="eigh"``, O(B^3)) or with a Chebyshev series
(``"chebyshev"``, O(B^2) per term; ``ntga.predict``). For every (surrogate,
block size, predictor) point this kind starts a fresh Python process
(:func:`main` with ``--point JSON``), so the peak resident memory it reports
belongs to that point alone. The child:

1. loads ``block + targets`` training images (the first ``block`` form the
   block, the rest the target set in chunks of ``target_chunk``), as
   :mod:`benchmarks.kinds.ntga_block_sweep` does;
2. compiles the PGD step, ``jax.grad`` of :func:`ntga.pgd._gp_loss` with
   respect to the block's pixels with the point's predictor, and records the
   memory XLA plans for it; a point whose plan plus the process's baseline
   passes ``max_rss_gib`` is not run (``over_rss_cap_planned``);
3. calls the step once to warm up, times up to ``repeats`` more calls (fewer
   once they took ``point_budget_s``; the median counts) and saves the
   gradient of the first call for the parent;
4. for the Chebyshev series, counts the terms it takes on the clean block's
   K_nn (:func:`ntga.predict.chebyshev_terms`).

The parent polls each child's memory and kills one that passes
``max_rss_gib`` or runs past ``point_timeout_s`` (recorded with that status,
never dropped), and reports for every predictor the cosine between its
gradient and the eigh path's at the same (surrogate, block) when both ran.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import ntga_predictor_sweep
  >>> m = ntga_predictor_sweep.run(configs.load("ntga_predictor_sweep", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from benchmarks.kinds import ntga_block_sweep as block_sweep
from ntga.errors import ConfigError

KIND = "ntga_predictor_sweep"
GROUP = "speed"
_CHILD = ("import sys; from benchmarks.kinds.ntga_predictor_sweep import main; "
          "sys.exit(main())")
_KEYS = ("data", "blocks", "targets", "predictors", "target_chunk", "t",
         "repeats", "point_budget_s", "point_timeout_s", "max_rss_gib")


# --------------------------------------------------------------------------
# One point (runs in a child process).


def measure_point(point: dict[str, Any]) -> dict[str, Any]:
  """Measures one (surrogate, block, predictor) point in this process.

  Args:
    point: ``spec`` (a resolved data spec), ``surrogate``, ``block``,
      ``targets``, ``target_chunk``, ``t``, ``predictor``, ``repeats``,
      ``budget_s``, ``max_rss_mib`` and ``grad_path`` (where the step's
      gradient is saved as ``.npy``; ``None`` saves nothing).

  Returns:
    ``status`` (``ok`` or ``over_rss_cap_planned``), ``seconds_per_step``
    (median) and all timed calls, ``compile_seconds``, ``xla_planned_mib``,
    ``baseline_rss_mib``, ``peak_rss_mib`` (taken after the timed steps,
    before the term count compiles anything) and, for the Chebyshev series,
    ``chebyshev_terms``.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ntga import pgd, predict, surrogates  # pylint: disable=g-import-not-at-top

  block, chunk = point["block"], point["target_chunk"]
  xb, yb, tx, ty, classes = block_sweep._point_data(  # pylint: disable=protected-access
      point["spec"], block, point["targets"], chunk)
  xb, yb, tx, ty = (jnp.asarray(a) for a in (xb, yb, tx, ty))
  tw = jnp.ones(tx.shape[:2], jnp.float32)
  mask = jnp.ones(block, jnp.float32)
  kernel_fn = surrogates.get(point["surrogate"], classes)
  baseline = block_sweep._peak_rss_mib()  # pylint: disable=protected-access

  loss = lambda x: pgd._gp_loss(  # pylint: disable=protected-access
      x, yb, mask, tx, ty, tw, kernel_fn=kernel_fn, t=point["t"],
      diag_reg=1e-4, loss="ce", predictor=point["predictor"])
  start = time.perf_counter()
  step = jax.jit(jax.grad(loss)).lower(xb).compile()
  out = {"compile_seconds": time.perf_counter() - start,
         "xla_planned_mib": block_sweep._planned_mib(step),  # pylint: disable=protected-access
         "baseline_rss_mib": baseline}
  if baseline + out["xla_planned_mib"] > point["max_rss_mib"]:
    return {"status": "over_rss_cap_planned", **out,
            "peak_rss_mib": block_sweep._peak_rss_mib()}  # pylint: disable=protected-access

  times = block_sweep.time_calls(lambda: step(xb), point["repeats"],
                                 point["budget_s"])
  grad = np.asarray(step(xb))
  if point.get("grad_path"):
    np.save(point["grad_path"], grad)
  result = {"status": "ok", "seconds_per_step": statistics.median(times),
            "seconds_per_step_all": times, **out,
            "finite": bool(np.isfinite(grad).all()),
            # The step's peak, before anything else is compiled.
            "peak_rss_mib": block_sweep._peak_rss_mib()}  # pylint: disable=protected-access
  if point["predictor"] == "chebyshev":
    k_nn = jax.jit(lambda x: pgd.block_kernel(kernel_fn, x, chunk=chunk))(xb)
    result["chebyshev_terms"] = int(predict.chebyshev_terms(
        k_nn, classes, point["t"]))
  return result


# --------------------------------------------------------------------------
# The parent: one child process per point.


def _check(config: dict[str, Any]) -> None:
  missing = [k for k in _KEYS if k not in config]
  if missing:
    raise ConfigError(f"{KIND} config lacks {', '.join(missing)}")
  from ntga import predict  # pylint: disable=g-import-not-at-top
  bad = [p for p in config["predictors"] if p not in predict.PREDICTORS]
  if bad or "eigh" not in config["predictors"]:
    raise ConfigError(f"{KIND}: predictors must include 'eigh' (the reference) "
                      f"and be among {', '.join(predict.PREDICTORS)}; got "
                      f"{config['predictors']}")
  for s, blocks in config["blocks"].items():
    if s not in config["targets"]:
      raise ConfigError(f"{KIND}: no target-set size for surrogate {s!r}")
    if config["targets"][s] % config["target_chunk"]:
      raise ConfigError(f"{KIND}: targets[{s!r}] = {config['targets'][s]} is "
                        f"not a multiple of target_chunk {config['target_chunk']}")
    if min(blocks) < 2:
      raise ConfigError(f"{KIND}: blocks must be >= 2")
  if config["repeats"] < 1:
    raise ConfigError(f"{KIND}: repeats must be >= 1")
  if not Path("/proc/self/status").exists():
    raise ConfigError(f"{KIND} polls /proc/PID/status for its memory cap, "
                      "which this system lacks")


def _cosine(a, b) -> float:
  import numpy as np  # pylint: disable=g-import-not-at-top
  a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
  return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300))


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Sweeps block sizes and predictors (see the module docstring).

  Config keys: ``data``, ``blocks`` (surrogate -> block sizes), ``targets``
  (surrogate -> target-set size), ``predictors`` (``eigh`` first counts as
  the reference), ``target_chunk``, ``t``, ``repeats``, ``point_budget_s``,
  ``point_timeout_s``, ``max_rss_gib``.

  Returns:
    ``loadavg_before`` / ``loadavg_after`` and ``points``: one per
    (surrogate, block, predictor) in config order, with ``status`` (``ok``,
    ``over_rss_cap_planned``, ``rss_cap_exceeded``, ``timeout``,
    ``killed by SIG...``, ``failed (exit N)``), the figures of
    :func:`measure_point` and ``gradient_cosine_vs_eigh`` (``None`` where
    either gradient is missing).
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  _check(config)
  spec = resolve_spec(config["data"])
  load_before = list(os.getloadavg())
  cap_mib = config["max_rss_gib"] * 1024
  points = []
  with tempfile.TemporaryDirectory() as tmp:
    for surrogate, blocks in config["blocks"].items():
      for block in blocks:
        grads = {}
        for predictor in config["predictors"]:
          path = Path(tmp) / f"{surrogate}_{block}_{predictor}.npy"
          point = {"spec": spec, "surrogate": surrogate, "block": block,
                   "targets": config["targets"][surrogate],
                   "target_chunk": config["target_chunk"], "t": config["t"],
                   "predictor": predictor, "repeats": config["repeats"],
                   "budget_s": config["point_budget_s"],
                   "max_rss_mib": cap_mib, "grad_path": str(path)}
          load = os.getloadavg()[0]
          res = block_sweep.run_child(_CHILD, point, config["point_timeout_s"],
                                      cap_mib)
          if res["status"] == "ok":
            grads[predictor] = np.load(path)
            path.unlink()
          points.append({"surrogate": surrogate, "block": block,
                         "targets": point["targets"], "predictor": predictor,
                         "loadavg_1m": load, **res})
        for p in points[-len(config["predictors"]):]:
          both = "eigh" in grads and p["predictor"] in grads
          p["gradient_cosine_vs_eigh"] = (
              _cosine(grads[p["predictor"]], grads["eigh"]) if both else None)
  return {"loadavg_before": load_before, "loadavg_after": list(os.getloadavg()),
          "points": points}


# --------------------------------------------------------------------------
# Plots, check and render.

PANELS = ("seconds", "rss")


def _draw_panel(record: dict[str, Any], panel: str, png: Path) -> None:
  """Seconds per step or peak RSS vs block size, one line per (surrogate,
  predictor); crosses mark points that did not finish (at what they reached)."""
  points = record["metrics"]["points"]
  key, ylabel, title = {
      "seconds": ("seconds_per_step", "seconds per PGD step (log)",
                  "NTGA: seconds per PGD step per predictor"),
      "rss": ("peak_rss_mib", "peak RSS (MiB, log)",
              "NTGA: peak resident memory per predictor"),
  }[panel]
  fig = _page.figure((6.4, 4.0))
  ax = fig.subplots()
  lines = list(dict.fromkeys((p["surrogate"], p["predictor"]) for p in points))
  styles = {"eigh": "o-", "chebyshev": "s--", "auto": "^:"}
  for i, (s, pred) in enumerate(lines):
    mine = [p for p in points if (p["surrogate"], p["predictor"]) == (s, pred)]
    ok = [p for p in mine if p["status"] == "ok"]
    color = f"C{i}"
    ax.plot([p["block"] for p in ok], [p[key] for p in ok],
            styles.get(pred, "o-"), color=color, label=f"{s}, {pred}")
    bad = [p for p in mine if p["status"] not in ("ok", "over_rss_cap_planned")
           and p.get(key)]
    if bad:
      ax.plot([p["block"] for p in bad], [p[key] for p in bad], "x",
              color=color, markersize=9, label=f"{s}, {pred}: not finished")
  _page.finish_block_axes(fig, ax, record, png, panel=panel, ylabel=ylabel,
                          title=title)


def plots(record: dict[str, Any]) -> list[_page.Plot]:
  """The record's two figures, named ``<name>-<hash8>_<panel>.png``."""
  return _page.panel_plots(record, PANELS, _draw_panel)


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless the sweep's numbers hang together.

  Every (surrogate, block, predictor) point of the config is there in order
  with its surrogate's target count; every point that ran (``ok``) has a
  finite gradient, positive times and memory, a median within its timed
  calls, a peak RSS above its baseline, a cosine in [-1, 1] (exactly 1 for
  eigh against itself) wherever eigh also ran, and a positive term count for
  the Chebyshev series.
  """
  expect = _records.expect
  m, c = record["metrics"], record["config"]
  points = m["points"]
  expect([(p["surrogate"], p["block"], p["predictor"]) for p in points]
         == [(s, b, q) for s, blocks in c["blocks"].items() for b in blocks
             for q in c["predictors"]],
         f"{KIND}: points differ from the config's surrogates x blocks x predictors")
  ran = {(p["surrogate"], p["block"], p["predictor"]) for p in points
         if p["status"] == "ok"}
  for p in points:
    what = f"{KIND} {p['surrogate']} block {p['block']} {p['predictor']}"
    expect(p["targets"] == c["targets"][p["surrogate"]], f"{what}: target count")
    if p["status"] != "ok":
      expect(p.get("gradient_cosine_vs_eigh") is None,
             f"{what}: a cosine without a gradient")
      continue
    for key in ("seconds_per_step", "peak_rss_mib", "xla_planned_mib",
                "compile_seconds"):
      expect(_records.positive(p[key]), f"{what}: {key} = {p[key]}")
    times = p["seconds_per_step_all"]
    expect(min(times) <= p["seconds_per_step"] <= max(times),
           f"{what}: median outside the timed calls")
    expect(p["peak_rss_mib"] >= p["baseline_rss_mib"], f"{what}: peak below baseline")
    expect(p["finite"] is True, f"{what}: non-finite gradient")
    cos = p["gradient_cosine_vs_eigh"]
    if (p["surrogate"], p["block"], "eigh") in ran:
      expect(cos is not None and -1 - 1e-9 <= cos <= 1 + 1e-9,
             f"{what}: cosine {cos}")
      if p["predictor"] == "eigh":
        expect(_records.close(cos, 1.0, 1e-9), f"{what}: eigh vs itself {cos}")
    else:
      expect(cos is None, f"{what}: a cosine without the eigh gradient")
    if p["predictor"] == "chebyshev":
      expect(isinstance(p["chebyshev_terms"], int) and p["chebyshev_terms"] >= 2,
             f"{what}: chebyshev_terms = {p.get('chebyshev_terms')}")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  m = r["metrics"]
  fmt = _page.fmt
  rows = []
  for p in m["points"]:
    ok = p["status"] == "ok"
    rss = fmt(p.get("peak_rss_mib"), ".0f")
    cos = p.get("gradient_cosine_vs_eigh")
    rows.append([p["surrogate"], str(p["block"]), str(p["targets"]),
                 p["predictor"], p["status"], fmt(p.get("seconds_per_step"), ".3g"),
                 rss if ok or rss == "-" else f">= {rss}",
                 fmt(p.get("xla_planned_mib"), ".0f"),
                 fmt(p.get("chebyshev_terms"), "d"),
                 "-" if cos is None else f"{cos:.6f}",
                 fmt(p.get("loadavg_1m"), ".1f")])
  lines = _page.table(["surrogate", "block", "targets", "predictor", "status",
                       "s / PGD step", "peak RSS (MiB)", "XLA plan (MiB)",
                       "Chebyshev terms", "gradient cosine vs eigh",
                       "load (1 min)"], rows, {1, 2, 5, 6, 7, 8, 9, 10})
  lines += ["", _page.load_text(m["loadavg_before"], m["loadavg_after"])]
  figures = plots(r)
  lines += [""] + [p.link(p.name[:-len(".png")]) for p in figures]
  return lines, figures


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, the points and two figures."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)


def main(argv: Sequence[str] | None = None) -> int:
  """Child entry point: ``--point JSON`` measures one point, prints JSON."""
  return block_sweep.point_main(f"{KIND} point", __doc__.split("\n")[0],
                                measure_point, argv)
