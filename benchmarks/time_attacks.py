"""Times the model-free poisoners (cuda, ops, random) on a full training split.

Usage:
  python benchmarks/time_attacks.py /work/shared/data/cifar10_jpeg/cifar10-jpeg-q75.tar.gz

Prints one line per attack: wall seconds of the poison call itself (including
JIT compilation, as a CLI run sees it), separately from the data load.
"""

import sys
import time

import jax
import numpy as np

from ntga import attacks
from ntga import data


def main(spec: str):
  t = time.perf_counter()
  ds = data.load(spec, "train")
  print(f"load {spec}: {len(ds)} images {ds.x.shape[1:]} in {time.perf_counter() - t:.1f} s",
        flush=True)
  for name, overrides in [("cuda", {}), ("ops", {}), ("random", {}),
                          ("random", {"mode": "class"})]:
    atk = attacks.get(name)
    cfg = atk.config_cls(**overrides)
    t = time.perf_counter()
    xp = atk.poison(jax.random.key(0), ds.x, ds.y, cfg)
    dt = time.perf_counter() - t
    stats = attacks.perturbation_stats(ds.x, xp)
    changed = int((xp != ds.x).any(axis=(1, 2, 3)).sum())
    print(f"{name} {overrides}: {dt:.1f} s, images changed {changed}, "
          f"PSNR {stats['psnr_db']:.2f} dB, max|delta| {stats['max_abs_delta_levels']} levels",
          flush=True)
  assert xp.dtype == np.uint8


if __name__ == "__main__":
  main(sys.argv[1])
