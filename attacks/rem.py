"""Robust error-minimizing noise (Fu et al., "Robust Unlearnable Examples", ICLR 2022).

Min-min-max: the source model is adversarially trained (PGD at radius rho_a <
eps) and the noise minimises the expected adversarial loss over random
transformations; see :mod:`ntga.attacks._minmin` and :class:`REMConfig` (paper
defaults; ``REMConfig.cpu()`` for a CPU-scaled preset).

Example:
  >>> x_p = poison(jax.random.key(0), x, y, REMConfig.cpu())
"""

from ntga.attacks._minmin import MinMinResult, REMConfig, generate, poison, source_loss

__all__ = ["REMConfig", "MinMinResult", "generate", "poison", "source_loss"]
