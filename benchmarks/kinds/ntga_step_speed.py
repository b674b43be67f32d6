"""Kind ``ntga_step_speed``: seconds per NTGA PGD step, ntga vs the reference scheme.

One block of training images, FNN surrogate, a target set, cross-entropy.
Both variants compute the gradient of the same loss with respect to the
block's pixels:

(a) ntga (``ntga.pgd._gp_loss``): float32, K_nn and its eigendecomposition
    once per step, the target set streamed in chunks of 250 with
    rematerialisation, the stable matrix-function gradient.
(b) the reference code's scheme (Yuan & Wu's ``generate_attack.py``): float64,
    the target set cut into 30-example slices and, for every slice, K_nn
    rebuilt and eigendecomposed again inside the differentiated function
    (autodiff through ``eigh``, as ``nt.predict.gradient_descent_mse`` does).

Both are jit-compiled and timed after a warm-up call, one after the other in
the same process; float64 is switched on for (b) only, inside a
``jax.enable_x64`` block, so nothing global changes. Config keys: ``data``,
``block``, ``targets``, ``repeats`` (timed calls of (a); the median counts),
``t``.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import ntga_step_speed
  >>> m = ntga_step_speed.run(configs.load("ntga_step_speed", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from benchmarks.kinds.ntga_variant_speed import load_block_and_targets
from ntga.errors import ConfigError

KIND = "ntga_step_speed"
GROUP = "speed"
CHUNK = 250  # ntga's target chunk
SLICE = 30  # the reference code's target slice


def pgd_step_grad(kernel_fn, xb, yb, tx, ty, t: float) -> Callable:
  """ntga's jitted PGD-step gradient of the block ``xb`` against targets ``tx``.

  Raises:
    ConfigError: more than 250 targets that are not a multiple of 250.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ntga import pgd  # pylint: disable=g-import-not-at-top

  chunk = min(CHUNK, tx.shape[0])
  if tx.shape[0] % chunk:
    raise ConfigError(f"targets ({tx.shape[0]}) must be a multiple of {CHUNK} "
                      f"(or fewer than {CHUNK})")
  n = tx.shape[0] // chunk
  txc = tx.reshape((n, chunk) + tx.shape[1:])
  tyc = ty.reshape(n, chunk, -1)
  tw = jnp.ones((n, chunk), jnp.float32)
  mask = jnp.ones(xb.shape[0], jnp.float32)
  loss = lambda x: pgd._gp_loss(x, yb, mask, txc, tyc, tw,  # pylint: disable=protected-access
                                kernel_fn=kernel_fn, t=t, diag_reg=1e-4, loss="ce")
  return jax.jit(jax.grad(loss))


def _reference_step(kernel_fn, t: float, n_classes: int) -> Callable:
  """The reference scheme: per 30-example slice, rebuild K_nn and eigh it."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def slice_loss(x, y, sx, sy):
    k_nn = kernel_fn(x, x)
    n = k_nn.shape[0]
    k_reg = k_nn + 1e-4 * jnp.trace(k_nn) / n * jnp.eye(n, dtype=k_nn.dtype)
    lam, u = jnp.linalg.eigh(k_reg)
    decay = -jnp.expm1(-lam * t / (n * n_classes)) / lam
    logits = kernel_fn(sx, x) @ ((u * decay[None, :]) @ (u.T @ y))
    return -jnp.mean(jnp.sum(sy * jax.nn.log_softmax(logits), -1))

  grad_slice = jax.jit(jax.grad(slice_loss))

  def step(x, y, tx, ty):
    g = jnp.zeros_like(x)
    for s in range(0, tx.shape[0], SLICE):
      g = g + grad_slice(x, y, tx[s:s + SLICE], ty[s:s + SLICE])
    return g.block_until_ready()

  return step


def run_ours(spec: str, block: int, targets: int, repeats: int,
             t: float = 64.0) -> dict[str, Any]:
  """(a): median seconds of ``repeats`` timed steps, and the gradient."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ntga import surrogates  # pylint: disable=g-import-not-at-top

  xb, yb, tx, ty = (jnp.asarray(a)
                    for a in load_block_and_targets(spec, block, targets))
  grad = pgd_step_grad(surrogates.get("fnn", 10), xb, yb, tx, ty, t)
  g = grad(xb).block_until_ready()  # compile + warm-up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    grad(xb).block_until_ready()
    times.append(time.perf_counter() - start)
  return {"seconds": float(np.median(times)), "all_seconds": times,
          "grad": np.asarray(g, np.float64).ravel()}


