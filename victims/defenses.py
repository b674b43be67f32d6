"""Defenses against unlearnable data: augmentations, squeezing, projection.

Per-batch augmentations (jit-compatible, key first, float images in [0, 1]):
  * :func:`random_crop` + :func:`random_flip` -- the standard CIFAR
    augmentation (He et al., CVPR 2016: 4 px zero padding, random 32x32 crop,
    horizontal flip).
  * :func:`cutout` -- DeVries & Taylor, "Improved Regularization of CNNs with
    Cutout", 2017 (one zeroed square of side 16 on CIFAR-10, i.e. half the
    image side; its centre may lie anywhere, the square is clipped at borders).
  * :func:`mixup` -- Zhang et al., "mixup: Beyond Empirical Risk
    Minimization", ICLR 2018 (alpha = 1).
  * :func:`cutmix` -- Yun et al., "CutMix", ICCV 2019 (alpha = 1, applied with
    probability 0.5 as in its CIFAR experiments).

Image shortcut squeezing, applied once to the uint8 training images (Liu et
al., "Image Shortcut Squeezing: Countering Perturbative Availability Poisons
with Compression", ICML 2023): :func:`jpeg_compress` (quality 10),
:func:`grayscale`, :func:`bit_depth_reduction` (2 bits).

Orthogonal projection (:func:`orthogonal_projection`): Sandoval-Segura et
al., "What Can We Learn from Unlearnable Datasets?", NeurIPS 2023.

Adversarial training: :mod:`ntga.victims.adversarial` (PGD, Madry et al.,
ICLR 2018: ``at-linf``, ``at-l2``; N-FGSM, de Jorge et al., NeurIPS 2022:
``at-nfgsm``, the single-step one that does not overfit catastrophically).

The registry: every defense is a small frozen config (:class:`DefenseConfig`)
holding its own settings with the papers' defaults and its behaviour --
:meth:`~DefenseConfig.prepare_images` (once, on the training images) and
:meth:`~DefenseConfig.transform_batch` (on each training batch). A
:class:`ntga.victims.train.TrainConfig` holds one of them.

Example:
  >>> from ntga.victims import defenses
  >>> cfg = defenses.get("jpeg", quality=30)
  >>> cfg.name, cfg.flat_settings()
  ('jpeg', {'jpeg_quality': 30})
"""

from __future__ import annotations

from ntga.victims import _names
from ntga.victims._augment import cutmix, cutout, mixup, random_crop, random_flip
from ntga.victims._defense_configs import (
    REGISTRY, AdversarialTraining, AtL2, AtLinf, AtNFgsm, BitDepthReduction, CutMix, Cutout,
    DefenseConfig, Grayscale, Jpeg, Mixup, NoDefense, OrthogonalProjection, flat_keys,
    from_flat, get)
from ntga.victims._squeeze import (bit_depth_reduction, grayscale, jpeg_compress,
                                   orthogonal_projection)

#: Every defense name, the registry's keys (``--defense`` choices, in the same
#: order as :data:`ntga.victims._names.DEFENSES`, which the CLI reads).
NAMES: tuple[str, ...] = tuple(REGISTRY)

#: Values of ``TrainConfig.augment``: 'auto' = crop+flip for 3-channel images of
#: at least 16 px, nothing otherwise (digits and MNIST are not flip-symmetric).
AUGMENTS: tuple[str, ...] = _names.AUGMENTS

__all__ = [
    "NAMES", "AUGMENTS", "REGISTRY", "get", "from_flat", "flat_keys",
    "DefenseConfig", "NoDefense", "Cutout", "Mixup", "CutMix", "AdversarialTraining",
    "AtLinf", "AtL2", "AtNFgsm", "Jpeg", "Grayscale", "BitDepthReduction",
    "OrthogonalProjection",
    "random_crop", "random_flip", "cutout", "mixup", "cutmix", "jpeg_compress",
    "grayscale", "bit_depth_reduction", "orthogonal_projection",
]
