"""PGD adversarial examples and adversarial training's inner maximisation.

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
