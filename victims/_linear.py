"""A small jit-compiled linear (softmax) classifier trainer.

Used by the orthogonal-projection defense and the linear-separability
diagnostic. Minibatch Adam on the softmax cross-entropy; the whole run is one
compiled ``lax.scan``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax


@functools.partial(jax.jit, static_argnames=("num_classes", "bias", "epochs",
                                              "batch_size", "lr"))
def _fit(key, x, y, *, num_classes, bias, epochs, batch_size, lr):
  n, d = x.shape
  steps = max(1, n // batch_size)
  params = {"w": jnp.zeros((d, num_classes), x.dtype)}
  if bias:
    params["b"] = jnp.zeros((num_classes,), x.dtype)
  tx = optax.adam(lr)
  opt_state = tx.init(params)

  def logits_of(p, xb):
    out = xb @ p["w"]
    return out + p["b"][None, :] if bias else out

  def loss_fn(p, xb, yb):
    return optax.softmax_cross_entropy_with_integer_labels(logits_of(p, xb), yb).mean()

  def epoch(carry, e):
    p, s = carry
    perm = jax.random.permutation(jax.random.fold_in(key, e), n)

    def step(carry, i):
      p, s = carry
      idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
      g = jax.grad(loss_fn)(p, x[idx], y[idx])
      upd, s = tx.update(g, s, p)
      return (optax.apply_updates(p, upd), s), None

    return jax.lax.scan(step, (p, s), jnp.arange(steps))[0], None

  (params, _), _ = jax.lax.scan(epoch, (params, opt_state), jnp.arange(epochs))
  acc = jnp.mean(jnp.argmax(logits_of(params, x), axis=1) == y)
  return params, acc


def fit_linear(key: jax.Array, x: np.ndarray | jax.Array, y: np.ndarray | jax.Array,
               num_classes: int, *, bias: bool = True, epochs: int = 20,
               batch_size: int = 256, lr: float = 1e-2) -> tuple[dict, float]:
  """Trains a linear softmax classifier on flattened inputs.

  Args:
    key: PRNG key for shuffling.
    x: inputs, shape (N, ...); flattened to (N, D) as float32.
    y: int class labels, shape (N,).
    num_classes: number of classes.
    bias: whether the model has a bias term.
    epochs: passes over the data.
    batch_size: minibatch size (clamped to N).
    lr: Adam learning rate.

  Returns:
    ``({"w": (D, K)[, "b": (K,)]}, training accuracy in [0, 1])``.

  Example:
    >>> params, acc = fit_linear(key, x, y, 10, bias=False)
  """
  x = jnp.asarray(x, jnp.float32).reshape((len(x), -1))
  y = jnp.asarray(y, jnp.int32)
  params, acc = _fit(key, x, y, num_classes=int(num_classes), bias=bool(bias),
                     epochs=int(epochs), batch_size=int(min(batch_size, len(x))),
                     lr=float(lr))
  return params, float(acc)
