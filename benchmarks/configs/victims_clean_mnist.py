"""Victims on clean MNIST: the training loop's sanity check, as ``ntga evaluate`` runs it.

Kind: :mod:`benchmarks.kinds.evaluate_command`. Each victim trains on the
full MNIST training split (60,000 images) for 5 epochs with its recipe
(Adam, lr 1e-3, batch 128, constant schedule, no weight decay, no
augmentation for 1-channel images), seed 0, and is tested on the 10,000 test
images after every epoch. Targets: >= 98.5% (``cnn``) and >= 97%
(``fnn-relu``) after 5 epochs. Smoke: 1 epoch on digits, ``fnn-relu`` only.

  python -m benchmarks.run victims_clean_mnist [--smoke]
"""

from benchmarks.configs import SHARED


def get_config(smoke: bool = False) -> dict:
  """The ``victims_clean_mnist`` config (see the module docstring)."""
  data, epochs, victims = f"{SHARED}/mnist", 5, ["cnn", "fnn-relu"]
  if smoke:
    data, epochs, victims = "digits", 1, ["fnn-relu"]
  return {"kind": "evaluate_command",
          "args": ["--train", data, "--test", data, "--epochs", str(epochs)],
          "victims": victims, "seeds": [0]}
