"""Every attack against the ``cnn`` victim on a CIFAR-10 subset (one seed).

Kind: :mod:`benchmarks.kinds.attacks_victims`. A class-stratified 5,000-image
subset of the CIFAR-10 training split (JPEG copy) is poisoned by each attack
(key 0, eps 8/255 where there is one): random noise sample-wise and
class-wise, cuda and ops (paper defaults), em sample-wise and class-wise and
rem with their CPU presets (``ntga.attacks.em.EMConfig.cpu``,
``ntga.attacks.rem.REMConfig.cpu``: each paper's algorithm with less work per
round and the ``fast`` victim's network as source model; the recorded em/rem
rows predate that and used a width-16 GroupNorm source CNN). The ``cnn`` victim (its Adam recipe, random
crop + flip for colour images, key 1) trains for 3 epochs on each set and on
the clean one; clean test accuracy on the first 2,000 test images. The
clean accuracies are far below converged values: compare the rows with each
other only. The papers' settings (GPU, ResNet-18, full data, victims trained
to convergence) remain the reference for each attack's strength. Smoke: 200
digits images, clean / random / cuda, 1 epoch.

  python -m benchmarks.run attacks_victims [--smoke]
"""

from benchmarks.configs import SHARED, cpu_preset


def _attacks() -> list[dict]:
  entry = lambda label, name, settings: {"label": label, "name": name,  # noqa: E731
                                         "settings": settings}
  return [entry("clean", None, {}), entry("random", "random", {}),
          entry("random-class", "random", {"mode": "class"}),
          entry("cuda", "cuda", {}), entry("ops", "ops", {}),
          entry("em", "em", cpu_preset("em")),
          entry("em-class", "em", cpu_preset("em", mode="class")),
          entry("rem", "rem", cpu_preset("rem"))]


def get_config(smoke: bool = False) -> dict:
  """The ``attacks_victims`` config (see the module docstring)."""
  config = {"kind": "attacks_victims",
            "data": {"spec": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz",
                     "limit": 5000, "test_limit": 2000},
            "victim": {"victim": "cnn", "epochs": 3},
            "attacks": _attacks(), "attack_seed": 0, "victim_seed": 1}
  if smoke:
    config.update(data={"spec": "digits", "limit": 200, "test_limit": 100},
                  victim={"victim": "cnn", "epochs": 1},
                  attacks=[a for a in _attacks()
                           if a["label"] in ("clean", "random", "cuda")])
  return config
