"""Whole ``ntga poison`` runs on all of CIFAR-10: wall clock, CPU time, memory.

Kind: :mod:`benchmarks.kinds.command`. Each command runs in a fresh process:
interpreter start, imports, decoding the 50,000 JPEGs of the CIFAR-10 copy,
poisoning, writing ``OUT/train.npz`` and ``manifest.json``. The attacks that
need no model (cuda, ops, random) with their default configs (eps 8/255 where
there is one), one after the other. Smoke: random noise on 64 digits images.

  python -m benchmarks.run poison_cli_cifar [--smoke]
"""

from benchmarks.configs import SHARED

CIFAR = f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz"


def get_config(smoke: bool = False) -> dict:
  """The ``poison_cli_cifar`` config (see the module docstring)."""
  data, attacks, extra = CIFAR, ("cuda", "ops", "random"), []
  if smoke:
    data, attacks, extra = "digits", ("random",), ["--limit", "64"]
  return {"kind": "command",
          "commands": [["ntga", "poison", "--attack", a, "--data", data, *extra,
                        "--out", "{out}"] for a in attacks],
          "outputs": ["manifest.json"]}
