"""Test configuration (equinox style): simulated CPU devices and a key fixture.

Four CPU devices are simulated so sharding code paths run on a laptop or CI. The
flag must be set before JAX initialises its backends, hence at import time here.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=4").strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_threefry_partitionable", True)


@pytest.fixture
def key():
  """A fresh, fixed PRNG key for each test."""
  return jax.random.key(5678)


@pytest.fixture
def getkey():
  """A callable returning a new independent key on every call."""
  state = {"key": jax.random.key(1234), "n": 0}

  def _getkey():
    state["n"] += 1
    return jax.random.fold_in(state["key"], state["n"])

  return _getkey
