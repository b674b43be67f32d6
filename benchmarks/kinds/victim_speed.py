"""Kind ``victim_speed``: victim training images/s and FLOP rate vs the matmul rate.

Two measurements in one process on one machine, after the machine's float32
matmul rate (:func:`benchmarks.kinds.ntga_block_sweep.matmul_rate`, before
and after):

* **victims**: each configured victim trains for ``epochs`` epochs on a
  subset of real training images through :func:`ntga.victims.train.train_and_evaluate`
  (the code every user runs); the last epoch's training time (compilation
  and evaluation excluded) gives images/s, and XLA's cost analysis of the
  compiled step (:func:`ntga.victims.train.train_step_flops`) gives FLOPs per
  image, hence the achieved GFLOP/s and its fraction of the matmul rate;
* **layers**: one 3x3 SAME convolution's forward plus backward pass at each
  configured shape, with XLA's convolution and with
  :mod:`ntga.victims._models._conv` (patch matmuls for the gradient), the
  GFLOP/s of each and the largest gradient difference between them.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import victim_speed
  >>> m = victim_speed.run(configs.load("victim_speed", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from benchmarks.kinds import ntga_block_sweep

KIND = "victim_speed"
GROUP = "speed"


def _conv_layer(shape: list[int], repeats: int) -> dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ntga.victims._models import _conv  # pylint: disable=g-import-not-at-top

  n, h, c_in, c_out = shape
  keys = jax.random.split(jax.random.key(0), 2)
  x = jax.random.normal(keys[0], (n, h, h, c_in), jnp.float32)
  w = 0.1 * jax.random.normal(keys[1], (3, 3, c_in, c_out), jnp.float32)
  dims = ("NHWC", "HWIO", "NHWC")
  fns = {"xla": jax.lax.conv_general_dilated,
         "patch": _conv.conv_general_dilated}
  out, grads = {}, {}
  flops = 3 * 2 * n * h * h * 9 * c_in * c_out  # forward + two gradients
  for name, fn in fns.items():
    grad = jax.jit(jax.grad(
        lambda a, b, f=fn: jnp.sum(jnp.sin(f(a, b, (1, 1), "SAME",
                                             dimension_numbers=dims))),
        argnums=(0, 1)))
    grads[name] = grad(x, w)
    seconds = statistics.median(ntga_block_sweep.time_calls(
        lambda g=grad: g(x, w), repeats, float("inf")))
    out[f"{name}_seconds"] = seconds
    out[f"{name}_gflops"] = flops / seconds / 1e9
  out["speedup"] = out["xla_seconds"] / out["patch_seconds"]
  out["max_grad_rel_diff"] = max(
      float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a)))
      for a, b in zip(grads["xla"], grads["patch"]))
  return {"shape": shape, "flops": flops, **out}


def _victim(victim: dict[str, Any], train, test, epochs: int, seed: int,
            matmul_gflops: float) -> dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  from ntga.victims.train import TrainConfig, train_and_evaluate, train_step_flops  # pylint: disable=g-import-not-at-top

  cfg = TrainConfig.from_flat(**{**victim, "epochs": epochs}).resolved()
  m = train_and_evaluate(jax.random.key(seed), train, test, cfg, progress=False)
  batch = m["batch_size"]
  flops_step = train_step_flops(cfg, tuple(train.x.shape[1:]), train.num_classes,
                                batch)
  seconds = m["train_time_s"][-1]
  images = m["steps_per_epoch"] * batch
  images_per_s = images / seconds
  gflops = flops_step * m["steps_per_epoch"] / seconds / 1e9
  return {"victim": cfg.victim, "settings": victim, "batch_size": batch,
          "steps_per_epoch": m["steps_per_epoch"], "epoch_seconds": seconds,
          "first_epoch_seconds": m["train_time_s"][0],
          "eval_seconds": m["epoch_time_s"][-1] - seconds,
          "images_per_second": images_per_s,
          "flops_per_image": flops_step / batch, "achieved_gflops": gflops,
          "fraction_of_matmul": gflops / matmul_gflops,
          "num_params": m["num_params"]}


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Measures the matmul rate, every victim's training and every layer.

  Config keys: ``data`` (``spec``, ``limit``, ``test_limit``), ``victims``
  (list of :class:`ntga.victims.train.TrainConfig` field dicts), ``epochs`` (>= 2:
  the first includes compilation), ``seed``, ``layers`` (list of
  ``[batch, side, in_channels, out_channels]``), ``repeats``, ``matmul_n``.

  Returns:
    ``matmul`` (before and after, and their mean ``gflops``), ``victims``
    (one entry per victim) and ``layers`` (one entry per shape).
  """
  from ntga import data  # pylint: disable=g-import-not-at-top
  from ntga.errors import ConfigError  # pylint: disable=g-import-not-at-top

  if config["epochs"] < 2:
    raise ConfigError("victim_speed needs epochs >= 2: the first one compiles")
  d = config["data"]
  spec = resolve_spec(d["spec"])
  train = data.load(spec, "train", limit=d["limit"])
  test = data.load(spec, "test", limit=d["test_limit"])
  before = ntga_block_sweep.matmul_rate(config["matmul_n"], config["repeats"])
  victims = []
  for v in config["victims"]:
    victims.append(_victim(v, train, test, config["epochs"], config["seed"],
                           before["gflops"]))
  layers = [_conv_layer(s, config["repeats"]) for s in config["layers"]]
  after = ntga_block_sweep.matmul_rate(config["matmul_n"], config["repeats"])
  rate = float(np.mean([before["gflops"], after["gflops"]]))
  for v in victims:
    v["fraction_of_matmul"] = v["achieved_gflops"] / rate
  for layer in layers:
    for name in ("xla", "patch"):
      layer[f"{name}_fraction_of_matmul"] = layer[f"{name}_gflops"] / rate
  return {"matmul": {"before": before, "after": after, "gflops": rate},
          "victims": victims, "layers": layers}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless every configured victim and layer was measured.

  Victims have finite positive rates with GFLOP/s = FLOPs/image x images/s;
  each layer's two convolutions agree (max gradient difference < 1e-4) and
  its speed-up is the time ratio; the matmul rate is positive.
  """
  expect = _records.expect
  m, c = record["metrics"], record["config"]
  expect([v["settings"] for v in m["victims"]] == c["victims"],
         "victim_speed: victims differ from the config's")
  for v in m["victims"]:
    for key in ("images_per_second", "flops_per_image", "achieved_gflops",
                "epoch_seconds"):
      expect(_records.positive(v[key]), f"victim_speed {v['victim']}: {key} = {v[key]}")
    expect(_records.close(v["achieved_gflops"],
                          v["flops_per_image"] * v["images_per_second"] / 1e9),
           f"victim_speed {v['victim']}: GFLOP/s is not FLOPs/image x images/s")
  expect([layer["shape"] for layer in m["layers"]] == c["layers"],
         "victim_speed: layers differ from the config's")
  for layer in m["layers"]:  # the same convolution, computed two ways
    expect(layer["max_grad_rel_diff"] < 1e-4,
           f"victim_speed layer {layer['shape']}: gradients differ")
    expect(_records.close(layer["speedup"],
                          layer["xla_seconds"] / layer["patch_seconds"]),
           f"victim_speed layer {layer['shape']}: speedup is not the time ratio")
  expect(_records.positive(m["matmul"]["gflops"]), "victim_speed: matmul rate")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  m = r["metrics"]
  rows = [[v["victim"], str(v["batch_size"]), f"{v['images_per_second']:.0f}",
           f"{v['flops_per_image'] / 1e9:.3g}", f"{v['achieved_gflops']:.3g}",
           f"{100 * v['fraction_of_matmul']:.0f}",
           f"{v['first_epoch_seconds']:.1f}", f"{v['epoch_seconds']:.1f}",
           f"{v['eval_seconds']:.1f}"] for v in m["victims"]]
  lines = _page.table(["victim", "batch", "train images/s", "GFLOP / image",
                       "GFLOP/s", "% of matmul rate", "epoch 1 (s, with compile)",
                       "epoch 2 (s)", "evaluation (s)"], rows, set(range(1, 9)))
  rows = [["x".join(str(d) for d in layer["shape"]),
           f"{layer['xla_gflops']:.3g}", f"{layer['patch_gflops']:.3g}",
           f"{100 * layer['patch_fraction_of_matmul']:.0f}",
           f"{layer['speedup']:.1f}x", f"{layer['max_grad_rel_diff']:.1e}"]
          for layer in m["layers"]]
  lines += ["", "One 3x3 SAME convolution, forward + backward (batch x side x "
            "channels in x out):", ""]
  lines += _page.table(["layer", "XLA conv GFLOP/s", "patch-matmul GFLOP/s",
                        "% of matmul rate", "speed-up", "max gradient rel. diff"],
                       rows, {1, 2, 3, 4, 5})
  lines += ["", f"Matmul rate of this machine, measured in the same run (a "
            f"jitted {m['matmul']['before']['n']}^2 float32 matmul, mean of before "
            f"and after): {m['matmul']['gflops']:.3g} GFLOP/s."]
  return lines, []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, victims and layers."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
