"""ntga: make image datasets unlearnable.

The core, in a few short files:

* ``ntga.surrogates``: the paper's infinite-width FNN and CNN (neural-tangents).
* ``ntga.predict``: the closed-form NTK Gaussian-process mean and its stable
  gradient.
* ``ntga.pgd``: NTGA itself, block-wise projected gradient ascent.
* ``ntga.data``: ``load(spec, split)`` for every supported dataset format.
* ``ntga.io``: atomic output (train.npz, manifest.json, PNGs).
* ``ntga.cli``: the ``ntga`` command.

Submodules are imported on use, so ``import ntga`` stays cheap.
"""

__version__ = "0.1.0"
