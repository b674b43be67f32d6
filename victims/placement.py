"""Where the training arrays live: the data mesh and host <-> device moves.

The data-parallel layout follows flax's NNX data-parallel example: parameters
and optimizer state are replicated, each batch is sharded along the leading
axis of a one-axis ``'data'`` mesh.

Several processes (``jax.distributed``): the default mesh spans every device of
every process; each process holds the whole dataset and builds each global
array from the slices its own devices hold (:func:`put`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from ntga.errors import ConfigError


def default_mesh(batch_size: int) -> jax.sharding.Mesh:
  """A 1-axis 'data' mesh over the most devices that divide ``batch_size``.

  The axis is of type Auto: the compiler propagates shardings, so the train
  step needs no per-op sharding annotations. Over several processes the mesh
  spans all of their devices, so ``batch_size`` must be a multiple of
  ``jax.device_count()``.

  Raises:
    ConfigError: several processes and a batch size their devices do not divide.

  Example:
    >>> default_mesh(128).axis_names
    ('data',)
  """
  n = jax.device_count()
  if jax.process_count() > 1 and batch_size % n:
    # Every process must own a part of the mesh: use all devices or fail.
    raise ConfigError(f"batch size {batch_size} must be a multiple of the "
                      f"{n} devices of the {jax.process_count()} processes")
  while batch_size % n:
    n -= 1
  return jax.make_mesh((n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:n])


def auto_mesh(mesh: jax.sharding.Mesh) -> jax.sharding.Mesh:
  """The same devices with a single Auto-typed 'data' axis.

  Raises:
    ConfigError: the mesh does not have exactly one axis named 'data'.
  """
  if mesh.axis_names != ("data",):
    raise ConfigError(f"the mesh must have exactly one axis named 'data', got "
                      f"{mesh.axis_names}")
  return jax.sharding.Mesh(mesh.devices, ("data",),
                           axis_types=(jax.sharding.AxisType.Auto,))


def host(a: jax.Array) -> np.ndarray:
  """A replicated array's value (also when it spans several processes)."""
  return np.asarray(a.addressable_data(0))


def put(a: np.ndarray | jax.Array, sharding: NamedSharding) -> jax.Array:
  """A global array with ``sharding`` from a value every process holds whole.

  Each process fills only its own devices' slices, so this works for meshes
  that span several processes (the multi-host case) as well as one.

  Example:
    >>> mesh = default_mesh(8)
    >>> put(np.zeros((8, 2)), NamedSharding(mesh, jax.sharding.PartitionSpec("data"))).shape
    (8, 2)
  """
  if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(put(jax.random.key_data(a), sharding),
                                    impl=jax.random.key_impl(a))
  a = np.asarray(a)
  return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])


def put_tree(tree: Any, sharding: NamedSharding) -> Any:
  """:func:`put` on every leaf of ``tree``."""
  return jax.tree.map(lambda a: put(a, sharding), tree)
