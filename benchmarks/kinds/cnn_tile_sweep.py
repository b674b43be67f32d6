"""Kind ``cnn_tile_sweep``: the cnn surrogate's NTK in cache-sized sub-tiles.

NTGA builds its kernels in tiles of up to 250 x 512 image pairs
(``ntga.pgd.tiled_kernel``), and the cnn kernel holds a few arrays of one
entry per pixel per pair: for a whole tile, tens to hundreds of MB each, far
beyond the caches. ``ntga._cnn_kernel.cnn_ntk_fn(tile=(rows, cols))``
computes the same kernel one (rows x cols) sub-tile at a time. This times,
in one process, one outer tile's value and gradient for each sub-tile
shape, against the tile in one piece, and reports:

* microseconds per image pair and the speed-up over the whole tile;
* the FLOP rate, XLA's FLOP count of the whole tile's value and gradient
  over the measured seconds, as a share of the machine's float32 matmul
  rate measured in the same run (``ntga_block_sweep.matmul_rate``);
* the largest relative difference of the values from the whole tile's.

The gradient is taken with respect to the column images (``columns``: the
block images of K_mn, paired with target images) or to both sides
(``both``: a block's own K_nn, where both are the block's images).

Config keys: ``shapes`` ({label: [H, W, C]}), ``gradients`` (a list of
``columns`` and ``both``), ``outer`` ([rows, cols]), ``tiles`` ([[rows,
cols], ...]), ``repeats``, ``matmul_n``.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import cnn_tile_sweep
  >>> m = cnn_tile_sweep.run(configs.load("cnn_tile_sweep", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks import _page, _records, configs
from benchmarks.kinds import ntga_block_sweep

KIND = "cnn_tile_sweep"
GROUP = "speed"


def _case_points(shape, gradient, outer, tiles, repeats) -> dict[str, Any]:
  """One image shape and gradient: the whole outer tile, then each sub-tile."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ntga import surrogates  # pylint: disable=g-import-not-at-top
  from ntga._cnn_kernel import cnn_ntk_fn  # pylint: disable=g-import-not-at-top

  keys = jax.random.split(jax.random.key(0), 3)
  x1 = jax.random.uniform(keys[0], (outer[0], *shape), jnp.float32)
  x2 = jax.random.uniform(keys[1], (outer[1], *shape), jnp.float32)
  ct = jax.random.normal(keys[2], tuple(outer), jnp.float32)
  pairs = outer[0] * outer[1]

  def measure(tile):
    kfn = cnn_ntk_fn(w_var=surrogates.W_STD**2, b_var=surrogates.B_STD**2,
                     tile=None if tile is None else tuple(tile))
    # As ntga.pgd.tiled_kernel runs a tile: rematerialised in the backward.
    piece = jax.checkpoint(kfn)
    value = jax.jit(piece).lower(x1, x2).compile()
    # Arguments, not closed-over constants, which XLA would try to fold.
    argnums = (0, 1) if gradient == "both" else 1
    grad = jax.jit(jax.value_and_grad(
        lambda a, b, w: jnp.vdot(piece(a, b), w), argnums=argnums)
                   ).lower(x1, x2, ct).compile()
    times = ntga_block_sweep.time_calls(lambda: grad(x1, x2, ct), repeats,
                                        budget_s=float("inf"))
    return (np.asarray(value(x1, x2)), statistics.median(times), times,
            ntga_block_sweep._xla_cost(grad)["flops"])  # pylint: disable=protected-access

  whole_k, whole_s, whole_all, flops = measure(None)
  points = [{"tile": None, "us_per_pair": whole_s / pairs * 1e6,
             "seconds_all": whole_all, "speedup": 1.0, "max_rel_diff": 0.0}]
  for tile in tiles:
    k, s, s_all, _ = measure(tile)
    points.append({"tile": list(tile), "us_per_pair": s / pairs * 1e6,
                   "seconds_all": s_all, "speedup": whole_s / s,
                   "max_rel_diff": float(np.max(np.abs(k - whole_k)
                                                / np.abs(whole_k)))})
  return {"flops": flops, "points": points}


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Times the cnn kernel's value and gradient per sub-tile shape.

  Returns:
    ``matmul`` (:func:`ntga_block_sweep.matmul_rate`) and ``cases``: one per
    shape and gradient, in config order: {``shape`` (its label),
    ``gradient``, ``flops`` of the whole tile's value and gradient,
    ``points``: the whole tile (``tile`` None) then each sub-tile, with
    ``us_per_pair``, ``seconds_all``, ``speedup``, ``max_rel_diff``,
    ``gflops`` and ``fraction_of_matmul``}.
  """
  matmul = ntga_block_sweep.matmul_rate(config["matmul_n"], config["repeats"])
  pairs = config["outer"][0] * config["outer"][1]
  cases = []
  for label, shape in config["shapes"].items():
    for gradient in config["gradients"]:
      m = _case_points(tuple(shape), gradient, config["outer"], config["tiles"],
                       config["repeats"])
      for p in m["points"]:
        p["gflops"] = m["flops"] / (p["us_per_pair"] * 1e-6 * pairs) / 1e9
        p["fraction_of_matmul"] = p["gflops"] / matmul["gflops"]
      cases.append({"shape": label, "gradient": gradient, **m})
  return {"matmul": matmul, "cases": cases}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless every shape and gradient has the whole tile then
  every configured sub-tile, with positive times, speed-ups that are the
  time ratios, rates that follow from the FLOP count, and values equal to
  the whole tile's (relative difference below 1e-5)."""
  expect = _records.expect
  m, c = record["metrics"], record["config"]
  expect([(k["shape"], k["gradient"]) for k in m["cases"]]
         == [(s, g) for s in c["shapes"] for g in c["gradients"]],
         "cnn_tile_sweep: cases differ from the config's shapes x gradients")
  pairs = c["outer"][0] * c["outer"][1]
  for case in m["cases"]:
    what = f"cnn_tile_sweep {case['shape']} ({case['gradient']})"
    expect([p["tile"] for p in case["points"]] == [None] + c["tiles"],
           f"{what}: tiles differ from the config's")
    expect(_records.positive(case["flops"]), f"{what}: FLOPs = {case['flops']}")
    whole = case["points"][0]["us_per_pair"]
    for p in case["points"]:
      expect(_records.positive(p["us_per_pair"]),
             f"{what} {p['tile']}: time = {p['us_per_pair']}")
      expect(_records.close(p["speedup"], whole / p["us_per_pair"]),
             f"{what} {p['tile']}: speed-up is not the time ratio")
      expect(_records.close(p["gflops"], case["flops"]
                            / (p["us_per_pair"] * pairs) / 1e3),
             f"{what} {p['tile']}: rate")
      expect(0 < p["fraction_of_matmul"] < 1.5, f"{what} {p['tile']}: share")
      expect(p["max_rel_diff"] < 1e-5,
             f"{what} {p['tile']}: values differ by {p['max_rel_diff']}")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  c, m = r["config"], r["metrics"]
  outer = "x".join(str(n) for n in c["outer"])
  rows = []
  for case in m["cases"]:
    shape = "x".join(str(d) for d in c["shapes"][case["shape"]])
    for p in case["points"]:
      tile = f"{outer} (whole)" if p["tile"] is None else "x".join(
          str(n) for n in p["tile"])
      rows.append([f"{case['shape']} ({shape})", case["gradient"], tile,
                   f"{p['us_per_pair']:.3g}", f"{p['speedup']:.2f}x",
                   f"{100 * p['fraction_of_matmul']:.1f}",
                   f"{p['max_rel_diff']:.1g}"])
  lines = _page.table(["images", "gradient w.r.t.", "sub-tile (pairs)",
                       "us / pair (value + gradient)", "speed-up",
                       "% of matmul rate", "max rel. diff."],
                      rows, {3, 4, 5, 6})
  lines += ["", f"Matmul rate in the same run: {m['matmul']['gflops']:.0f} GFLOP/s "
            f"(float32, n = {m['matmul']['n']})."]
  return lines, []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, the sub-tile table."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
