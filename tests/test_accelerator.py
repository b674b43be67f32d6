"""Accelerator checks: run on a GPU/TPU machine with

  JAX_PLATFORMS=cuda python -m pytest -m accelerator tests   (or =tpu)

They are deselected in CI (`-m 'not slow and not accelerator'`, CI has no
accelerator) and fail, rather than skip, when run without one.
"""

import jax
import numpy as np
import pytest

from ntga import pgd, data, predict, surrogates
from ntga.protocol import RunContext

pytestmark = pytest.mark.accelerator


def _require_accelerator():
  platform = jax.devices()[0].platform
  assert platform in ("gpu", "tpu", "cuda", "rocm"), (
      f"no accelerator (default device is {platform}); run with "
      "JAX_PLATFORMS=cuda or deselect with -m 'not accelerator'")


def test_ntga_runs_on_the_accelerator_and_defeats_the_gp():
  _require_accelerator()
  train, test = data.load("digits", "train"), data.load("digits", "test")
  cfg = pgd.NTGAConfig(block_size=512)
  out = pgd.poison(jax.random.key(0), train.x, train.y, cfg, RunContext(num_classes=10))
  assert np.abs(out.astype(int) - train.x).max() <= 76
  kfn = jax.jit(surrogates.get("fnn", 10))

  def acc(x):
    a = jax.device_put(x.astype(np.float32) / 255)
    b = jax.device_put(test.x.astype(np.float32) / 255)
    alpha = predict.gp_weights(kfn(a, a), jax.nn.one_hot(train.y, 10), 64.0)
    logits = kfn(b, a) @ alpha
    assert logits.devices() == {jax.devices()[0]}
    return float(np.mean(np.argmax(np.asarray(logits), -1) == test.y))

  assert acc(out) < acc(train.x) - 0.4
