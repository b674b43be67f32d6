"""ntga: make image datasets unlearnable.

The core, in a few short files:

* ``ntga.surrogates``: the paper's infinite-width FNN and CNN (neural-tangents).
* ``ntga.predict``: the closed-form NTK Gaussian-process mean and its stable
  gradient.
* ``ntga.pgd``: NTGA itself, block-wise projected gradient ascent.
* ``ntga.protocol``: the protocol every attack follows (``AttackConfig``,
  ``RunContext``).
* ``ntga.data``: ``load(spec, split)`` for every supported dataset format.
* ``ntga.io``: atomic output (train.npz, manifest.json, PNGs).
* ``ntga.distributed``: joining a multi-process JAX run from CLI flags.

Above the core: ``ntga.attacks`` (the other poisoners, the registry and
``ntga.attacks.pipeline``, which poisons a whole dataset) and ``ntga.victims``
(models, training, defenses). On top: ``ntga.cli`` (the ``ntga`` command) and
``ntga.demo``.

Submodules are imported on use, so ``import ntga`` stays cheap.
"""

__version__ = "0.1.0"
