"""Property: written uint8 data never leaves the eps-ball (hypothesis)."""

import jax
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ntga import pgd
from ntga.protocol import RunContext


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), levels=st.integers(1, 255),
       n=st.integers(1, 6), h=st.integers(1, 5), c=st.sampled_from([1, 3]),
       spread=st.floats(0.0, 2.0))
def test_quantize_never_exceeds_linf_eps(seed, levels, n, h, c, spread):
  rng = np.random.default_rng(seed)
  eps = levels / 255 + rng.uniform(0, 0.9) / 255  # eps between levels too
  clean = rng.integers(0, 256, (n, h, h, c), dtype=np.uint8)
  adv = np.clip(clean / 255 + rng.uniform(-spread, spread, clean.shape) * eps,
                0, 1)
  adv = clean / 255 + np.clip(adv - clean / 255, -eps, eps)  # float within eps
  out = pgd.quantize(clean, adv, eps, "linf")
  assert out.dtype == np.uint8
  assert np.abs(out.astype(int) - clean).max() <= eps * 255 + 1e-9


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), eps=st.floats(0.01, 5.0),
       n=st.integers(1, 4), h=st.integers(1, 6), c=st.sampled_from([1, 3]))
def test_quantize_never_exceeds_l2_eps(seed, eps, n, h, c):
  rng = np.random.default_rng(seed)
  clean = rng.integers(0, 256, (n, h, h, c), dtype=np.uint8)
  d = rng.normal(size=clean.shape)
  d *= eps / np.linalg.norm(d.reshape(n, -1), axis=1).reshape(n, 1, 1, 1)
  adv = np.clip(clean / 255 + d, 0, 1)
  out = pgd.quantize(clean, adv, eps, "l2")
  norms = np.linalg.norm((out.astype(float) - clean).reshape(n, -1) / 255, axis=1)
  assert (norms <= eps + 1e-9).all()


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), levels=st.integers(1, 255),
       n=st.integers(4, 12), h=st.integers(2, 5), c=st.sampled_from([1, 3]),
       k=st.integers(2, 3))
def test_ntga_output_never_exceeds_eps(seed, levels, n, h, c, k):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, (n, h, h, c), dtype=np.uint8)
  y = np.arange(n) % k
  eps = levels / 255
  cfg = pgd.NTGAConfig(eps=eps, t=64.0, steps=2, block_size=4,
                          target_size=n, random_start=True)
  out = pgd.poison(jax.random.key(seed), x, y, cfg, RunContext(num_classes=k))
  assert out.dtype == np.uint8 and out.shape == x.shape
  assert np.abs(out.astype(int) - x).max() <= levels
