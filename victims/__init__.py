"""Victim models, the training/evaluation loop and defenses.

Public modules: :mod:`ntga.victims.models` (``create``), :mod:`ntga.victims.train`
(``TrainConfig``, ``train_and_evaluate``), :mod:`ntga.victims.defenses`
(augmentations, squeezing, orthogonal projection), :mod:`ntga.victims.adversarial`
(PGD), :mod:`ntga.victims.separability` and :mod:`ntga.victims.cli`.

``victims`` depends on ``ntga`` for data only and never imports ``attacks``.
"""
