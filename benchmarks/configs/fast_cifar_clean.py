"""The ``fast`` victim on clean CIFAR-10 (JPEG copy), as ``ntga evaluate`` runs it.

Kind: :mod:`benchmarks.kinds.evaluate_command`. Full: the whole training split
(50,000) and test split (10,000), the ``fast`` victim with its recipe (see
:mod:`ntga.victims.train`), seed 0; the wall-clock covers the whole command
(start-up, decoding, compilation, training, per-epoch evaluation). Target:
>= 85% final clean test accuracy within 20 minutes on 2 cores.
Smoke: the digits set, 1 epoch.

  python -m benchmarks.run fast_cifar_clean [--smoke]
"""

from benchmarks.configs import SHARED

CIFAR = f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz"


def get_config(smoke: bool = False) -> dict:
  """The ``fast_cifar_clean`` config (see the module docstring)."""
  if smoke:
    return {"kind": "evaluate_command",
            "args": ["--train", "digits", "--test", "digits", "--victim", "fast",
                     "--epochs", "1"], "seeds": [0]}
  return {"kind": "evaluate_command",
          "args": ["--train", CIFAR, "--test", CIFAR, "--victim", "fast"],
          "seeds": [0]}
