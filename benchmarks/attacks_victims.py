"""Clean test accuracy of the `cnn` victim trained on each attack's poisoned data.

Usage (small CPU settings; the attacks' full paper settings need a GPU):
  python benchmarks/attacks_victims.py SPEC --limit N --epochs E [--attacks a,b,...]

Poisons a seeded N-image subset of SPEC's training split with every attack (EM
and REM with their ``cpu()`` presets), trains the ``cnn`` victim for E epochs
on each (same key), and prints clean test accuracy per attack as a Markdown row.
"""

import argparse
import time

import jax

import attacks
from attacks import em, rem
from ntga import data
from ntga.data._types import Dataset


def _config(name: str):
  if name == "em":
    return em.EMConfig.cpu()
  if name == "em-class":
    return em.EMConfig.cpu(mode="class")
  if name == "rem":
    return rem.REMConfig.cpu()
  if name == "random-class":
    return attacks.get("random").config_cls(mode="class")
  return attacks.get(name).config_cls()


def main():
  p = argparse.ArgumentParser()
  p.add_argument("spec")
  p.add_argument("--limit", type=int, default=10000)
  p.add_argument("--test-limit", type=int, default=None)
  p.add_argument("--epochs", type=int, default=5)
  p.add_argument("--eps", type=float, default=None, help="override eps of eps-bounded attacks")
  p.add_argument("--attacks", default="clean,random,random-class,cuda,ops,em,em-class,rem")
  a = p.parse_args()
  from victims.train import TrainConfig, train_and_evaluate
  train = data.load(a.spec, "train", limit=a.limit)
  test = data.load(a.spec, "test", limit=a.test_limit)
  tcfg = TrainConfig(victim="cnn", epochs=a.epochs)
  print(f"# {a.spec}: train {len(train)}, test {len(test)}, cnn {a.epochs} epochs", flush=True)
  for name in a.attacks.split(","):
    t = time.perf_counter()
    x = train.x
    if name != "clean":
      cfg = _config(name)
      if a.eps is not None and hasattr(cfg, "eps"):
        import dataclasses
        cfg = dataclasses.replace(cfg, eps=a.eps)
      x = attacks.get(name.split("-")[0]).poison(jax.random.key(0), train.x, train.y, cfg)
    tp = time.perf_counter() - t
    res = train_and_evaluate(jax.random.key(1), Dataset(x, train.y, train.class_names),
                             test, tcfg, progress=False)
    print(f"| {name} | {100 * res['final_test_accuracy']:.2f} | {tp:.0f} s |", flush=True)


if __name__ == "__main__":
  main()
