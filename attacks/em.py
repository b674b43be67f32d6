"""Error-minimizing noise (Huang et al., "Unlearnable Examples", ICLR 2021).

Sample-wise or class-wise noise found by a bi-level min-min with a source
model, as the authors' code computes it (github.com/HanxunH/Unlearnable-Examples:
zero start, sign steps taken at the clamped image, BatchNorm in train mode for
the source model's steps and eval mode for the noise, stop above 99% accuracy
on the perturbed data); see :mod:`ntga.attacks._minmin` for the algorithm and
:class:`EMConfig` for settings (paper defaults with a ResNet-18 source model;
``EMConfig.cpu()`` for the CPU preset with the ``fast`` victim's
architecture). :func:`generate` also returns the source model and the
per-round progress (accuracy on the perturbed and on clean data, noise
saturation).

Example:
  >>> x_p = poison(jax.random.key(0), x, y, EMConfig.cpu(mode="class"))
  >>> r = generate(jax.random.key(0), x, y, EMConfig.cpu())
  >>> r.rounds, r.accuracy[-1], r.clean_accuracy[-1], r.saturation[-1]
"""

from ntga.attacks._minmin import EMConfig, MinMinConfig, MinMinResult, generate, poison, source_loss

__all__ = ["EMConfig", "MinMinConfig", "MinMinResult", "generate", "poison", "source_loss"]
