"""Per-epoch checkpoints of victim training (orbax), for preemption.

With a checkpoint folder, :func:`ntga.victims.train.train_and_evaluate` saves
the full training state at the end of every epoch and a restarted call
continues from the latest epoch, finishing with the same metrics as an
uninterrupted run. A run is identified by :func:`run_fingerprint` (data, key and
settings up to the epoch count).

Not to be confused with the attack's block checkpoints (``ntga.io``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from ntga import io
from ntga.errors import OutputError

#: Schedules whose step sizes ignore the epoch count: a finished run with one
#: of these (and no warm-up) can be extended to more epochs.
SCHEDULE_FREE: tuple[str, ...] = ("constant",)


def run_fingerprint(key: jax.Array, arrays: Sequence[np.ndarray],
                    settings: Mapping[str, Any]) -> str:
  """Identifies a run: its settings (JSON), key data and data arrays, hashed
  (:func:`ntga.io.run_fingerprint`).

  Args:
    key: the run's PRNG key.
    arrays: the data, in a fixed order (training images and labels, test
      images and labels).
    settings: the resolved flat config without ``epochs``.

  Returns:
    A sha256 hex digest.

  Example:
    >>> run_fingerprint(jax.random.key(0), [np.zeros(3)], {"victim": "cnn"})[:8]  # doctest: +SKIP
  """
  return io.run_fingerprint(settings, key, *arrays)


def flat_state(tree: Any) -> dict[str, jax.Array]:
  """The leaves of (params, rest, opt_state) by position; PRNG keys as raw data."""
  leaves = jax.tree.leaves(tree)
  return {f"{i:05d}": (jax.random.key_data(a)
                       if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a)
          for i, a in enumerate(leaves)}


def unflat_state(template: Any, flat: Mapping[str, jax.Array]) -> Any:
  """Inverse of :func:`flat_state` with ``template``'s structure and key impls."""
  leaves, treedef = jax.tree.flatten(template)
  out = []
  for i, t in enumerate(leaves):
    a = flat[f"{i:05d}"]
    if jnp.issubdtype(t.dtype, jax.dtypes.prng_key):
      a = jax.random.wrap_key_data(a, impl=jax.random.key_impl(t))
    out.append(a)
  return jax.tree.unflatten(treedef, out)


class EpochCheckpoints:
  """The training state after each epoch, saved with orbax under a folder.

  orbax writes every checkpoint into a temporary folder and renames it when it
  is complete, so a run killed mid-save leaves the previous epoch intact. The
  latest two epochs are kept.

  Example:
    >>> store = EpochCheckpoints("ckpt", fp, epochs=3, schedule_free=True)  # doctest: +SKIP
    >>> found = store.restore(state, replicated)  # None on a fresh folder
  """

  def __init__(self, folder: str | os.PathLike, fingerprint: str, epochs: int,
               schedule_free: bool):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    self._ocp = ocp
    self.folder = os.path.abspath(os.fspath(folder))
    self.fingerprint = fingerprint
    self.epochs = epochs
    self.schedule_free = schedule_free
    self.manager = ocp.CheckpointManager(
        self.folder, options=ocp.CheckpointManagerOptions(
            max_to_keep=2, create=True, enable_async_checkpointing=False,
            cleanup_tmp_directories=True))

  def restore(self, template: Any, sharding: NamedSharding):
    """(epoch, state, meta) of the latest checkpoint, or None if there is none.

    Raises:
      OutputError: the checkpoints belong to another run, or cannot be continued
        to ``epochs``.
    """
    ocp = self._ocp
    step = self.manager.latest_step()
    if step is None:
      return None
    meta = self.manager.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore()))["meta"]
    if meta.get("fingerprint") != self.fingerprint:
      raise OutputError(f"{self.folder} holds checkpoints of a different run (data, "
                        "seed or settings differ); remove it or choose another folder")
    if step > self.epochs:
      raise OutputError(f"{self.folder} holds a checkpoint after epoch {step}, "
                        f"beyond the {self.epochs} epochs asked for")
    if meta["epochs"] != self.epochs and not self.schedule_free:
      raise OutputError(f"{self.folder} holds checkpoints of a {meta['epochs']}-epoch "
                        f"run whose learning-rate schedule depends on the epoch "
                        f"count; it cannot continue as a {self.epochs}-epoch run")
    flat = flat_state(template)
    abstract = {k: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding)
                for k, a in flat.items()}
    state = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract)))["state"]
    return step, unflat_state(template, state), meta

  def save(self, epoch: int, state: Any, hist: dict[str, list],
           elapsed_s: float) -> None:
    """Saves the state after ``epoch`` with the per-epoch metrics so far."""
    ocp = self._ocp
    meta = {"fingerprint": self.fingerprint, "epochs": self.epochs,
            "epoch": epoch, "hist": hist, "elapsed_s": elapsed_s}
    self.manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(flat_state(state)),
        meta=ocp.args.JsonSave(meta)))
    self.manager.wait_until_finished()

  def close(self) -> None:
    """Releases orbax's manager."""
    self.manager.close()
