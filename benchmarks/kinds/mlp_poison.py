"""Kind ``mlp_poison``: a plain ReLU MLP trained on clean and on poisoned data.

Poisons the training subset once through
:func:`ntga.attacks.pipeline.poison_dataset` (what ``ntga poison`` runs),
then trains a small multilayer perceptron (Flax NNX + optax, Adam, default
Linear initialisation, one pass over the data per epoch in a seeded random
order, the last partial batch dropped) once per seed on the clean and on the
poisoned images and tests it on the clean test split. The MLP is defined here,
not taken from :mod:`ntga.victims`: it is the simplest learner one could
point at the poison, with no recipe of its own.

Config keys: ``data`` (``spec``, ``limit``, ``test_limit``), ``attack``
(``name``, ``seed``, ``settings``), ``mlp`` (``hidden`` widths, ``epochs``,
``batch_size``, ``lr``) and ``seeds``.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import mlp_poison
  >>> m = mlp_poison.run(configs.load("ntga_mnist", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec

KIND = "mlp_poison"
GROUP = "other"
_EVAL_BATCH = 1000


@functools.lru_cache(maxsize=None)
def _mlp() -> tuple[type, Any, Any]:
  """The MLP class and its jitted train step and prediction (built once)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top

  class MLP(nnx.Module):
    """sizes[0] -> sizes[1] -> ... -> sizes[-1], ReLU between layers."""

    def __init__(self, sizes: list[int], rngs: nnx.Rngs):
      self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                              for a, b in zip(sizes, sizes[1:])])

    def __call__(self, xb):
      h = xb.reshape(xb.shape[0], -1)
      for layer in self.layers[:-1]:
        h = jax.nn.relu(layer(h))
      return self.layers[-1](h)

  @nnx.jit
  def step(model, opt, xb, yb):
    def loss_fn(m):
      return optax.softmax_cross_entropy_with_integer_labels(m(xb), yb).mean()
    opt.update(model, nnx.grad(loss_fn)(model))

  @nnx.jit
  def predict(model, xb):
    return jnp.argmax(model(xb), -1)

  return MLP, step, predict


def train_mlp(seed: int, x: np.ndarray, y: np.ndarray, x_test: np.ndarray,
              y_test: np.ndarray, *, hidden: list[int], epochs: int,
              batch_size: int, lr: float) -> float:
  """Trains a ReLU MLP with Adam and returns its final clean test accuracy.

  Args:
    seed: initialisation and batch-order seed.
    x, y: uint8 training images and their labels.
    x_test, y_test: the clean test split.
    hidden: widths of the hidden layers.
    epochs, batch_size, lr: the training schedule.
  """
  import optax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top

  mlp_cls, step, predict = _mlp()
  n_classes = int(max(y.max(), y_test.max())) + 1
  model = mlp_cls([int(np.prod(x.shape[1:])), *hidden, n_classes], nnx.Rngs(seed))
  opt = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
  xf = x.astype(np.float32) / 255
  rng = np.random.default_rng(seed)
  for _ in range(epochs):
    perm = rng.permutation(len(xf))
    for s in range(0, len(perm) - batch_size + 1, batch_size):
      idx = perm[s:s + batch_size]
      step(model, opt, xf[idx], y[idx])
  xt = x_test.astype(np.float32) / 255
  pred = np.concatenate([np.asarray(predict(model, xt[s:s + _EVAL_BATCH]))
                         for s in range(0, len(xt), _EVAL_BATCH)])
  return float(np.mean(pred == y_test))


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Poisons the subset, then trains the MLP per seed on clean and poisoned data.

  Returns:
    ``poison`` (manifest fields and ``wall_clock_s``), ``n_train``,
    ``n_test`` and the final clean test accuracy per seed of the
    ``clean``-trained and the ``poisoned``-trained MLP.
  """
  from ntga import attacks, data  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top

  d, a, mlp = config["data"], config["attack"], config["mlp"]
  spec = resolve_spec(d["spec"])
  train = data.load(spec, "train", limit=d["limit"])
  test = data.load(spec, "test", limit=d["test_limit"])
  attack = attacks.get(a["name"])
  start = time.perf_counter()
  manifest, x_p = pipeline.poison_dataset(
      attack, pipeline.build_config(attack, a["settings"]), train, seed=a["seed"],
      progress=False)
  manifest.pop("versions")
  poison = {**manifest, "wall_clock_s": time.perf_counter() - start}
  accs = {name: [train_mlp(s, xs, train.y, test.x, test.y, **mlp)
                 for s in config["seeds"]]
          for name, xs in (("clean", train.x), ("poisoned", x_p))}
  return {"poison": poison, "n_train": len(train), "n_test": len(test), **accs}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless both trainings have one accuracy in [0, 1] per
  seed and the poison is the configured attack within its eps."""
  expect = _records.expect
  c, m = record["config"], record["metrics"]
  for name in ("clean", "poisoned"):
    expect(len(m[name]) == len(c["seeds"]), f"mlp_poison: {name} runs differ from seeds")
    _records.check_accuracies(m[name], [None] * len(m[name]), f"mlp_poison {name}")
  p = m["poison"]
  expect(p["attack"] == c["attack"]["name"], f"mlp_poison: poisoned by {p['attack']!r}")
  expect(0 < p["max_abs_delta_levels"] <= round(255 * p["config"]["eps"]) + 1,
         f"mlp_poison: max delta {p['max_abs_delta_levels']} levels outside (0, eps]")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  c, m = r["config"], r["metrics"]
  seeds, mlp, p = c["seeds"], c["mlp"], m["poison"]
  n = m.get("n_train", c["data"]["limit"])
  rows = [[f"{label} {n}"] + [f"{100 * acc:.2f}" for acc in m[key]]
          + [f"{100 * float(np.mean(m[key])):.2f}"]
          for label, key in (("clean", "clean"), ("poisoned", "poisoned"))]
  widths = "-".join(str(h) for h in mlp["hidden"])
  lines = [f"Clean test accuracy (%) of the ReLU MLP (hidden {widths}; Adam lr "
           f"{mlp['lr']:g}, batch {mlp['batch_size']}, {mlp['epochs']} epochs) "
           f"on `{c['data']['spec']}`:", ""]
  lines += _page.table(["training set"] + [f"seed {s}" for s in seeds] + ["mean"],
                       rows)
  lines += ["", f"The poisoning ({p['attack']}, seed {c['attack']['seed']}; "
            f"{_page.value(p['config'])}) took {p['wall_clock_s']:.0f} s; max abs "
            f"delta {p['max_abs_delta_levels']} levels of 255."]
  return lines, []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, accuracies per seed."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
