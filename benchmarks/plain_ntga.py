"""A plain float64 NTGA: the reference that ``ntga poison`` is timed against.

This is not library code. It is the most direct implementation of the math
that :func:`ntga.pgd.poison` computes with the fnn surrogate (L_inf, no random
start), written to be read and to be timed by the ``poison_vs_plain``
benchmark:

* the same blocks and target set: ntga's host-side layout helpers
  (:func:`ntga.pgd.make_blocks`, :func:`ntga.pgd.make_target`) with the keys
  the CLI derives from ``--seed`` (``jax.random.key(seed)``);
* float64, switched on inside ``with jax.enable_x64(True):`` only;
* the kernel: neural-tangents' ``stax`` NTK of the paper's fnn
  (:func:`ntga.surrogates.fnn_layers`), K_nn and K_mn computed whole;
* the GP mean f = K_mn phi_t(K_nn) Y with phi_t(l) = (1 - exp(-l t / (n k))) / l
  on the eigenvalues of K_nn + 1e-4 * trace(K_nn) / n * I (the library's
  conventions: :func:`ntga.predict.gp_weights`), from ONE ``jnp.linalg.eigh``
  per block per step inside the differentiated loss (plain autodiff through
  ``eigh``);
* softmax cross-entropy on f, averaged over the targets outside the block
  (the block's own images weigh zero, as ``poison`` weighs them);
* PGD ascent with a jitted gradient and Python loops over blocks and steps:
  step eps / 4 along the gradient's sign, projection onto the eps-ball and
  [0, 1]; eps = :func:`ntga.protocol.default_eps` (0.3 for greyscale);
  rounding to uint8 by :func:`ntga.bounds.quantize`.

Run it like this (it writes ``x``, ``y`` and ``index`` to the .npz)::

  python -m benchmarks.plain_ntga --data digits --limit 120 --block 60 \\
      --targets 40 --steps 2 --t 64 --out /tmp/plain.npz

Example:
  >>> from benchmarks import plain_ntga
  >>> plain_ntga.main(["--data", "digits", "--limit", "40", "--block", "20",
  ...                  "--targets", "20", "--steps", "1", "--out", "p.npz"])  # doctest: +SKIP
  0
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ntga import bounds, data, pgd, surrogates
from ntga.errors import NTGAError
from ntga.protocol import default_eps

DIAG_REG = 1e-4  # relative diagonal regulariser of K_nn (the paper's)

KernelFn = Callable[[jax.Array, jax.Array], jax.Array]


def fnn_kernel() -> KernelFn:
  """neural-tangents' NTK of the paper's fnn on NHWC images (flattened).

  Returns:
    ``k(a, b) -> (len(a), len(b))``; float64 for float64 inputs.

  Example:
    >>> k = fnn_kernel()
    >>> k(x, x).shape  # doctest: +SKIP
    (20, 20)
  """
  _, _, kernel_fn = surrogates.fnn_layers()
  return lambda a, b: kernel_fn(a.reshape(a.shape[0], -1),
                                b.reshape(b.shape[0], -1), "ntk")


def layout(key: jax.Array, y: np.ndarray, block: int, targets: int
           ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
  """The blocks, the target sample and its per-block weights, as ntga lays them out.

  Run this with float64 off: the layout seeds come from ``jax.random.randint``.

  Args:
    key: the run's key, ``jax.random.key(seed)``.
    y: (N,) labels.
    block: the largest block size.
    targets: the size of the target sample.

  Returns:
    ``(blocks, target, weights)``: index arrays of the blocks, the target
    sample's indices and (n_blocks, len(target)) weights, 0 where a target
    lies in the block, 1 elsewhere.

  Raises:
    ConfigError: a block whose target set is empty once its own images are
      held out (:func:`ntga.pgd.target_weights`).

  Example:
    >>> blocks, target, w = layout(jax.random.key(0), ds.y, 60, 40)  # doctest: +SKIP
  """
  blocks = pgd.make_blocks(jax.random.fold_in(key, pgd._STREAM_BLOCKS), y, block)  # pylint: disable=protected-access
  target = pgd.make_target(jax.random.fold_in(key, pgd._STREAM_TARGET), y, targets)  # pylint: disable=protected-access
  return blocks, target, pgd.target_weights(blocks, target)


def gp_loss(x_block: jax.Array, y_block: jax.Array, tx: jax.Array,
            ty: jax.Array, tw: jax.Array, *, kernel_fn: KernelFn,
            t: float) -> jax.Array:
  """Weighted mean cross-entropy of the NTK-GP mean trained on the block.

  Args:
    x_block: (n, H, W, C) images of the block.
    y_block: (n, k) one-hot labels.
    tx: (m, H, W, C) target images.
    ty: (m, k) one-hot target labels.
    tw: (m,) target weights (0 for the block's own images).
    kernel_fn: the NTK, e.g. :func:`fnn_kernel`.
    t: GP training time (neural-tangents' convention).

  Returns:
    The scalar loss sum(w * CE) / sum(w).

  Example:
    >>> grad = jax.jit(jax.grad(functools.partial(gp_loss, kernel_fn=k, t=64.0)))  # doctest: +SKIP
  """
  n, k = y_block.shape
  k_nn = kernel_fn(x_block, x_block)
  k_reg = k_nn + DIAG_REG * jnp.trace(k_nn) / n * jnp.eye(n, dtype=k_nn.dtype)
  lam, u = jnp.linalg.eigh(k_reg)
  phi = -jnp.expm1(-lam * t / (n * k)) / lam
  alpha = u @ (phi[:, None] * (u.T @ y_block))
  logits = kernel_fn(tx, x_block) @ alpha
  ce = -jnp.sum(ty * jax.nn.log_softmax(logits), axis=-1)
  return jnp.sum(tw * ce) / jnp.sum(tw)


def attack_block(grad_fn: Callable, x0: jax.Array, y_block: jax.Array,
                 tx: jax.Array, ty: jax.Array, tw: jax.Array, *, eps: float,
                 step: float, steps: int) -> jax.Array:
  """PGD ascent on one block: ``steps`` sign steps, each projected back.

  Args:
    grad_fn: gradient of :func:`gp_loss` in its first argument.
    x0: (n, H, W, C) clean images in [0, 1].
    y_block, tx, ty, tw: as for :func:`gp_loss`.
    eps: the L_inf bound.
    step: the step size.
    steps: the number of steps.

  Returns:
    (n, H, W, C) images within eps of ``x0`` and in [0, 1].

  Example:
    >>> x = attack_block(grad, x0, y0, tx, ty, w0, eps=0.3, step=0.075, steps=10)  # doctest: +SKIP
  """
  x = x0
  for _ in range(steps):
    x = x + step * jnp.sign(grad_fn(x, y_block, tx, ty, tw))
    x = jnp.clip(jnp.clip(x, x0 - eps, x0 + eps), 0.0, 1.0)
  return x


def poison(key: jax.Array, x: np.ndarray, y: np.ndarray, num_classes: int, *,
           block: int, targets: int, steps: int, t: float) -> np.ndarray:
  """Poisons every image with plain float64 NTGA (fnn, L_inf, eps / 4 steps).

  Args:
    key: ``jax.random.key(seed)``.
    x: (N, H, W, C) uint8 clean images.
    y: (N,) labels in [0, num_classes).
    num_classes: the label count k.
    block: the largest block size.
    targets: the size of the target sample.
    steps: PGD steps per block.
    t: GP training time.

  Returns:
    (N, H, W, C) uint8 poisoned images in the input order.

  Example:
    >>> xp = poison(jax.random.key(0), ds.x, ds.y, 10, block=60, targets=40,
    ...             steps=2, t=64.0)  # doctest: +SKIP
  """
  blocks, target, weights = layout(key, y, block, targets)  # float64 still off
  eps = default_eps(x.shape[1:])
  out = x.copy()
  with jax.enable_x64(True):
    xf = jnp.asarray(x, jnp.float64) / 255.0
    y1h = jnp.eye(num_classes, dtype=jnp.float64)[y]
    tx, ty = xf[target], y1h[target]
    grad_fn = jax.jit(jax.grad(functools.partial(gp_loss, kernel_fn=fnn_kernel(),
                                                 t=t)))
    for idx, w in zip(blocks, weights):
      adv = attack_block(grad_fn, xf[idx], y1h[idx], tx, ty,
                         jnp.asarray(w, jnp.float64), eps=eps, step=eps / 4,
                         steps=steps)
      out[idx] = bounds.quantize(x[idx], np.asarray(adv), eps, "linf")
  return out


class _Parser(argparse.ArgumentParser):
  """An argument parser whose errors are one line and exit status 2."""

  def error(self, message: str):
    self.exit(2, f"plain_ntga: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
  p = _Parser(prog="python -m benchmarks.plain_ntga",
              description="Plain float64 NTGA (fnn, one eigh per block per "
              "step); writes x, y and index to OUT.npz.")
  p.add_argument("--data", required=True, help="a data spec (ntga.data.load)")
  p.add_argument("--limit", type=int, default=None,
                 help="the first N of the class-stratified order (as ntga poison)")
  p.add_argument("--block", type=int, default=512, help="largest block size (512)")
  p.add_argument("--targets", type=int, default=10000,
                 help="target sample size (10000)")
  p.add_argument("--steps", type=int, default=10, help="PGD steps (10)")
  p.add_argument("--t", type=float, default=64.0, help="GP time (64)")
  p.add_argument("--seed", type=int, default=0, help="PRNG seed (0)")
  p.add_argument("--out", required=True, help="output .npz file")
  return p


def main(argv: Sequence[str] | None = None) -> int:
  """Loads the data, poisons it, writes the .npz; returns the exit status.

  Args:
    argv: the arguments (default: ``sys.argv[1:]``).

  Returns:
    0, or 2 after a one-line error on stderr.

  Example:
    >>> main(["--data", "digits", "--limit", "40", "--block", "20",
    ...       "--targets", "20", "--steps", "1", "--out", "p.npz"])  # doctest: +SKIP
    0
  """
  p = _parser()
  args = p.parse_args(argv)
  for name, least in (("block", 2), ("targets", 1), ("steps", 1)):
    if getattr(args, name) < least:
      p.error(f"--{name} must be >= {least}, got {getattr(args, name)}")
  if not args.t > 0:
    p.error(f"--t must be > 0, got {args.t}")
  if not 0 <= args.seed < 2**32:
    p.error(f"--seed must be in [0, 2**32), got {args.seed}")
  try:
    start = time.perf_counter()
    ds = data.load(args.data, "train", limit=args.limit)
    x = poison(jax.random.key(args.seed), ds.x, ds.y, ds.num_classes,
               block=args.block, targets=args.targets, steps=args.steps,
               t=args.t)
    np.savez(args.out, x=x, y=ds.y, index=ds.index)
  except (NTGAError, OSError) as e:
    print(f"plain_ntga: error: {' '.join(str(e).split())}", file=sys.stderr)
    return 2
  delta = np.abs(x.astype(np.int32) - ds.x.astype(np.int32)).max()
  print(f"wrote {args.out}: {len(x)} images, max |delta| {delta}/255, "
        f"{time.perf_counter() - start:.1f} s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
