"""NTGA throughput on 1, 2 and 4 devices (simulated CPU devices here).

Poisons the same MNIST subset with the same settings in a fresh process per
device count (``XLA_FLAGS=--xla_force_host_platform_device_count=D``), blocks
sharded over a 'data' mesh of D devices, and checks that every output is
bit-identical. On one CPU the simulated devices share the same cores, so this
measures the overhead of sharding, not a speed-up. Run:

  python -m benchmarks.ntga_devices [--devices 1 2 4] [--limit 2048]

It prints one JSON line and appends it to benchmarks/results/ntga_devices.jsonl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.configs import shared_data

DEFAULT_MNIST = shared_data() / "mnist"


def run_one(mnist: str, limit: int, block: int, targets: int) -> dict:
  """Poisons in this process on all its devices; returns timing and hash."""
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import pgd, data  # pylint: disable=g-import-not-at-top
  ds = data.load(mnist, "train", limit=limit)
  cfg = pgd.NTGAConfig(block_size=block, target_size=targets)
  start = time.perf_counter()
  out = pgd.poison(jax.random.key(0), ds.x, ds.y, cfg, num_classes=10)
  seconds = time.perf_counter() - start
  return {"devices": jax.device_count(), "seconds": seconds,
          "images_per_second": len(ds.x) / seconds,
          "sha256_x": hashlib.sha256(out.tobytes()).hexdigest()}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mnist", default=str(DEFAULT_MNIST))
  parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
  parser.add_argument("--limit", type=int, default=2048)
  parser.add_argument("--block", type=int, default=256)
  parser.add_argument("--targets", type=int, default=1000)
  parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.one:
    print(json.dumps(run_one(args.mnist, args.limit, args.block, args.targets)))
    return {}

  from benchmarks import _records  # pylint: disable=g-import-not-at-top
  runs = []
  for d in args.devices:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={d}")
    cmd = [sys.executable, "-m", "benchmarks.ntga_devices", "--one",
           "--mnist", args.mnist, "--limit", str(args.limit), "--block",
           str(args.block), "--targets", str(args.targets)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
  record = {
      "benchmark": "ntga_devices", "limit": args.limit, "block": args.block,
      "targets": args.targets, "surrogate": "fnn", "runs": runs,
      "identical_outputs": len({r["sha256_x"] for r in runs}) == 1,
      "machine": _records.machine(),
  }
  _records.save("ntga_devices", record)
  return record


if __name__ == "__main__":
  main()
