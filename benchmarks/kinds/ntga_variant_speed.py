"""Kind ``ntga_variant_speed``: seconds per NTGA PGD step for setting variants.

Defense-aware NTGA (``NTGAConfig.defense_aware``) puts differentiable
stand-ins of the victim's defenses (grayscale, JPEG, crop and flip; see
:mod:`ntga.defense_aware`) in front of the kernel; this kind measures what
that costs per PGD step against plain NTGA. Every variant of the config is a
dict of :class:`ntga.pgd.NTGAConfig` fields laid over the config's common
``settings``; for each, one real step of :func:`ntga.pgd.attack_block` is
jit-compiled (``steps=1``) on one block of training images against the
target set, streamed in chunks as :func:`ntga.pgd.poison` streams it (all
target weights one: the block is held out of the target set by
construction). The block is the first ``block`` images of a class-balanced
``block + targets`` subset of the training split, the target set the rest.

Per variant: the compile (trace, lower and XLA compile, ahead of time; no
execution), one untimed warm-up call, then ``repeats`` timed calls, each with
a fresh key (``fold_in(key, repeat)``: a new crop/flip draw for ``augment``)
and waited for with ``block_until_ready``; the median counts. One block, no
``vmap`` over blocks (``poison`` adds one; it costs nothing extra per block).

Config keys: ``data`` (a spec, may start with ``{shared}``), ``surrogate``,
``block``, ``targets``, ``settings`` (NTGAConfig fields common to every
variant), ``variants`` (label -> NTGAConfig fields), ``baseline`` (the label
the ratios divide by; default ``"plain"``), ``repeats``, ``seed`` (the PRNG
key) and optionally ``channels``: 3 replicates one-channel images to three
identical channels (so grayscale and colour JPEG have work to do on a small
greyscale smoke set); omitted, the images keep their own channels.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import ntga_variant_speed
  >>> m = ntga_variant_speed.run(configs.load("ntga_variant_speed", smoke=True))  # doctest: +SKIP
  >>> [(r["variant"], round(r["ratio_to_plain"], 1)) for r in m["results"]]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from ntga.errors import ConfigError, DataError

KIND = "ntga_variant_speed"
GROUP = "speed"
N_CLASSES = 10
#: NTGAConfig fields the kind sets itself; settings and variants may not.
RESERVED = ("surrogate", "block_size", "target_size", "steps")


def with_channels(x: np.ndarray, channels: int | None) -> np.ndarray:
  """Images with ``channels`` channels: one channel replicated, or as they are.

  Args:
    x: (N, H, W, C) images.
    channels: the channels wanted; None keeps ``x``'s.

  Returns:
    ``x``, or ``x`` repeated along the channel axis when it has one channel
    and ``channels`` are asked for.

  Raises:
    ConfigError: ``channels`` is neither None, ``C``, nor a replication of
      one channel.

  Example:
    >>> with_channels(np.zeros((2, 8, 8, 1)), 3).shape
    (2, 8, 8, 3)
  """
  c = x.shape[-1]
  if channels is None or channels == c:
    return x
  if c == 1 and channels >= 1:
    return np.repeat(x, channels, axis=-1)
  raise ConfigError(f"channels: cannot make {channels} channels out of {c}")


def load_block_and_targets(spec: str, block: int, targets: int,
                           channels: int | None = None
                           ) -> tuple[np.ndarray, ...]:
  """The block and the target set: float images in [0, 1] and one-hot labels.

  Args:
    spec: a resolved data spec (``ntga.data.load``).
    block: images in the block.
    targets: images in the target set.
    channels: see :func:`with_channels`.

  Returns:
    ``(xb, yb, tx, ty)``: the first ``block`` images of a class-balanced
    ``block + targets`` subset of the training split, then the rest.

  Raises:
    ConfigError: the split holds fewer than ``block + targets`` images.

  Example:
    >>> xb, yb, tx, ty = load_block_and_targets("digits", 8, 20, channels=3)
    >>> xb.shape, tx.shape, yb.shape
    ((8, 8, 8, 3), (20, 8, 8, 3), (8, 10))
  """
  from ntga import data  # pylint: disable=g-import-not-at-top
  ds = data.load(spec, "train", limit=block + targets)
  if len(ds.y) < block + targets:
    raise ConfigError(f"{spec}: {len(ds.y)} training images, fewer than block "
                      f"+ targets = {block + targets}")
  x = with_channels(ds.x.astype(np.float32) / 255, channels)
  y = np.eye(N_CLASSES, dtype=np.float32)[ds.y]
  return x[:block], y[:block], x[block:], y[block:]


def ntga_config(config: dict[str, Any], variant: dict[str, Any],
                image_shape: tuple[int, ...]):
  """The resolved one-step :class:`ntga.pgd.NTGAConfig` of one variant.

  Args:
    config: the benchmark config (``surrogate``, ``block``, ``targets``,
      ``settings``).
    variant: NTGAConfig fields laid over ``settings``.
    image_shape: (H, W, C) of one image (for the data-dependent defaults).

  Raises:
    ConfigError: a setting the kind fixes itself (:data:`RESERVED`), or a bad
      NTGA setting.

  Example:
    >>> cfg = ntga_config({"surrogate": "fnn", "block": 8, "targets": 20,
    ...                    "settings": {"t": 512.0}}, {"defense_aware": "jpeg"},
    ...                   (8, 8, 3))
    >>> cfg.steps, cfg.defense_aware, cfg.eps == 8 / 255
    (1, 'jpeg', True)
  """
  from ntga import pgd  # pylint: disable=g-import-not-at-top
  fields = {**config["settings"], **variant}
  fixed = sorted(k for k in fields if k in RESERVED)
  if fixed:
    raise ConfigError(f"{KIND}: settings and variants may not set "
                      f"{', '.join(fixed)} (the config's own keys do)")
  try:
    cfg = pgd.NTGAConfig(surrogate=config["surrogate"],
                         block_size=config["block"],
                         target_size=config["targets"], steps=1, **fields)
  except TypeError as e:
    raise ConfigError(f"{KIND}: {e}") from e
  return cfg.resolved(image_shape)


def one_step(cfg, xb: np.ndarray, yb: np.ndarray, tx: np.ndarray,
             ty: np.ndarray) -> tuple[Callable, tuple[Any, ...], float]:
  """One PGD step of ``attack_block`` for ``cfg``, compiled ahead of time.

  Args:
    cfg: a resolved NTGAConfig with ``steps=1``.
    xb, yb: the block's images and one-hot labels.
    tx, ty: the target set's images and one-hot labels (unchunked).

  Returns:
    ``(step, args, compile_seconds)``: ``step(key, *args)`` runs the step
    (``args``: block, labels, mask and the chunked target set, on device);
    ``compile_seconds`` is what tracing, lowering and compiling took.

  Example:
    >>> step, args, _ = one_step(cfg, xb, yb, tx, ty)
    >>> x1 = step(jax.random.key(0), *args).block_until_ready()
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ntga import pgd, surrogates  # pylint: disable=g-import-not-at-top

  chunk = min(cfg.target_chunk, tx.shape[0])
  ctx, cty, ctw = pgd._chunk_target(  # pylint: disable=protected-access
      tx, ty, np.ones(tx.shape[0], np.float32), chunk)
  args = tuple(jnp.asarray(a) for a in
               (xb, yb, np.ones(xb.shape[0], np.float32), ctx, cty, ctw))
  fn = jax.jit(lambda key, *a: pgd.attack_block(
      key, *a, kernel_fn=surrogates.get(cfg.surrogate, N_CLASSES), config=cfg))
  start = time.perf_counter()
  compiled = fn.lower(jax.random.key(0), *args).compile()
  return compiled, args, time.perf_counter() - start


