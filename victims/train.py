"""Training and clean-test evaluation of a victim model: the loop.

The pieces live in their own modules: the config (:mod:`ntga.victims.config`),
each victim's recipe (:mod:`ntga.victims.recipes`), the defenses
(:mod:`ntga.victims.defenses`), array placement on the data mesh
(:mod:`ntga.victims.placement`), per-epoch checkpoints
(:mod:`ntga.victims.checkpoint`) and the compiled steps
(``ntga/victims/_step.py``). This module runs them and re-exports the public
names.

The data-parallel layout follows flax's NNX data-parallel example: parameters
and optimizer state are replicated, each batch is sharded along the leading
axis of a one-axis ``'data'`` mesh, and a single ``jax.jit`` train step runs on
any number of devices (one CPU included) with the same result.

Preemption: with ``checkpoint_dir`` the full training state is saved with
orbax at the end of every epoch and a restarted call continues from the latest
epoch, finishing with the same metrics as an uninterrupted run.

Several processes (``jax.distributed``): the default mesh spans every device of
every process; each process holds the whole dataset, draws the same shuffles
and builds each global batch from the rows its own devices hold.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from ntga.data._types import Dataset
from ntga.errors import ConfigError, DataError
from ntga.victims import checkpoint, placement
from ntga.victims._step import (eval_step, initial_state, loss_from_targets,
                                make_optimizer, robust_eval_step, train_step)
from ntga.victims.config import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig
from ntga.victims.placement import default_mesh
from ntga.victims.recipes import RECIPES

__all__ = [
    "TrainConfig", "train_and_evaluate", "train_step_flops", "default_mesh",
    "make_optimizer", "prepare_train_images", "loss_from_targets", "OPTIMIZERS",
    "SCHEDULES", "LOSSES", "RECIPES",
]

_HISTORY = ("test_accuracy", "test_loss", "train_loss", "train_accuracy",
            "epoch_time_s", "train_time_s")


def prepare_train_images(key: jax.Array, x: np.ndarray, y: np.ndarray,
                         num_classes: int, cfg: TrainConfig) -> np.ndarray:
  """Applies the config's data-level defense (squeezing, orthogonal projection).

  Returns uint8 images, or float32 images in [0, 1]-units for ``ortho``.

  Example:
    >>> cfg = TrainConfig.from_flat(victim="cnn", defense="bdr")
    >>> x_sq = prepare_train_images(key, x, y, 10, cfg)
  """
  return cfg.defense.prepare_images(key, x, y, num_classes)


def _check_data(train: Dataset, test: Dataset) -> None:
  for name, d in (("train", train), ("test", test)):
    if d.x.ndim != 4 or d.x.dtype != np.uint8:
      raise DataError(f"{name} images must be uint8 NHWC, got {d.x.dtype} {d.x.shape}")
    if len(d.y) != len(d.x):
      raise DataError(f"{name}: {len(d.x)} images but {len(d.y)} labels")
    if len(d.x) == 0:
      raise DataError(f"{name} set is empty")
  if train.x.shape[1:] != test.x.shape[1:]:
    raise DataError(f"train images are {train.x.shape[1:]} but test images are "
                    f"{test.x.shape[1:]} (H, W, C must match)")
  if train.num_classes != test.num_classes:
    raise DataError(f"train has {train.num_classes} classes but test has "
                    f"{test.num_classes}")
  k = train.num_classes
  for name, d in (("train", train), ("test", test)):
    if d.y.min() < 0 or d.y.max() >= k:
      raise DataError(f"{name} labels must lie in [0, {k}), got [{d.y.min()}, {d.y.max()}]")


def train_step_flops(config: TrainConfig, image_shape: tuple[int, int, int],
                     num_classes: int, batch_size: int | None = None) -> float:
  """FLOPs of one compiled training step, as XLA's cost analysis counts them.

  Args:
    config: the training config (``None`` fields take the recipe).
    image_shape: (H, W, C) of the training images.
    num_classes: class count.
    batch_size: images per step; default the config's.

  Returns:
    The floating-point operations of one step (forward, backward, optimizer
    and augmentation) on one device.

  Example:
    >>> train_step_flops(TrainConfig(victim="fast"), (32, 32, 3), 10)  # doctest: +SKIP
  """
  cfg = config.resolved()
  batch = batch_size or cfg.batch_size
  x = np.zeros((batch, *image_shape), np.uint8)
  key = jax.random.key(0)
  spec, (params, rest, opt_state), _ = initial_state(cfg, x, num_classes, 1,
                                                      key, key)
  compiled = train_step.lower(params, rest, opt_state, x,
                              np.zeros((batch,), np.int32), 0, key,
                              spec=spec).compile()
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost["flops"])


# ------------------------------------------------------------------ loop parts

def _layout(cfg: TrainConfig, n_train: int, mesh: jax.sharding.Mesh | None
            ) -> tuple[jax.sharding.Mesh, int, int]:
  """(mesh, global batch size, eval batch size): batches the mesh divides.

  Raises:
    ConfigError: the batch is smaller than the mesh.
  """
  batch = min(cfg.batch_size, n_train)
  mesh = placement.auto_mesh(mesh) if mesh is not None else default_mesh(batch)
  n_dev = mesh.devices.size
  batch -= batch % n_dev
  if batch == 0:
    raise ConfigError(f"batch size {cfg.batch_size} is smaller than the {n_dev} "
                      "devices of the mesh")
  eval_batch = max(n_dev, cfg.eval_batch_size - cfg.eval_batch_size % n_dev)
  return mesh, batch, eval_batch


def _test_batches(x: np.ndarray, y: np.ndarray, eval_batch: int,
                  sharded: NamedSharding
                  ) -> list[tuple[jax.Array, jax.Array, jax.Array]]:
  """The test set, zero-padded to whole batches, on the devices once.

  Each batch is (images, labels, mask of the real rows); the images keep
  their dtype (uint8, or float32 projected ones).
  """
  n_test = len(x)
  n_eval = math.ceil(n_test / eval_batch) * eval_batch
  x_test = np.zeros((n_eval,) + x.shape[1:], x.dtype)
  x_test[:n_test] = x
  y_test = np.zeros((n_eval,), np.int32)
  y_test[:n_test] = y
  mask_test = np.arange(n_eval) < n_test
  return [tuple(placement.put(a[i:i + eval_batch], sharded)
                for a in (x_test, y_test, mask_test))
          for i in range(0, n_eval, eval_batch)]


def _evaluate(state, batches, n_test: int, spec) -> tuple[float, float]:
  """(clean test accuracy, mean cross-entropy): every batch is dispatched and
  the two sums are read back once at the end."""
  params, rest, _ = state
  correct, loss = 0, 0.0
  for xb, yb, mb in batches:
    c, l = eval_step(params, rest, xb, yb, mb, spec=spec)
    correct, loss = correct + c, loss + l
  return (float(placement.host(correct)) / n_test,
          float(placement.host(loss)) / n_test)


def _robust_accuracy(state, batches, n_test: int, spec, key: jax.Array,
                     eps: float) -> float:
  """Test accuracy under PGD-10 at L_inf ``eps`` (see :func:`robust_eval_step`)."""
  params, rest, _ = state
  correct = 0
  for i, (xb, yb, mb) in enumerate(batches):
    correct = correct + robust_eval_step(params, rest, xb, yb, mb,
                                         jax.random.fold_in(key, i), spec=spec, eps=eps)
  return float(placement.host(correct)) / n_test


def _train_epoch(state, epoch: int, x_train, y_train, batch: int, steps: int,
                 keys: tuple[jax.Array, jax.Array], sharded: NamedSharding, spec,
                 progress: bool):
  """(state, mean train loss, mean train accuracy) after one shuffled epoch.

  ``keys`` are (shuffle, step): the epoch's permutation folds in the epoch,
  each step's augmentation key the global step.
  """
  k_shuffle, k_step = keys
  cfg = spec.cfg
  perm = np.asarray(jax.random.permutation(jax.random.fold_in(k_shuffle, epoch),
                                           len(x_train)))
  losses, accs = [], []
  bar = tqdm(range(steps), desc=f"{cfg.victim} epoch {epoch + 1}/{cfg.epochs}",
             disable=not progress, leave=False)
  for s in bar:
    idx = perm[s * batch:(s + 1) * batch]
    xb, yb = placement.put(x_train[idx], sharded), placement.put(y_train[idx], sharded)
    *state, loss, acc = train_step(*state, xb, yb, epoch * steps + s, k_step,
                                   spec=spec)
    losses.append(loss)
    accs.append(acc)
    if s:  # keep one step in flight: the bar counts finished steps
      losses[-2].block_until_ready()
  jax.block_until_ready(state[0])
  return (tuple(state), float(np.mean([placement.host(v) for v in losses])),
          float(np.mean([placement.host(v) for v in accs])))


def _resume(checkpoint_dir, key, arrays, cfg: TrainConfig, state,
            replicated: NamedSharding):
  """(store, first epoch, state, history, earlier seconds) of a run.

  Without ``checkpoint_dir`` there is no store and the run starts fresh.
  """
  hist = {name: [] for name in _HISTORY}
  if checkpoint_dir is None:
    return None, 0, state, hist, 0.0
  settings = cfg.to_flat()
  settings.pop("epochs")
  settings.pop("robust_eps")  # measured after training: not part of the run
  store = checkpoint.EpochCheckpoints(
      checkpoint_dir, checkpoint.run_fingerprint(key, arrays, settings), cfg.epochs,
      schedule_free=cfg.schedule in checkpoint.SCHEDULE_FREE and cfg.warmup_epochs == 0)
  found = store.restore(state, replicated)
  if found is None:
    return store, 0, state, hist, 0.0
  first_epoch, state, meta = found
  hist = {name: list(meta["hist"].get(name, [])) for name in hist}
  return store, first_epoch, state, hist, float(meta["elapsed_s"])


# ------------------------------------------------------------------ the loop

def train_and_evaluate(key: jax.Array, train: Dataset, test: Dataset,
                       config: TrainConfig, *, progress: bool = True,
                       mesh: jax.sharding.Mesh | None = None,
                       checkpoint_dir: str | os.PathLike | None = None
                       ) -> dict[str, Any]:
  """Trains ``config.victim`` on ``train`` and tracks clean ``test`` accuracy.

  Deterministic for a given key: the model init, epoch shuffles, augmentation,
  dropout and PGD starts all derive from ``key`` by ``fold_in`` (shuffles by
  epoch, augmentation by global step), so the result does not depend on the
  mesh size (up to float reassociation) nor on where a run was interrupted.

  Under ``jax.distributed`` every process calls this with the same arguments
  and the same (whole) data; the mesh spans all processes' devices.

  Args:
    key: PRNG key.
    train: training split (uint8 NHWC, possibly poisoned).
    test: clean test split with the same image shape and class count.
    config: a :class:`TrainConfig` (``None`` fields take the victim's recipe).
    progress: show a tqdm bar per epoch.
    mesh: a 1-axis ``'data'`` mesh; default :func:`default_mesh`. Its size must
      divide the batch size.
    checkpoint_dir: if given, the training state (parameters, batch
      statistics, RNG counters, optimizer state, epoch and the per-epoch
      metrics) is saved there with orbax after every epoch (the latest two are
      kept), and a call that finds a checkpoint of the same run continues after
      its epoch. With a ``constant`` schedule and no warm-up a finished run can
      be extended by calling again with more ``epochs``. Over several processes
      the folder must be on a file system they share.

  Returns:
    A dict with ``final_test_accuracy`` and ``peak_test_accuracy`` (fractions),
    ``peak_epoch`` (1-based), per-epoch lists ``test_accuracy``, ``test_loss``,
    ``train_loss``, ``train_accuracy``, ``epoch_time_s`` and ``train_time_s``
    (the epoch's training steps alone, evaluation excluded); ``wall_clock_s``,
    ``num_params``, ``num_devices``, ``n_train``, ``n_test``, ``steps_per_epoch``
    ``resumed_from_epoch`` (0 unless continued from a checkpoint) and
    ``config`` (the resolved config's flat form, :meth:`TrainConfig.to_flat`);
    with ``robust_eps`` set also ``robust_test_accuracy`` (a fraction, after
    the last epoch).

  Raises:
    DataError: mismatched image shapes, class counts or labels.
    ConfigError: a bad config.
    OutputError: ``checkpoint_dir`` holds checkpoints of a different run.

  Example:
    >>> from ntga import data
    >>> m = train_and_evaluate(jax.random.key(0), data.load("digits", "train"),
    ...                        data.load("digits", "test"),
    ...                        TrainConfig(victim="cnn", epochs=3))
    >>> m["final_test_accuracy"]  # doctest: +SKIP
  """
  start = time.perf_counter()
  cfg = config.resolved()
  _check_data(train, test)
  n_train, k = len(train.x), train.num_classes
  mesh, batch, eval_batch = _layout(cfg, n_train, mesh)
  steps = n_train // batch
  k_init, k_drop, k_prep, k_shuffle, k_step, k_robust = (jax.random.fold_in(key, i)
                                                          for i in range(6))
  # The defense's training images and (ortho with project_test) test images.
  x_train, x_test = cfg.defense.prepare(k_prep, train.x, train.y, k, test.x)
  y_train = np.asarray(train.y, np.int32)
  # The victim's data statistics (fit_data) come from the images the defense
  # names: the prepared ones, or (ortho) the training images as given.
  spec, state, num_params = initial_state(
      cfg, cfg.defense.fit_images(train.x, x_train), k, steps, k_init, k_drop)
  replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  state = placement.put_tree(state, replicated)
  test_batches = _test_batches(x_test, test.y, eval_batch, sharded)
  store, first_epoch, state, hist, earlier_s = _resume(
      checkpoint_dir, key, (x_train, y_train, test.x, test.y), cfg, state, replicated)
  progress = progress and jax.process_index() == 0
  for epoch in range(first_epoch, cfg.epochs):
    t0 = time.perf_counter()
    state, train_loss, train_acc = _train_epoch(
        state, epoch, x_train, y_train, batch, steps, (k_shuffle, k_step), sharded,
        spec, progress)
    train_s = time.perf_counter() - t0
    test_acc, test_loss = _evaluate(state, test_batches, len(test.x), spec)
    for name, value in zip(_HISTORY, (test_acc, test_loss, train_loss, train_acc,
                                      time.perf_counter() - t0, train_s)):
      hist[name].append(value)
    if progress:
      tqdm.write(f"{cfg.victim} epoch {epoch + 1}/{cfg.epochs}: train loss "
                 f"{train_loss:.4f} acc {train_acc:.4f} | test acc {test_acc:.4f}")
    if store is not None:
      store.save(epoch + 1, state, hist, earlier_s + time.perf_counter() - start)
  if store is not None:
    store.close()
  robust = {}
  if cfg.robust_eps is not None:
    robust["robust_test_accuracy"] = _robust_accuracy(
        state, test_batches, len(test.x), spec, k_robust, cfg.robust_eps)
    if progress:
      tqdm.write(f"{cfg.victim}: robust test acc {robust['robust_test_accuracy']:.4f} "
                 f"(PGD-10, L_inf {cfg.robust_eps:.4g})")
  peak = int(np.argmax(hist["test_accuracy"]))
  return {**robust,
      "final_test_accuracy": hist["test_accuracy"][-1],
      "peak_test_accuracy": hist["test_accuracy"][peak], "peak_epoch": peak + 1,
      **hist, "wall_clock_s": earlier_s + time.perf_counter() - start,
      "num_params": num_params, "num_devices": mesh.devices.size,
      "n_train": n_train, "n_test": len(test.x), "batch_size": batch,
      "steps_per_epoch": steps, "resumed_from_epoch": first_epoch,
      "config": cfg.to_flat(),
  }
