"""Seconds per NTGA PGD step: plain vs defense-aware.

Kind: :mod:`benchmarks.kinds.ntga_variant_speed`. What defense-aware NTGA
(``--set defense_aware=...``: differentiable grayscale, JPEG at quality 10,
random crop and flip in front of the kernel) costs per PGD step against
plain NTGA; it should cost a few times a plain step, not orders of magnitude
more. For every variant one step of ``ntga.pgd.attack_block`` is compiled,
run once to warm up and timed 3 times (the median counts; each timed call
draws a fresh key), one variant after the other in the same process; the
compile time is given apart. Full: a block of 512 CIFAR-10 training images
(the JPEG-75 copy), FNN surrogate, a 10,000-image target set streamed in
chunks of 250, t = 512; variants plain, grayscale, jpeg, augment and all
three together. Smoke: 32 digits images replicated to 3 identical channels
(so the colour paths of grayscale and JPEG run; on such images grayscale
changes nothing but still does its work), 60 targets in chunks of 30, 2
timed calls, variants plain and all three (every transform, two compiles);
its times say nothing about CIFAR-10.

  python -m benchmarks.run ntga_variant_speed [--smoke]
"""

from benchmarks.configs import SHARED

ALL_THREE = "grayscale,jpeg,augment"


def get_config(smoke: bool = False) -> dict:
  """The ``ntga_variant_speed`` config (see the module docstring)."""
  config = {
      "kind": "ntga_variant_speed",
      "data": f"{SHARED}/cifar10_jpeg/cifar10-jpeg-q75.tar.gz",
      "surrogate": "fnn",
      "block": 512,
      "targets": 10000,
      "settings": {"t": 512.0},
      "variants": {"plain": {}, "grayscale": {"defense_aware": "grayscale"},
                   "jpeg": {"defense_aware": "jpeg"},
                   "augment": {"defense_aware": "augment"},
                   "all three": {"defense_aware": ALL_THREE}},
      "baseline": "plain",
      "repeats": 3,
      "seed": 0,
  }
  if smoke:
    config.update(data="digits", channels=3, block=32, targets=60,
                  settings={"t": 512.0, "target_chunk": 30}, repeats=2,
                  variants={k: config["variants"][k]
                            for k in ("plain", "all three")})
  return config
