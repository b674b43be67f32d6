"""NTGA on 10,000 MNIST images against a plain 2-hidden-layer ReLU MLP.

Runs the CLI exactly as a user would:

  ntga poison --attack ntga --data MNIST_DIR --limit 10000 --out OUT

(FNN surrogate, eps 0.3, t 64: the paper's MNIST settings, which are the
defaults for greyscale data), then trains a 2-hidden-layer ReLU MLP
(784-512-512-10, Adam lr 1e-3, batch 128, 20 epochs; Flax NNX + optax) on the
clean 10,000 and on ``OUT/train.npz`` and tests both on the clean 10,000-image
MNIST test set. Run:

  python -m benchmarks.ntga_mnist [--mnist DIR] [--out DIR] [--seeds 0 1 2]

It prints one JSON line and appends it to benchmarks/results/ntga_mnist.jsonl.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks import _records
from benchmarks.configs import shared_data
from ntga import cli, data

DEFAULT_MNIST = shared_data() / "mnist"


class MLP(nnx.Module):
  """784 -> 512 -> 512 -> classes, ReLU."""

  def __init__(self, d_in: int, n_classes: int, rngs: nnx.Rngs, width=512):
    self.l1 = nnx.Linear(d_in, width, rngs=rngs)
    self.l2 = nnx.Linear(width, width, rngs=rngs)
    self.l3 = nnx.Linear(width, n_classes, rngs=rngs)

  def __call__(self, x):
    x = x.reshape(x.shape[0], -1)
    return self.l3(jax.nn.relu(self.l2(jax.nn.relu(self.l1(x)))))


def train_mlp(seed: int, x: np.ndarray, y: np.ndarray, x_test: np.ndarray,
              y_test: np.ndarray, epochs: int = 20, batch: int = 128) -> float:
  """Trains the MLP with Adam and returns its final clean test accuracy."""
  model = MLP(int(np.prod(x.shape[1:])), 10, nnx.Rngs(seed))
  opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

  @nnx.jit
  def step(model, opt, xb, yb):
    def loss_fn(m):
      return optax.softmax_cross_entropy_with_integer_labels(m(xb), yb).mean()
    grads = nnx.grad(loss_fn)(model)
    opt.update(model, grads)

  @nnx.jit
  def predict(model, xb):
    return jnp.argmax(model(xb), -1)

  xf = x.astype(np.float32) / 255
  rng = np.random.default_rng(seed)
  for _ in range(epochs):
    perm = rng.permutation(len(xf))
    for s in range(0, len(perm) - batch + 1, batch):
      idx = perm[s:s + batch]
      step(model, opt, xf[idx], y[idx])
  xt = x_test.astype(np.float32) / 255
  pred = np.concatenate([np.asarray(predict(model, xt[s:s + 1000]))
                         for s in range(0, len(xt), 1000)])
  return float(np.mean(pred == y_test))


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mnist", default=str(DEFAULT_MNIST))
  parser.add_argument("--out", default=None)
  parser.add_argument("--limit", type=int, default=10000)
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  args = parser.parse_args(argv)

  out = Path(args.out or tempfile.mkdtemp(prefix="ntga-mnist-")) / "poisoned"
  start = time.time()
  rc = cli.main(["poison", "--attack", "ntga", "--data", args.mnist,
                 "--limit", str(args.limit), "--out", str(out)])
  assert rc == 0
  poison_s = time.time() - start
  clean = data.load(args.mnist, "train", limit=args.limit)
  test = data.load(args.mnist, "test")
  with np.load(out / "train.npz") as z:
    xp = z["x"]
  manifest = json.loads((out / "manifest.json").read_text())
  acc_clean = [train_mlp(s, clean.x, clean.y, test.x, test.y) for s in args.seeds]
  acc_poison = [train_mlp(s, xp, clean.y, test.x, test.y) for s in args.seeds]
  record = {
      "benchmark": "ntga_mnist", "limit": args.limit,
      "command": f"ntga poison --attack ntga --data {args.mnist} --limit "
                 f"{args.limit} --out {out}",
      "config": manifest["config"],
      "max_abs_delta_levels": manifest["max_abs_delta_levels"],
      "poison_seconds": poison_s, "seeds": args.seeds,
      "mlp_clean_trained": acc_clean, "mlp_poison_trained": acc_poison,
      "machine": _records.machine(),
  }
  _records.save("ntga_mnist", record)
  return record


if __name__ == "__main__":
  main()