def run_reference(spec: str, block: int, targets: int,
                  t: float = 64.0) -> dict[str, Any]:
  """(b) in float64 (switched on for this call only): seconds and gradient."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ntga import surrogates  # pylint: disable=g-import-not-at-top

  with jax.enable_x64(True):
    xb, yb, tx, ty = (jnp.asarray(a, jnp.float64)
                      for a in load_block_and_targets(spec, block, targets))
    step = _reference_step(surrogates.get("fnn", 10), t, 10)
    step(xb, yb, tx[:2 * SLICE], ty[:2 * SLICE])  # compile (every slice has 30 rows)
    start = time.perf_counter()
    g = step(xb, yb, tx, ty)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "grad": np.asarray(g, np.float64).ravel()}


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Times (a) and (b) on the configured block and target set.

  Returns:
    seconds per step of both variants, the speed-up and the cosine between
    their gradients.
  """
  spec = resolve_spec(config["data"])
  ours = run_ours(spec, config["block"], config["targets"], config["repeats"],
                  t=config["t"])
  ref = run_reference(spec, config["block"], config["targets"], t=config["t"])
  ga, gb = ours["grad"], ref["grad"]
  # Same objective up to the normalisation of the mean: compare directions.
  cosine = float(ga @ gb / (np.linalg.norm(ga) * np.linalg.norm(gb)))
  return {"seconds_per_step_ours": ours["seconds"],
          "seconds_per_step_ours_all": ours["all_seconds"],
          "seconds_per_step_reference_scheme": ref["seconds"],
          "speedup": ref["seconds"] / ours["seconds"],
          "reference_slices": math.ceil(config["targets"] / SLICE),
          "gradient_cosine": cosine}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless both times are positive, the speed-up is their
  ratio and the two gradients point the same way (cosine > 0.99)."""
  expect = _records.expect
  m = record["metrics"]
  expect(_records.positive(m["seconds_per_step_ours"])
         and _records.positive(m["seconds_per_step_reference_scheme"]),
         "ntga_step_speed: a time is not positive")
  expect(_records.close(m["speedup"], m["seconds_per_step_reference_scheme"]
                        / m["seconds_per_step_ours"]),
         "ntga_step_speed: speedup is not reference / ours")
  expect(len(m["seconds_per_step_ours_all"]) == record["config"]["repeats"],
         "ntga_step_speed: timed calls differ from repeats")
  # Same objective, float32 vs float64: the gradients point the same way.
  expect(m["gradient_cosine"] > 0.99,
         f"ntga_step_speed: gradient cosine {m['gradient_cosine']}")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  c, m = r["config"], r["metrics"]
  rows = [[c["data"], str(c["block"]), str(c["targets"]), str(c["repeats"]),
           f"{m['seconds_per_step_ours']:.3g}",
           f"{m['seconds_per_step_reference_scheme']:.3g}",
           f"**{m['speedup']:.0f}x**", f"{m['gradient_cosine']:.5f}"]]
  return _page.table(["data", "block", "targets", "repeats",
                      "(a) ntga, s / step (median)",
                      "(b) reference scheme, s / step", "speed-up (b / a)",
                      "gradient cosine"], rows), []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, both times and the speed-up."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
