"""Victim models, the training/evaluation loop and defenses.

Public modules: :mod:`victims.models` (``create``), :mod:`victims.train`
(``TrainConfig``, ``train_and_evaluate``), :mod:`victims.defenses`
(augmentations, squeezing, orthogonal projection), :mod:`victims.adversarial`
(PGD), :mod:`victims.separability` and :mod:`victims.cli`.

``victims`` depends on ``ntga`` for data only and never imports ``attacks``.
"""