def time_variant(cfg, xb, yb, tx, ty, *, repeats: int,
                 seed: int) -> dict[str, Any]:
  """Compile, warm-up and ``repeats`` timed steps of one variant.

  Args:
    cfg: a resolved one-step NTGAConfig.
    xb, yb, tx, ty: as for :func:`one_step`.
    repeats: timed calls.
    seed: the PRNG seed; call ``r`` uses ``fold_in(key(seed), r + 1)``, the
      warm-up ``fold_in(key(seed), 0)``.

  Returns:
    ``seconds_per_step`` (median), ``seconds_all``, ``compile_seconds``.

  Raises:
    DataError: the warm-up step gave non-finite images.

  Example:
    >>> time_variant(cfg, xb, yb, tx, ty, repeats=3, seed=0)["seconds_per_step"]  # doctest: +SKIP
  """
  import jax  # pylint: disable=g-import-not-at-top

  step, args, compile_seconds = one_step(cfg, xb, yb, tx, ty)
  key = jax.random.key(seed)
  x1 = step(jax.random.fold_in(key, 0), *args).block_until_ready()  # warm-up
  if not np.all(np.isfinite(np.asarray(x1))):
    raise DataError(f"{KIND}: the step of {cfg.defense_aware or 'plain'} gave "
                    "non-finite images")
  times = []
  for r in range(repeats):
    k = jax.random.fold_in(key, r + 1)
    start = time.perf_counter()
    step(k, *args).block_until_ready()
    times.append(time.perf_counter() - start)
  return {"seconds_per_step": float(np.median(times)), "seconds_all": times,
          "compile_seconds": compile_seconds}


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Times one PGD step of every variant, one after the other, in this process.

  Returns:
    ``results``: per variant (in the config's order) its label, its
    ``defense_aware`` setting, the times and ``ratio_to_plain`` (its seconds
    over the baseline's); and the layout: ``image_shape``, ``target_chunk``
    and ``n_chunks`` of the baseline.

  Raises:
    ConfigError: no variants, a baseline that is not one of them, bad
      settings, or too little data.
  """
  variants, baseline = config["variants"], config.get("baseline", "plain")
  if not variants or baseline not in variants:
    raise ConfigError(f"{KIND}: the baseline {baseline!r} must be one of the "
                      f"variants ({', '.join(variants) or 'none'})")
  xb, yb, tx, ty = load_block_and_targets(
      resolve_spec(config["data"]), config["block"], config["targets"],
      config.get("channels"))
  shape = tuple(xb.shape[1:])
  cfgs = {label: ntga_config(config, v, shape) for label, v in variants.items()}
  results = []
  for label, cfg in cfgs.items():
    timed = time_variant(cfg, xb, yb, tx, ty, repeats=config["repeats"],
                         seed=config["seed"])
    results.append({"variant": label, "defense_aware": cfg.defense_aware,
                    **timed})
  base = next(r for r in results if r["variant"] == baseline)["seconds_per_step"]
  for r in results:
    r["ratio_to_plain"] = r["seconds_per_step"] / base
  chunk = min(cfgs[baseline].target_chunk, config["targets"])
  return {"results": results, "baseline": baseline, "image_shape": list(shape),
          "target_chunk": chunk, "n_chunks": -(-config["targets"] // chunk)}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless every variant of the config was timed, the
  times are positive, each median is the median of its ``repeats`` calls and
  each ratio is its seconds over the baseline's."""
  expect = _records.expect
  c, m = record["config"], record["metrics"]
  results = m["results"]
  labels = [r["variant"] for r in results]
  expect(labels == list(c["variants"]),
         f"{KIND}: variants {labels} differ from the config's "
         f"{list(c['variants'])}")
  baseline = c.get("baseline", "plain")
  expect(m["baseline"] == baseline,
         f"{KIND}: baseline {m['baseline']!r}, config says {baseline!r}")
  base = results[labels.index(baseline)]["seconds_per_step"]
  for r in results:
    what = f"{KIND} {r['variant']}"
    times = r["seconds_all"]
    expect(len(times) == c["repeats"], f"{what}: timed calls differ from repeats")
    expect(all(_records.positive(t) for t in times)
           and _records.positive(r["seconds_per_step"])
           and _records.positive(r["compile_seconds"]),
           f"{what}: a time is not positive")
    expect(_records.close(r["seconds_per_step"], float(np.median(times))),
           f"{what}: seconds_per_step is not the median of seconds_all")
    expect(_records.close(r["ratio_to_plain"], r["seconds_per_step"] / base),
           f"{what}: ratio_to_plain is not its seconds over {baseline}'s")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  c, m = r["config"], r["metrics"]
  rows = [[v["variant"], v["defense_aware"] or "-",
           f"{v['seconds_per_step']:.3g}", f"{v['ratio_to_plain']:.2f}x",
           f"{v['compile_seconds']:.3g}"] for v in m["results"]]
  shape = " x ".join(str(s) for s in m["image_shape"])
  settings = _page.value(c["settings"])
  lines = [f"Data `{c['data']}` ({shape} images), surrogate {c['surrogate']}, "
           f"a block of {c['block']}, {c['targets']} targets in "
           f"{m['n_chunks']} chunks of {m['target_chunk']}, settings: "
           f"{settings}; median of {c['repeats']} timed steps.", ""]
  lines += _page.table(["variant", "defense_aware", "s / step (median)",
                        f"x {m['baseline']}", "compile s"], rows)
  return lines, []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, every variant's step time."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
