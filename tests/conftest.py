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


def _shared_data() -> "os.PathLike":
  """The read-only offline data folder: ../shared/data beside the checkout.

  ``NTGA_SHARED_DATA`` overrides it. Tests that need it fail (never skip) when
  it is missing, since CI always has it.
  """
  from pathlib import Path  # pylint: disable=g-import-not-at-top
  env = os.environ.get("NTGA_SHARED_DATA")
  return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


SHARED_DATA = _shared_data()
MNIST_DIR = str(SHARED_DATA / "mnist")
CIFAR10_JPEG = str(SHARED_DATA / "cifar10_jpeg" / "cifar10-jpeg-q75.tar.gz")
