"""Kind ``cnn_kernel_speed``: the cnn surrogate's NTK, ntga vs neural-tangents.

Both compute the same kernel (``tests/test_kernels.py``); this measures what
the rewrite (``ntga._cnn_kernel``) buys, in one process on one machine:

* per image pair, the kernel's value and its gradient with respect to the
  first argument (``jax.grad`` of the summed kernel), on random images of
  each configured shape;
* one NTGA PGD step's gradient (``ntga.pgd._gp_loss``: the block's K_nn,
  its factorisation, the target set in chunks) on real training images, with
  either kernel, plus the cosine between the two gradients.

Every function is jit-compiled and timed after a warm-up call; the median of
``repeats`` calls is reported. Config keys: ``shapes`` ({label: [H, W, C]}),
``pairs`` ([n1, n2]), ``step`` ({``data``, ``block``, ``targets``, ``t``}),
``repeats``.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import cnn_kernel_speed
  >>> m = cnn_kernel_speed.run(configs.load("cnn_kernel_speed", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Callable

import numpy as np

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from benchmarks.kinds import ntga_block_sweep, ntga_step_speed

KIND = "cnn_kernel_speed"
GROUP = "speed"


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
  """Median of ``repeats`` timed calls after a warm-up call."""
  return statistics.median(ntga_block_sweep.time_calls(fn, repeats, math.inf))


def _kernels(num_classes: int) -> dict[str, Callable]:
  from ntga import surrogates  # pylint: disable=g-import-not-at-top
  from ntga._cnn_kernel import cnn_ntk_fn  # pylint: disable=g-import-not-at-top
  _, _, nt_kfn = surrogates.cnn_layers(num_classes)
  return {"ntga": cnn_ntk_fn(w_var=surrogates.W_STD**2, b_var=surrogates.B_STD**2),
          "neural_tangents": lambda a, b: nt_kfn(a, b, "ntk")}


def _pair_costs(shape, pairs, repeats) -> dict[str, float]:
  import jax  # pylint: disable=g-import-not-at-top
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
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ntga import data  # pylint: disable=g-import-not-at-top
  ds = data.load(resolve_spec(spec), "train", limit=block + targets)
  x = jnp.asarray(ds.x.astype(np.float32) / 255)
  y = jnp.asarray(np.eye(10, dtype=np.float32)[ds.y])
  out, grads = {}, {}
  for name, kfn in _kernels(10).items():
    grad = ntga_step_speed.pgd_step_grad(kfn, x[:block], y[:block], x[block:],
                                         y[block:], t)
    grads[name] = np.asarray(grad(x[:block]), np.float64).ravel()
    out[f"{name}_seconds"] = _median_seconds(lambda g=grad: g(x[:block]), repeats)
  a, b = grads["ntga"], grads["neural_tangents"]
  out["gradient_cosine"] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
  return out


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Times both kernels per image pair and in one PGD step.

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


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless every shape was timed with positive times and
  ratio speed-ups, and both kernels give the same PGD-step gradient
  (cosine > 0.999)."""
  expect = _records.expect
  m, c = record["metrics"], record["config"]
  expect(set(m["pairs"]) == set(c["shapes"]), "cnn_kernel_speed: shapes differ")
  for label, p in m["pairs"].items():
    for what in ("value", "grad"):
      expect(_records.positive(p[f"ntga_{what}_us"])
             and _records.positive(p[f"neural_tangents_{what}_us"]),
             f"cnn_kernel_speed {label}: a {what} time is not positive")
      expect(_records.close(p[f"{what}_speedup"], p[f"neural_tangents_{what}_us"]
                            / p[f"ntga_{what}_us"]),
             f"cnn_kernel_speed {label}: {what}_speedup is not the time ratio")
  expect(_records.close(m["step"]["speedup"], m["step"]["neural_tangents_seconds"]
                        / m["step"]["ntga_seconds"]),
         "cnn_kernel_speed: step speedup is not the time ratio")
  # The same kernel: the PGD-step gradients agree.
  expect(m["step"]["gradient_cosine"] > 0.999,
         f"cnn_kernel_speed: gradient cosine {m['step']['gradient_cosine']}")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  c, m = r["config"], r["metrics"]
  rows = []
  for label, p in m["pairs"].items():
    shape = "x".join(str(d) for d in c["shapes"][label])
    for what in ("value", "grad"):
      rows.append([f"{label} ({shape}), {what}, us / pair",
                   f"{p[f'ntga_{what}_us']:.3g}",
                   f"{p[f'neural_tangents_{what}_us']:.3g}",
                   f"{p[f'{what}_speedup']:.1f}x"])
  s, cs = m["step"], c["step"]
  rows.append([f"NTGA PGD step, block {cs['block']}, {cs['targets']} targets, s",
               f"{s['ntga_seconds']:.3g}", f"{s['neural_tangents_seconds']:.3g}",
               f"{s['speedup']:.1f}x"])
  lines = _page.table(["measure", "ntga kernel", "neural-tangents", "speed-up"],
                      rows, {1, 2, 3})
  lines += ["", f"Cosine between the two PGD-step gradients: "
            f"{s['gradient_cosine']:.6f}."]
  return lines, []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, both kernels' costs."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
