"""``ntga demo``: NTGA on the 8x8 digits, victims trained on clean and poisoned.

Kind: :mod:`benchmarks.kinds.command`. The command a new user runs first, in a
fresh process: NTGA (FNN surrogate, eps 0.3, t = 64, blocks of 512, i.e. 3
blocks) poisons the 1,347 training images of scikit-learn's digits; the
``fnn-relu`` and ``cnn`` victims train for 10 epochs (their Adam recipe) on the
clean and on the poisoned set and are tested on the 450 clean test images;
seed 0. Smoke: the same command (it takes about two minutes on 2 cores).

  python -m benchmarks.run ntga_demo [--smoke]
"""


def get_config(smoke: bool = False) -> dict:
  """The ``ntga_demo`` config (see the module docstring)."""
  config = {"kind": "command", "group": "other",
            "commands": [["ntga", "demo", "--out", "{out}"]],
            "outputs": ["demo_results.json", "manifest.json"]}
  if smoke:
    config["outputs"] = ["demo_results.json"]
  return config
