"""Seconds per NTGA PGD step on one block: ntga vs. the reference code's scheme.

One block of 512 MNIST training images, FNN surrogate, a 10,000-example target
set, t = 64, cross-entropy. Both variants compute the gradient of the same
loss with respect to the block's pixels:

(a) ntga (``ntga.pgd._gp_loss``): float32, K_nn and its eigendecomposition
    once per step, the target set streamed in chunks of 250 with
    rematerialisation, the stable matrix-function gradient.
(b) the reference code's scheme (Yuan & Wu's ``generate_attack.py``): float64,
    the target set cut into 30-example slices and, for every slice, K_nn
    rebuilt and eigendecomposed again inside the differentiated function
    (autodiff through ``eigh``, as ``nt.predict.gradient_descent_mse`` does).

Both are jit-compiled and timed after a warm-up call, one after the other on
the same machine, each in its own process (float64 must be switched on for
(b) only: neural-tangents upcasts everything once it is on). Run:

  python -m benchmarks.ntga_speed [--mnist DIR] [--repeats 3]

and it prints one JSON line (also appended to benchmarks/results/ntga_speed.jsonl).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _records
from benchmarks.configs import shared_data
from ntga import pgd, data, surrogates
from ntga.errors import ConfigError

DEFAULT_MNIST = shared_data() / "mnist"


def _ours(kernel_fn, xb, yb, tx, ty, t):
  chunk = min(250, tx.shape[0])
  if tx.shape[0] % chunk:
    raise ConfigError(f"targets ({tx.shape[0]}) must be a multiple of 250 "
                      "(or fewer than 250)")
  n = tx.shape[0] // chunk
  txc = tx.reshape((n, chunk) + tx.shape[1:])
  tyc = ty.reshape(n, chunk, -1)
  tw = jnp.ones((n, chunk), jnp.float32)
  mask = jnp.ones(xb.shape[0], jnp.float32)
  loss = lambda x: pgd._gp_loss(x, yb, mask, txc, tyc, tw,
                                   kernel_fn=kernel_fn, t=t, diag_reg=1e-4,
                                   loss="ce")
  return jax.jit(jax.grad(loss))


def _reference(kernel_fn, t, n_classes):
  """The reference scheme: per 30-example slice, rebuild K_nn and eigh it."""

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
    for s in range(0, tx.shape[0], 30):
      g = g + grad_slice(x, y, tx[s:s + 30], ty[s:s + 30])
    return g.block_until_ready()

  return step


def _load(mnist, block, targets):
  ds = data.load(mnist, "train", limit=block + targets)
  x = ds.x.astype(np.float32) / 255
  y = np.eye(10, dtype=np.float32)[ds.y]
  return x[:block], y[:block], x[block:], y[block:]


def run_ours(mnist, block, targets, repeats, t=64.0) -> dict:
  xb, yb, tx, ty = _load(mnist, block, targets)
  kernel_fn = surrogates.get("fnn", 10)
  grad = _ours(kernel_fn, jnp.asarray(xb), jnp.asarray(yb), jnp.asarray(tx),
               jnp.asarray(ty), t)
  g = grad(jnp.asarray(xb)).block_until_ready()  # compile + warm-up
  assert g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g)))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    grad(jnp.asarray(xb)).block_until_ready()
    times.append(time.perf_counter() - start)
  return {"seconds": float(np.median(times)), "all_seconds": times,
          "grad": np.asarray(g, np.float64).ravel().tolist()}


def run_reference(mnist, block, targets, t=64.0) -> dict:
  jax.config.update("jax_enable_x64", True)
  xb, yb, tx, ty = (jnp.asarray(a, jnp.float64)
                    for a in _load(mnist, block, targets))
  step = _reference(surrogates.get("fnn", 10), t, 10)
  step(xb, yb, tx[:60], ty[:60])  # compile (every slice has 30 rows)
  start = time.perf_counter()
  g = step(xb, yb, tx, ty)
  seconds = time.perf_counter() - start
  return {"seconds": seconds, "grad": np.asarray(g).ravel().tolist()}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mnist", default=str(DEFAULT_MNIST))
  parser.add_argument("--block", type=int, default=512)
  parser.add_argument("--targets", type=int, default=10000)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--variant", choices=["ours", "reference"], default=None,
                      help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.variant == "ours":
    print(json.dumps(run_ours(args.mnist, args.block, args.targets,
                              args.repeats)))
    return {}
  if args.variant == "reference":
    print(json.dumps(run_reference(args.mnist, args.block, args.targets)))
    return {}

  results = {}
  for variant in ("ours", "reference"):
    cmd = [sys.executable, "-m", "benchmarks.ntga_speed", "--variant", variant,
           "--mnist", args.mnist, "--block", str(args.block), "--targets",
           str(args.targets), "--repeats", str(args.repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
  ga = np.asarray(results["ours"]["grad"])
  gb = np.asarray(results["reference"]["grad"])
  # Same objective up to the normalisation of the mean: compare directions.
  cosine = float(ga @ gb / (np.linalg.norm(ga) * np.linalg.norm(gb)))
  a, b = results["ours"]["seconds"], results["reference"]["seconds"]
  record = {
      "benchmark": "ntga_speed", "block": args.block, "targets": args.targets,
      "surrogate": "fnn", "t": 64.0, "slices_b": math.ceil(args.targets / 30),
      "seconds_per_step_ours": a, "seconds_per_step_ours_all":
      results["ours"]["all_seconds"], "seconds_per_step_reference_scheme": b,
      "speedup": b / a, "gradient_cosine": cosine,
      "machine": _records.machine(),
  }
  _records.save("ntga_speed", record)
  return record


if __name__ == "__main__":
  main()
