"""PGD and N-FGSM adversarial examples: adversarial training's inner maximisation.

Reference: Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018 (PGD with a random start; the common CIFAR-10
adversarial-training setting is L_inf eps 8/255, 10 steps of 2/255). For L2
the step size 2.5 * eps / steps follows the rule of thumb of the same group's
``robustness`` library.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ntga.errors import ConfigError

LossFn = Callable[[jax.Array], jax.Array]


def _per_example_norm(v: jax.Array) -> jax.Array:
  """L2 norm of each example, shaped to broadcast against ``v``."""
  flat = v.reshape((v.shape[0], -1))
  norm = jnp.sqrt(jnp.sum(flat * flat, axis=1) + 1e-12)
  return norm.reshape((v.shape[0],) + (1,) * (v.ndim - 1))


def project(delta: jax.Array, *, norm: str, eps: float) -> jax.Array:
  """Projects perturbations onto the ``norm`` ball of radius ``eps`` per example."""
  if norm == "linf":
    return jnp.clip(delta, -eps, eps)
  return delta * jnp.minimum(1.0, eps / _per_example_norm(delta))


def pgd(key: jax.Array, loss_fn: LossFn, x: jax.Array, *, norm: str = "linf",
        eps: float = 8 / 255, steps: int = 10, step_size: float | None = None,
        random_start: bool = True) -> jax.Array:
  """Projected gradient ascent on ``loss_fn`` around clean images ``x``.

  Args:
    key: PRNG key for the random start.
    loss_fn: maps a batch of images (same shape as ``x``) to a scalar loss to
      maximise (e.g. the mean cross-entropy of a model).
    x: float images in [0, 1], shape (N, H, W, C).
    norm: ``"linf"`` or ``"l2"``.
    eps: radius of the ball, in [0, 1] pixel units (per example for L2).
    steps: number of ascent steps.
    step_size: per-step size; defaults to eps / 4 (L_inf, 2/255 at 8/255) or
      2.5 * eps / steps (L2).
    random_start: start from a uniform point of the ball (Madry et al.).

  Returns:
    Adversarial images with ``|x_adv - x|`` inside the ball and in [0, 1].

  Example:
    >>> x_adv = pgd(key, lambda z: jnp.mean((z - 1.0) ** 2), x, eps=8 / 255)
  """
  if norm not in ("linf", "l2"):
    raise ConfigError(f"PGD norm must be 'linf' or 'l2', got {norm!r}")
  if step_size is None:
    step_size = eps / 4 if norm == "linf" else 2.5 * eps / steps
  x = jax.lax.stop_gradient(x)
  if random_start:
    if norm == "linf":
      delta = jax.random.uniform(key, x.shape, x.dtype, -eps, eps)
    else:
      kd, kr = jax.random.split(key)
      d = jax.random.normal(kd, x.shape, x.dtype)
      r = jax.random.uniform(kr, (x.shape[0],) + (1,) * (x.ndim - 1), x.dtype)
      delta = d / _per_example_norm(d) * eps * r
  else:
    delta = jnp.zeros_like(x)
  delta = jnp.clip(x + delta, 0.0, 1.0) - x

  def body(_, delta):
    g = jax.grad(loss_fn)(x + delta)
    if norm == "linf":
      step = step_size * jnp.sign(g)
    else:
      step = step_size * g / _per_example_norm(g)
    delta = project(delta + step, norm=norm, eps=eps)
    return jnp.clip(x + delta, 0.0, 1.0) - x

  delta = jax.lax.fori_loop(0, steps, body, delta)
  return jax.lax.stop_gradient(x + delta)


def nfgsm(key: jax.Array, loss_fn: LossFn, x: jax.Array, *, eps: float = 8 / 255,
          noise: float = 2.0, step_size: float | None = None) -> jax.Array:
  """N-FGSM: one sign step from a wide uniform start, not projected back.

  de Jorge, Bibi, Volpi, Sanyal, Torr, Rogez, Dokania, "Make Some Noise:
  Reliable and Efficient Single-Step Adversarial Training", NeurIPS 2022;
  code: github.com/pdejorge/N-FGSM (``train.py``, defaults ``--unif 2
  --alpha 8 --clip -1`` at eps 8/255). The start is uniform in
  ``[-noise * eps, noise * eps]``, the step is ``step_size`` times the sign
  of the gradient there, and the result is only clipped to the image range,
  not to the eps-ball: the perturbation reaches up to ``(noise + 1) * eps``
  at the defaults. Unlike FGSM from a start inside the ball (Wong et al.,
  ICLR 2020), this avoids catastrophic overfitting at the cost of one
  gradient per example.

  Args:
    key: PRNG key for the start.
    loss_fn: maps a batch of images to a scalar loss to maximise.
    x: float images in [0, 1], shape (N, H, W, C).
    eps: the attack radius in [0, 1] pixel units.
    noise: half-width of the uniform start, in units of ``eps`` (0: none).
    step_size: the sign step; None = ``eps`` (the paper's).

  Returns:
    Perturbed images in [0, 1] (``|x_adv - x| <= noise * eps + step_size``).

  Example:
    >>> x_adv = nfgsm(key, lambda z: jnp.mean((z - 1.0) ** 2), x, eps=8 / 255)
  """
  step_size = eps if step_size is None else step_size
  x = jax.lax.stop_gradient(x)
  start = jax.random.uniform(key, x.shape, x.dtype, -noise * eps, noise * eps)
  start = jnp.clip(x + start, 0.0, 1.0)
  x_adv = start + step_size * jnp.sign(jax.grad(loss_fn)(start))
  return jax.lax.stop_gradient(jnp.clip(x_adv, 0.0, 1.0))
