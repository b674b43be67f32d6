"""The plain float64 NTGA of benchmarks/plain_ntga.py computes ntga's loss."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import plain_ntga
from ntga import data, pgd, surrogates


def test_plain_float64_gradient_points_like_ntgas_eigh_gradient():
  """One block of 20 digits against a 30-image target sample that holds some
  of the block's own images (weight 0): the plain float64 gradient (NT's
  kernel, autodiff through one eigh) and ntga's float32 one
  (``pgd._gp_loss``, predictor eigh) point the same way."""
  ds = data.load("digits", "train", limit=40)
  blocks, target, weights = plain_ntga.layout(jax.random.key(0), ds.y, 20, 30)
  assert [len(b) for b in blocks] == [20, 20] and len(target) == 30
  idx, w = blocks[0], weights[0]
  assert 0 < w.sum() < 30  # some targets lie in the block and are held out
  xf = ds.x.astype(np.float32) / 255
  y1h = np.eye(ds.num_classes, dtype=np.float32)[ds.y]

  assert not jax.config.jax_enable_x64
  with jax.enable_x64(True):
    loss = functools.partial(plain_ntga.gp_loss,
                             kernel_fn=plain_ntga.fnn_kernel(), t=64.0)
    args = [jnp.asarray(a, jnp.float64)
            for a in (xf[idx], y1h[idx], xf[target], y1h[target], w)]
    plain = np.asarray(jax.jit(jax.grad(loss))(*args))
  assert not jax.config.jax_enable_x64  # float64 was scoped to the block
  assert plain.dtype == np.float64 and np.isfinite(plain).all()

  ours = np.asarray(jax.jit(jax.grad(lambda x: pgd._gp_loss(  # pylint: disable=protected-access
      x, jnp.asarray(y1h[idx]), jnp.ones(20), jnp.asarray(xf[target])[None],
      jnp.asarray(y1h[target])[None], jnp.asarray(w, jnp.float32)[None],
      kernel_fn=surrogates.get("fnn", 10), t=64.0, diag_reg=1e-4, loss="ce",
      predictor="eigh")))(jnp.asarray(xf[idx])), np.float64)
  a, b = plain.ravel(), ours.ravel()
  cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
  assert cosine > 0.999, cosine
  # The rows a zero-weight target pairs with still move: the block's loss
  # reaches every block image through K_nn.
  assert (np.abs(plain).reshape(20, -1).max(-1) > 0).all()
