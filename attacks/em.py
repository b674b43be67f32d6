"""Error-minimizing noise (Huang et al., "Unlearnable Examples", ICLR 2021).

Sample-wise or class-wise noise found by a bi-level min-min with a source model;
see :mod:`ntga.attacks._minmin` for the algorithm and :class:`EMConfig` for settings
(paper defaults; ``EMConfig.cpu()`` for a CPU-scaled preset).

Example:
  >>> x_p = poison(jax.random.key(0), x, y, EMConfig.cpu(mode="class"))
"""

from ntga.attacks._minmin import EMConfig, MinMinResult, generate, poison, source_loss

__all__ = ["EMConfig", "MinMinResult", "generate", "poison", "source_loss"]
