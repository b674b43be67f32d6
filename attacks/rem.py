"""Robust error-minimizing noise (Fu et al., "Robust Unlearnable Examples", ICLR 2022).

Min-min-max: the source model is adversarially trained (PGD at radius rho_a <
eps) and the noise minimises the expected adversarial loss over random crops
and flips, as the authors' code computes it
(github.com/fshp971/robust-unlearnable-examples: noise regenerated for every
minibatch from a random start, the adversarial image projected onto [0, 1]
and held fixed for the noise's gradient, noise stored in whole grey levels);
see :mod:`ntga.attacks._minmin` and :class:`REMConfig` (paper defaults with a
ResNet-18 source model; ``REMConfig.cpu()`` for the CPU preset with the
``fast`` victim's architecture).

Example:
  >>> x_p = poison(jax.random.key(0), x, y, REMConfig.cpu())
"""

from ntga.attacks._minmin import MinMinConfig, MinMinResult, REMConfig, generate, poison, source_loss

__all__ = ["REMConfig", "MinMinConfig", "MinMinResult", "generate", "poison", "source_loss"]
