"""The cnn surrogate's NTK: ntga's patch-algebra kernel vs neural-tangents'.

Both compute the same kernel (``tests/test_kernels.py``); this measures what
the rewrite (``ntga._cnn_kernel``) buys, in one process on one machine:

* per image pair, the kernel's value and its gradient with respect to the
  first argument (``jax.grad`` of the summed kernel), on random images of
  each configured shape;
* one NTGA PGD step's gradient (``ntga.pgd._gp_loss``: the block's K_nn,
  its factorisation, the target set in chunks) on real training images, with
  either kernel, plus the cosine between the two gradients.

Every function is jit-compiled and timed after a warm-up call; the median of
``repeats`` calls is reported.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _block_sweep, ntga_speed
from benchmarks.configs import resolve_spec
from ntga import data, surrogates
from ntga._cnn_kernel import cnn_ntk_fn


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
  """Median of ``repeats`` timed calls after a warm-up call."""
  return statistics.median(_block_sweep.time_calls(fn, repeats, math.inf))


def _kernels(num_classes: int) -> dict[str, Callable]:
  _, _, nt_kfn = surrogates.cnn_layers(num_classes)
  return {"ntga": cnn_ntk_fn(w_var=surrogates.W_STD**2, b_var=surrogates.B_STD**2),
          "neural_tangents": lambda a, b: nt_kfn(a, b, "ntk")}


def _pair_costs(shape, pairs, repeats) -> dict[str, float]:
  key = jax.random.key(0)
  x1 = jax.random.uniform(jax.random.fold_in(key, 1), (pairs[0], *shape))
  x2 = jax.random.uniform(jax.random.fold_in(key, 2), (pairs[1], *shape))
  n = pairs[0] * pairs[1]
  out = {}
  for name, kfn in _kernels(10).items():
    value = jax.jit(kfn)
    grad = jax.jit(jax.grad(lambda a, b, k=kfn: k(a, b).sum()))
    out[f"{name}_value_us"] = _median_seconds(lambda: value(x1, x2), repeats) / n * 1e6
    out[f"{name}_grad_us"] = _median_seconds(lambda: grad(x1, x2), repeats) / n * 1e6
  return out


def _step_costs(spec, block, targets, t, repeats) -> dict[str, float]:
  ds = data.load(resolve_spec(spec), "train", limit=block + targets)
  x = jnp.asarray(ds.x.astype(np.float32) / 255)
  y = jnp.asarray(np.eye(10, dtype=np.float32)[ds.y])
  out, grads = {}, {}
  for name, kfn in _kernels(10).items():
    grad = ntga_speed._ours(kfn, x[:block], y[:block], x[block:], y[block:], t)  # pylint: disable=protected-access
    grads[name] = np.asarray(grad(x[:block]), np.float64).ravel()
    out[f"{name}_seconds"] = _median_seconds(lambda g=grad: g(x[:block]), repeats)
  a, b = grads["ntga"], grads["neural_tangents"]
  out["gradient_cosine"] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
  return out


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Runner of kind ``cnn_kernel_speed`` (see the module docstring).

  Config keys: ``shapes`` ({label: [H, W, C]}), ``pairs`` ([n1, n2]),
  ``step`` ({``data``, ``block``, ``targets``, ``t``}), ``repeats``.

  Returns:
    ``pairs``: {label: microseconds per pair for value and gradient, both
    kernels, and the speed-ups}; ``step``: seconds per PGD-step gradient with
    each kernel, the speed-up and the gradients' cosine.
  """
  pairs = {}
  for label, shape in config["shapes"].items():
    m = _pair_costs(tuple(shape), config["pairs"], config["repeats"])
    m["value_speedup"] = m["neural_tangents_value_us"] / m["ntga_value_us"]
    m["grad_speedup"] = m["neural_tangents_grad_us"] / m["ntga_grad_us"]
    pairs[label] = m
  s = config["step"]
  step = _step_costs(s["data"], s["block"], s["targets"], s["t"], config["repeats"])
  step["speedup"] = step["neural_tangents_seconds"] / step["ntga_seconds"]
  return {"pairs": pairs, "step": step}
