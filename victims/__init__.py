"""Victim models, the training/evaluation loop and defenses.

Public modules: :mod:`ntga.victims.models` (``create``), :mod:`ntga.victims.train`
(``TrainConfig``, ``train_and_evaluate``: the loop), :mod:`ntga.victims.config`
(``TrainConfig``), :mod:`ntga.victims.recipes` (each victim's default recipe),
:mod:`ntga.victims.defenses` (the defense registry: ``get``, ``NAMES``, and the
augmentations, squeezing and orthogonal projection they use),
:mod:`ntga.victims.adversarial` (PGD), :mod:`ntga.victims.placement` (the data
mesh), :mod:`ntga.victims.checkpoint` (per-epoch checkpoints),
:mod:`ntga.victims.separability` and :mod:`ntga.victims.cli`.

``victims`` depends on ``ntga`` for data only and never imports ``attacks``.
"""
