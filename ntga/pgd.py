"""NTGA: Neural Tangent Generalization Attack (Yuan & Wu, ICML 2021).

NTGA perturbs training images so that the NTK Gaussian-process prediction of a
wide network trained on them (``ntga.predict``) fails on held-out data. It runs
projected gradient *ascent* of the GP's loss on a target set X_m with respect
to the training pixels, one block of training examples at a time (B-NTGA).

What this implementation does differently from the authors' reference code,
on purpose:

* True PGD: every step starts from the current iterate and is projected back
  onto the eps-ball around the clean image (the reference code stepped from the
  clean image each time, i.e. it ran a single FGSM step).
* Every training example is poisoned: blocks are stratified by class and the
  last one is not dropped (blocks differ in size by at most one; the shorter
  ones are padded with masked rows that do not influence the prediction).
* The target set X_m is a class-stratified sample of the *training* data; the
  examples of the block being poisoned are masked out of it, so it is always
  held out. The test split is never touched.
* One GP solve per block per step (an eigh of K_nn, or for blocks of
  ``predict.CHEBYSHEV_FROM`` and more a Chebyshev series in K_nn that needs
  no eigh: ``NTGAConfig.predictor``); the target set streams through in
  chunks, and every kernel is computed in tiles of at most ``COLUMN_TILE``
  block images (each rematerialised in the backward pass), so memory is
  bounded whatever the block size: a step of a block of 8,192 MNIST images
  plans 0.85 GiB against 10,000 targets (fnn) and 1.8 GiB against 1,000
  (cnn, 10 GiB untiled at 4,096), besides its inputs (Chebyshev predictor).
* float32 throughout with a stable matrix-function gradient (no NaN on
  repeated eigenvalues), where the reference code needed float64.

Blocks are laid out on a leading axis that is sharded over a 1-D 'data' device
mesh, one block per device per call; each block's randomness comes from
``fold_in(key, block_id)``, so output does not depend on the device count.
Finished blocks can be checkpointed so that a killed run resumes.

``poison`` follows the attack protocol of :mod:`ntga.protocol`; its config's
:meth:`NTGAConfig.resolved` fills the paper's data-dependent defaults.

Example:

  >>> cfg = NTGAConfig(surrogate="fnn", eps=0.3, t=64.0, block_size=256)
  >>> x_poisoned = poison(jax.random.key(0), x_uint8, y, cfg)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ntga import _tiles, data, defense_aware, io, predict, surrogates
from ntga._tiles import slab_shape  # noqa: F401  (public: pgd.slab_shape)
from ntga.bounds import quantize  # noqa: F401  (public: pgd.quantize)
from ntga.errors import ConfigError, DataError, OutputError
from ntga.protocol import AttackConfig, RunContext, default_eps

# Sub-key streams: fold_in(key, stream) then fold_in(., id).
_STREAM_TARGET, _STREAM_BLOCKS, _STREAM_PGD = 1, 2, 3
# ... and of a block's key: the defense-aware transformations, per PGD step.
_STREAM_DEFENSE = 1
#: Where a JPEG-aware PGD step puts its signs (``NTGAConfig.jpeg_step``).
JPEG_STEPS = ("pixel", "band", "block")


@dataclasses.dataclass(frozen=True, kw_only=True)
class NTGAConfig(AttackConfig):
  """Settings of NTGA. Defaults follow Yuan & Wu (ICML 2021) and its code.

  NTGA splits its blocks among the processes of a ``jax.distributed`` run
  (``multi_process``); :meth:`resolved` fills the ``None`` defaults.

  Attributes:
    surrogate: ``"fnn"`` or ``"cnn"`` (``ntga.surrogates``). On a 10,000-image
      CIFAR-10 subset judged by ``fast`` (``ntga_colour_sweep``, seed 0,
      1,000 targets each) cnn at t = 8 held it at 12.0% and fnn at t = 512
      at 12.2%, with cnn's poisoning ~60x slower (2,668 s against 42 s):
      fnn stays the default.
    eps: perturbation bound in [0, 1] pixel units. ``None`` picks the paper's
      value for the data: 0.3 for greyscale (MNIST), 8/255 for colour
      (CIFAR-10). For ``norm="l2"`` (not in the paper) give it explicitly: it
      bounds each image's L2 norm.
    t: GP training time (NT's convention, see ``ntga.predict``); ``inf`` for
      kernel regression. ``None`` picks 64 for greyscale (MNIST, the
      paper's value) and for colour (CIFAR-10) 8 with the cnn surrogate (the
      paper's) or 512 with fnn. The paper used 4096 for fnn on CIFAR-10
      (``--set t=4096``); on a 10,000-image CIFAR-10 subset judged by the
      ``fast`` victim (benchmark ``ntga_colour_sweep``, seed 0, clean 71.9%)
      t = 512 held it at 11.5% against 24.8% for t = 4096, 14.8% for t = 64
      and 44.3% for t = 65,536, in line with the authors' remark that a
      smaller t suits early-stopped victims. On the whole CIFAR-10 (table
      5 of ``benchmarks/RESULTS.md``) t = 512 holds ``fast`` at 8.2% over 3
      seeds (clean 85.8%; the paper's ResNet-18 on its data: 39.7%).
    steps: PGD steps (paper: 10).
    step_size: PGD step. ``None`` means eps / 4. (The paper's code sets
      1.1 * eps / steps but, stepping from the clean image every time,
      effectively took one step of size eps; eps / 4 is standard for a true
      10-step PGD and lets the iterate reach the boundary.)
    block_size: training examples per block (paper: 512).
    target_size: size of the held-out target set X_m drawn from the training
      data (paper's code: a 10,000-example validation set).
    target_chunk: rows per streamed chunk of the target set, and of the
      block's own kernel matrix (memory, not results).
    loss: ``"ce"`` (softmax cross-entropy on the GP outputs, the paper's) or
      ``"mse"``.
    norm: threat model, ``"linf"`` (paper) or ``"l2"``.
    random_start: start PGD from a uniform random point of the eps-ball.
    defense_aware: comma-separated names of ``ntga.defense_aware.NAMES``
      (``grayscale``, ``jpeg``, ``augment``; not in the paper): the block's
      perturbed images pass through differentiable stand-ins of these victim
      defenses before the kernel, so the GP models a network trained on the
      defended poisoned data (JPEG quality 10, crop pad 2 px + flip; one
      random crop/flip per image per PGD step). ``""``: plain NTGA. Table 5
      of ``benchmarks/RESULTS.md`` judges each name in its defense's column
      on the whole CIFAR-10, and all three at once, against plain NTGA.
    jpeg_rounding: with ``jpeg`` in ``defense_aware``, the differentiable
      codec's rounding (``ntga.defense_aware.ROUNDINGS``): ``"ste"``
      (straight-through: exact forward pass, identity gradient) or
      ``"cubic"`` (Shin & Song's smooth approximation in both passes). On a
      10,000-image CIFAR-10 subset judged by ``fast`` under JPEG-10
      (benchmark ``ntga_aware_screen``, seed 0; clean 63.7%, plain NTGA
      58.2%), ``"cubic"`` held it at 47.1% and ``"ste"`` at 58.4%; with
      ``"cubic"``, t = 64 (45.5%) and 20 steps of eps/8 (45.9%) each
      helped and together gave 43.7%, a random start did not (47.8%).
    jpeg_step: with ``jpeg`` in ``defense_aware``, where each PGD step puts
      its signs (not in any paper). A JPEG-10 round trip keeps little of a
      pixel-wise sign pattern: it re-quantises every 8x8 block's DCT
      coefficients in steps of 50-255 (in 0..255 units), so a perturbation
      survives only where it moves a coefficient across a rounding boundary.
      ``"pixel"``: the plain sign of the gradient. ``"band"``: the gradient
      is first projected onto the 16 low-frequency DCT coefficients per
      block that an eps-bounded perturbation can flip
      (``ntga.defense_aware.jpeg_band``). ``"block"``: the gradient is
      summed over each 8x8 block of each channel, so the perturbation is
      constant on the codec's blocks and moves their DC coefficients
      (measured on photographs: after JPEG-10, the change of the decoded
      image has cosine 0.46 with a random blockwise sign pattern of +-8
      levels, 0.12 with a band-limited one and 0.07 with a pixel-wise one).
      With ``"ste"`` rounding none of the three beat plain NTGA on the
      ``ntga_aware_screen`` subset (pixel 58.4%, band 59.2%, block 57.6%);
      with ``"cubic"`` rounding they did not improve on the pixel step
      (pixel 47.1%, band 48.5%, block 50.2%).
    diag_reg: relative diagonal regulariser of K_nn (paper: 1e-4).
    predictor: how the GP applies phi(K_nn) to the block's labels
      (``ntga.predict.PREDICTORS``): ``"eigh"`` (exact, O(B^3)),
      ``"chebyshev"`` (a Chebyshev series, O(B^2) per term, no eigh) or
      ``"auto"``: eigh for blocks below ``predict.CHEBYSHEV_FROM`` or t = inf,
      the series otherwise (:func:`ntga.predict.resolve_predictor`).
  """

  multi_process: ClassVar[bool] = True

  surrogate: str = "fnn"
  eps: float | None = None
  t: float | None = None
  steps: int = 10
  step_size: float | None = None
  block_size: int = 512
  target_size: int = 10000
  target_chunk: int = 250
  loss: str = "ce"
  norm: str = "linf"
  random_start: bool = False
  defense_aware: str = ""
  jpeg_rounding: str = "ste"
  jpeg_step: str = "pixel"
  diag_reg: float = 1e-4
  predictor: str = "auto"

  def __post_init__(self):
    if self.surrogate not in surrogates.NAMES:
      raise ConfigError(f"surrogate must be one of {surrogates.NAMES}, "
                        f"got {self.surrogate!r}")
    if self.loss not in ("ce", "mse"):
      raise ConfigError(f"loss must be 'ce' or 'mse', got {self.loss!r}")
    if self.norm not in ("linf", "l2"):
      raise ConfigError(f"norm must be 'linf' or 'l2', got {self.norm!r}")
    if self.eps is not None and not self.eps > 0:
      raise ConfigError(f"eps must be > 0, got {self.eps}")
    if self.eps is not None and self.norm == "linf" and self.eps > 1:
      raise ConfigError(f"eps must be in (0, 1] for norm=linf, got {self.eps}")
    if self.t is not None and not self.t > 0:
      raise ConfigError(f"t must be > 0 (or inf), got {self.t}")
    for name in ("steps", "block_size", "target_size", "target_chunk"):
      if getattr(self, name) < 1:
        raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
    if self.block_size < 2:
      raise ConfigError(f"block_size must be >= 2, got {self.block_size}")
    if self.step_size is not None and not self.step_size > 0:
      raise ConfigError(f"step_size must be > 0, got {self.step_size}")
    names = defense_aware.parse_names(self.defense_aware)  # ConfigError if unknown
    # ConfigError for an unknown rounding; builds nothing until called.
    defense_aware.transforms(names, jpeg_rounding=self.jpeg_rounding)
    if self.jpeg_step not in JPEG_STEPS:
      raise ConfigError(f"jpeg_step must be one of {', '.join(JPEG_STEPS)}; "
                        f"got {self.jpeg_step!r}")
    if "jpeg" not in names and (self.jpeg_step != "pixel"
                                or self.jpeg_rounding != "ste"):
      raise ConfigError("jpeg_step and jpeg_rounding apply only with jpeg in "
                        "defense_aware; add it or drop them")
    if not self.diag_reg >= 0:
      raise ConfigError(f"diag_reg must be >= 0, got {self.diag_reg}")
    if self.predictor not in predict.PREDICTORS:
      raise ConfigError(f"predictor must be one of "
                        f"{', '.join(predict.PREDICTORS)}; got "
                        f"{self.predictor!r}")

  def resolved(self, image_shape: tuple[int, ...]) -> NTGAConfig:
    """Fills the data-dependent defaults (eps, t, step_size).

    Args:
      image_shape: (H, W, C) of one image; C == 1 counts as MNIST-like.

    Returns:
      A config with concrete ``eps``, ``t`` and ``step_size``.

    Raises:
      ConfigError: ``norm="l2"`` without an explicit eps.

    Example:
      >>> NTGAConfig().resolved((28, 28, 1)).t
      64.0
    """
    grey = image_shape[-1] == 1
    eps = self.eps
    if eps is None:
      if self.norm == "l2":
        raise ConfigError("norm=l2 needs an explicit eps (the paper only "
                          "defines L_inf budgets)")
      eps = default_eps(image_shape)
    t = self.t
    if t is None:
      t = 64.0 if grey else (512.0 if self.surrogate == "fnn" else 8.0)
    step_size = self.step_size if self.step_size is not None else eps / 4
    return dataclasses.replace(self, eps=float(eps), t=float(t),
                               step_size=float(step_size))


# --------------------------------------------------------------------------
# Block layout and target set (host-side, numpy).


def _seed(key: jax.Array, stream: int) -> int:
  sub = jax.random.fold_in(key, stream)
  return int(jax.random.randint(sub, (), 0, 2**31 - 1))


def _keyed_order(key: jax.Array, y: np.ndarray) -> np.ndarray:
  """:func:`ntga.data.stratified_order` with its seed drawn from ``key``."""
  return data.stratified_order(np.asarray(y), _seed(key, 0))


def make_blocks(key: jax.Array, y: np.ndarray, block_size: int
                ) -> list[np.ndarray]:
  """Splits all examples into class-stratified blocks of near-equal size.

  Args:
    key: PRNG key (the block stream).
    y: (N,) labels.
    block_size: the largest block size.

  Returns:
    ``max(2, ceil(N / block_size))`` sorted index arrays covering every
    example once; sizes differ by at most one. There are at least two blocks
    (for N >= 2) so that every block has held-out training data to target.
  """
  order = _keyed_order(key, y)
  # Group the shuffled order by class, then deal it out to the blocks like
  # cards: each class spreads evenly over the blocks (counts differ by at
  # most one) whatever the number of blocks and classes.
  by_class = order[np.argsort(y[order], kind="stable")]
  n_blocks = min(len(y), max(2, math.ceil(len(y) / block_size)))
  return [np.sort(by_class[b::n_blocks]) for b in range(n_blocks)]


def make_target(key: jax.Array, y: np.ndarray, size: int) -> np.ndarray:
  """Indices of a class-stratified target sample of the training data."""
  return np.sort(_keyed_order(key, y)[:size])


def target_weights(blocks: list[np.ndarray], target: np.ndarray) -> np.ndarray:
  """(n_blocks, len(target)) float32 weights: 0 where a target is in the block.

  Each block's own images are held out of its target set.

  Raises:
    ConfigError: a block whose target set is empty once they are held out.

  Example:
    >>> target_weights([np.array([0, 1]), np.array([2, 3])], np.array([1, 2, 4]))
    array([[0., 1., 1.],
           [1., 0., 1.]], dtype=float32)
  """
  weights = np.stack([1.0 - np.isin(target, idx) for idx in blocks]
                     ).astype(np.float32)
  if (weights.sum(-1) == 0).any():
    raise ConfigError("the target set is empty once a block's own examples "
                      "are held out; use more data or a larger target_size")
  return weights


# --------------------------------------------------------------------------
# The jit-compiled per-block attack.


# Columns of a kernel tile: K_nn tiles and K_mn chunks pair at most this many
# block images at a time, so that the intermediates of one kernel call (the
# cnn surrogate keeps one entry per pixel per image pair) stay the size of a
# (rows x COLUMN_TILE) tile whatever the block size.
COLUMN_TILE = 512


def tiled_kernel(kernel_fn: Callable, a: jax.Array, b: jax.Array, *,
                 columns: int = COLUMN_TILE) -> jax.Array:
  """K(a, b) computed ``columns`` images of ``b`` at a time.

  Each tile is rematerialised in the backward pass, so peak memory follows
  len(a) x columns instead of len(a) x len(b) intermediates. Values are those
  of ``kernel_fn(a, b)``.

  Args:
    kernel_fn: the surrogate's NTK function.
    a: (n1, ...) images (rows of the result).
    b: (n2, ...) images (columns), cut into tiles of at most ``columns``.
    columns: the most columns one kernel call computes.

  Returns:
    The (n1, n2) kernel.

  Example:
    >>> k = tiled_kernel(surrogates.get("cnn", 10), x_targets, x_block)
  """
  return _tiles.tiled(kernel_fn, a, b, rows=a.shape[0], cols=columns)


def block_tiles(n: int, chunk: int, columns: int = COLUMN_TILE
                ) -> tuple[int, int]:
  """(number of tiles, images per side) :func:`block_kernel` computes.

  A block of ``n`` images is cut into ``p`` pieces of at most
  ``min(chunk, columns)`` images, and K_nn's upper triangle of
  ``p (p + 1) / 2`` square tiles is computed.
  """
  p, rows = _tiles.slab_shape(n, min(chunk, columns))
  return p * (p + 1) // 2, rows


def block_kernel(kernel_fn: Callable, x: jax.Array, *, chunk: int,
                 columns: int = COLUMN_TILE) -> jax.Array:
  """K(x, x) computed in square tiles, its upper triangle only.

  The block is cut into ``p`` equal pieces of at most ``min(chunk,
  columns)`` images (padded with copies, dropped afterwards); the
  ``p (p + 1) / 2`` tiles K(piece_i, piece_j), i <= j, are computed one
  after the other, each rematerialised in the backward pass, and the lower
  triangle is their transpose. So the kernel costs about half of n x n
  pairs, peak memory follows one tile's intermediates (the cnn surrogate's
  hold one entry per pixel per pair), and the only n x n array is the kernel
  itself. The values are those of ``kernel_fn(x, x)``, symmetric off the
  diagonal tiles.

  Args:
    kernel_fn: the surrogate's NTK function.
    x: (n, ...) images of a block.
    chunk: the most rows one tile holds.
    columns: the most columns one kernel call computes.

  Returns:
    The (n, n) kernel.

  Example:
    >>> k_nn = block_kernel(surrogates.get("fnn", 10), x_block, chunk=250)
  """
  n = x.shape[0]
  size = min(chunk, columns)
  if n <= size:
    return kernel_fn(x, x)
  p, rows = _tiles.slab_shape(n, size)
  xs = _tiles.pieces(x, size)
  i, j = (jnp.asarray(a, jnp.int32) for a in np.triu_indices(p))
  upper = jax.lax.map(jax.checkpoint(lambda ij: kernel_fn(xs[ij[0]], xs[ij[1]])),
                      (i, j))
  k = jnp.zeros((p, p, rows, rows), upper.dtype)
  k = k.at[j, i].set(jnp.swapaxes(upper, 1, 2)).at[i, j].set(upper)
  return jnp.swapaxes(k, 1, 2).reshape(p * rows, p * rows)[:n, :n]


def _gp_loss(x_block, y_block, mask, tx, ty, tw, *, kernel_fn, t, diag_reg,
             loss, predictor="auto", columns=COLUMN_TILE):
  """Mean loss of the GP trained on one block, over the weighted target set.

  Args:
    x_block: (B, H, W, C) float images of the block (padding rows allowed).
    y_block: (B, k) one-hot labels.
    mask: (B,) 1 for real rows, 0 for padding.
    tx, ty, tw: target images, one-hot labels and weights, laid out as
      (n_chunks, chunk, ...).
    predictor: ``ntga.predict.PREDICTORS`` name.
    columns: the most block images one kernel call pairs with (see
      :func:`tiled_kernel`).
  """
  k_nn = block_kernel(kernel_fn, x_block, chunk=tx.shape[1], columns=columns)
  alpha = predict.gp_weights(k_nn, y_block, t, diag_reg, mask,
                             predictor=predictor)

  @jax.checkpoint
  def chunk_loss(total, chunk):
    cx, cy, cw = chunk
    logits = tiled_kernel(kernel_fn, cx, x_block, columns=columns) @ alpha
    if loss == "ce":
      per = -jnp.sum(cy * jax.nn.log_softmax(logits), axis=-1)
    else:
      per = jnp.sum((logits - cy) ** 2, axis=-1)
    return total + jnp.sum(per * cw), None

  total, _ = jax.lax.scan(chunk_loss, jnp.zeros((), x_block.dtype),
                          (tx, ty, tw))
  return total / jnp.maximum(jnp.sum(tw), 1.0)


def _project(x, x0, eps, norm):
  """Projects ``x`` onto the eps-ball around ``x0`` intersected with [0,1]."""
  if norm == "linf":
    x = jnp.clip(x, x0 - eps, x0 + eps)
  else:
    delta = x - x0
    axes = tuple(range(1, x.ndim))
    nrm = jnp.sqrt(jnp.sum(delta**2, axis=axes, keepdims=True))
    x = x0 + delta * jnp.minimum(1.0, eps / jnp.maximum(nrm, 1e-12))
  return jnp.clip(x, 0.0, 1.0)


def _random_start(key, x0, eps, norm):
  if norm == "linf":
    delta = jax.random.uniform(key, x0.shape, x0.dtype, -eps, eps)
  else:
    k1, k2 = jax.random.split(key)
    d = jax.random.normal(k1, x0.shape, x0.dtype)
    axes = tuple(range(1, x0.ndim))
    d = d / jnp.sqrt(jnp.sum(d**2, axis=axes, keepdims=True))
    size = x0[0].size
    r = jax.random.uniform(k2, (x0.shape[0],) + (1,) * (x0.ndim - 1),
                           x0.dtype) ** (1.0 / size)
    delta = d * r * eps
  return _project(x0 + delta, x0, eps, norm)


def _step_band(jpeg_step: str, eps: float) -> np.ndarray | None:
  """The (8, 8) DCT mask a ``jpeg_step`` projects the gradient onto."""
  if jpeg_step == "band":
    return defense_aware.jpeg_band(defense_aware.JPEG_QUALITY, eps)
  if jpeg_step == "block":
    return defense_aware.DC_BAND  # the block sum, up to a factor
  return None


def attack_block(key: jax.Array, x0: jax.Array, y_block: jax.Array,
                 mask: jax.Array, tx: jax.Array, ty: jax.Array, tw: jax.Array,
                 *, kernel_fn: Callable, config: NTGAConfig) -> jax.Array:
  """Runs PGD ascent of the GP loss on one block.

  Args:
    key: the block's key (``fold_in(pgd_key, block_id)``).
    x0: (B, H, W, C) clean float32 images in [0, 1].
    y_block: (B, k) one-hot labels.
    mask: (B,) 1 for real rows, 0 for padding rows.
    tx, ty, tw: target set chunks, (n_chunks, chunk, ...).
    kernel_fn: the surrogate's NTK function.
    config: a resolved :class:`NTGAConfig`.

  Returns:
    (B, H, W, C) poisoned float images within the eps-ball and [0, 1].
  """
  loss_fn = lambda x: _gp_loss(x, y_block, mask, tx, ty, tw,
                               kernel_fn=kernel_fn, t=config.t,
                               diag_reg=config.diag_reg, loss=config.loss,
                               predictor=config.predictor)
  names = defense_aware.parse_names(config.defense_aware)
  if names:
    defended, _ = defense_aware.transforms(names,
                                           jpeg_rounding=config.jpeg_rounding)
    grad_fn = lambda x, k: jax.grad(lambda x: loss_fn(defended(k, x)))(x)  # noqa: E731
  else:
    grad_fn = lambda x, k: jax.grad(loss_fn)(x)  # noqa: E731
  eps, step, norm = config.eps, config.step_size, config.norm
  x = _random_start(key, x0, eps, norm) if config.random_start else x0
  defense_key = jax.random.fold_in(key, _STREAM_DEFENSE)
  band = _step_band(config.jpeg_step, eps)

  def body(i, x):
    g = grad_fn(x, jax.random.fold_in(defense_key, i))
    if band is not None:
      g = defense_aware.band_pass(g, band)
    if norm == "linf":
      x = x + step * jnp.sign(g)
    else:
      axes = tuple(range(1, x.ndim))
      gn = jnp.sqrt(jnp.sum(g**2, axis=axes, keepdims=True))
      x = x + step * g / jnp.maximum(gn, 1e-12)
    return _project(x, x0, eps, norm)

  return jax.lax.fori_loop(0, config.steps, body, x)


# --------------------------------------------------------------------------
# Checkpoints.


def _fingerprint(key, x, y, config) -> str:
  return io.run_fingerprint(config, key, x, y)


class _BlockStore:
  """Per-block results under a folder, written atomically."""

  def __init__(self, folder: str | os.PathLike, fingerprint: str):
    self.folder = io.claim_checkpoints(folder, fingerprint)

  def path(self, block_id: int) -> Path:
    return self.folder / f"block_{block_id:06d}.npy"

  def load(self, block_id: int) -> np.ndarray | None:
    p = self.path(block_id)
    return np.load(p) if p.exists() else None

  def save(self, block_id: int, rows: np.ndarray) -> None:
    io.atomic_write(self.path(block_id), lambda f: np.save(f, rows))


# --------------------------------------------------------------------------
# The public poison function.


def _chunk_target(xf, y1h, weights, chunk):
  """Pads the target set to whole chunks and reshapes to (n_chunks, chunk)."""
  t = xf.shape[0]
  n_chunks = math.ceil(t / chunk)
  pad = n_chunks * chunk - t
  if pad:
    xf = np.concatenate([xf, np.repeat(xf[:1], pad, 0)])
    y1h = np.concatenate([y1h, np.repeat(y1h[:1], pad, 0)])
    weights = np.concatenate([weights, np.zeros(weights.shape[:-1] + (pad,),
                                                weights.dtype)], axis=-1)
  xs = xf.reshape((n_chunks, chunk) + xf.shape[1:])
  ys = y1h.reshape((n_chunks, chunk) + y1h.shape[1:])
  ws = weights.reshape(weights.shape[:-1] + (n_chunks, chunk))
  return xs, ys, ws


def _default_mesh() -> jax.sharding.Mesh:
  return jax.make_mesh((jax.local_device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.local_devices())


@functools.lru_cache(maxsize=16)
def _block_runner(kernel_fn: Callable, config: NTGAConfig,
                  shard: jax.sharding.NamedSharding) -> Callable:
  """:func:`attack_block` over a device-sharded batch of blocks, jitted.

  Cached per (kernel function, resolved config, sharding), so that repeated
  :func:`poison` calls with the same settings (a notebook, a sweep) reuse
  one compiled program instead of tracing and compiling it again.
  """
  one = functools.partial(attack_block, kernel_fn=kernel_fn, config=config)
  return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None, None, 0)),
                 out_shardings=shard)


def poison(key: jax.Array, x: np.ndarray, y: np.ndarray, config: NTGAConfig,
           context: RunContext = RunContext(), *,
           mesh: jax.sharding.Mesh | None = None) -> np.ndarray:
  """Poisons every training image with NTGA.

  Args:
    key: PRNG key; target set, block layout and PGD starts derive from it.
    x: (N, H, W, C) uint8 clean training images.
    y: (N,) int labels.
    config: :class:`NTGAConfig`; ``None`` fields get the paper's defaults for
      the data (see :meth:`NTGAConfig.resolved`).
    context: ``num_classes`` (default ``max(y) + 1``) sizes the one-hot
      targets; with ``checkpoint_dir`` each finished block is saved there and
      blocks already there (from a killed run with the same inputs) are
      skipped; ``progress`` shows a tqdm bar over blocks.
    mesh: 1-D device mesh with axis 'data' over which blocks are sharded
      (default: all local devices).

  Returns:
    (N, H, W, C) uint8 poisoned images in the input order, each within eps of
    its clean image after rounding.

  Raises:
    DataError: x is not uint8 NHWC, labels are not (N,) integers in
      ``[0, num_classes)``, or there is only one class.
    ConfigError: bad settings (see :class:`NTGAConfig`).

  Example:
    >>> xp = poison(jax.random.key(0), ds.x, ds.y, NTGAConfig(block_size=256),
    ...             RunContext(num_classes=ds.num_classes))
  """
  num_classes = context.num_classes
  checkpoint_dir = context.checkpoint_dir
  x, y = data.check_arrays(x, y, num_classes)
  num_classes = int(y.max()) + 1 if num_classes is None else num_classes
  if num_classes < 2:
    raise DataError("NTGA needs at least 2 classes: with one, the GP's loss "
                    "has no gradient and poisoning would change nothing")
  cfg = config.resolved(x.shape[1:])
  kernel_fn = surrogates.get(cfg.surrogate, num_classes)

  blocks = make_blocks(jax.random.fold_in(key, _STREAM_BLOCKS), y,
                       cfg.block_size)
  target = make_target(jax.random.fold_in(key, _STREAM_TARGET), y,
                       cfg.target_size)
  weights = target_weights(blocks, target)

  xf = x.astype(np.float32) / 255.0
  y1h = np.eye(num_classes, dtype=np.float32)[y]
  chunk = min(cfg.target_chunk, len(target))
  tx, ty, tw = _chunk_target(xf[target], y1h[target], weights, chunk)

  mesh = _default_mesh() if mesh is None else mesh
  n_dev = mesh.devices.size
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  run = _block_runner(kernel_fn, cfg, shard)
  tx_dev = jax.device_put(tx, repl)
  ty_dev = jax.device_put(ty, repl)

  n_proc, proc = jax.process_count(), jax.process_index()
  if n_proc > 1 and checkpoint_dir is None:
    raise ConfigError("NTGA over several processes needs a checkpoint_dir "
                      "on a file system that every process shares")
  store = None
  if checkpoint_dir is not None:
    store = _BlockStore(checkpoint_dir, _fingerprint(key, x, y, cfg))
  out = x.copy()
  todo = []
  for b, idx in enumerate(blocks):
    saved = store.load(b) if store is not None else None
    if saved is not None and saved.shape == x[idx].shape:
      out[idx] = saved
    else:
      todo.append(b)
  # Several processes (jax.distributed): each poisons the blocks whose id is
  # its process index modulo the process count; results meet in the store.
  others = [b for b in todo if b % n_proc != proc]
  todo = [b for b in todo if b % n_proc == proc]

  size = max(len(b) for b in blocks)
  pgd_key = jax.random.fold_in(key, _STREAM_PGD)
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
  done = len(blocks) - len(todo) - len(others)
  bar = tqdm(total=done + len(todo), initial=done,
             desc=f"ntga[{cfg.surrogate}]", unit="block",
             disable=not context.progress)
  for start in range(0, len(todo), n_dev):
    group = todo[start:start + n_dev]
    ids = group + [group[-1]] * (n_dev - len(group))  # pad the last group
    xb = np.zeros((n_dev, size) + x.shape[1:], np.float32)
    yb = np.zeros((n_dev, size, num_classes), np.float32)
    mb = np.zeros((n_dev, size), np.float32)
    for i, b in enumerate(ids):
      idx = blocks[b]
      xb[i, :len(idx)], yb[i, :len(idx)], mb[i, :len(idx)] = xf[idx], y1h[idx], 1
      xb[i, len(idx):] = xf[idx[0]]
    keys = jax.vmap(lambda b: jax.random.fold_in(pgd_key, b))(jnp.asarray(ids))
    keys, xb, yb, mb, wb = (jax.device_put(a, shard)
                            for a in (keys, xb, yb, mb, tw[ids]))
    adv = np.asarray(run(keys, xb, yb, mb, tx_dev, ty_dev, wb))
    if not np.isfinite(adv).all():
      why = "a NaN or inf in the surrogate's gradient"
      if predict.resolve_predictor(cfg.predictor, size, cfg.t) == "chebyshev":
        why += (f", or a spectrum the chebyshev predictor cannot resolve in "
                f"{predict.CHEBYSHEV_MAX_DEGREE} terms: try predictor=eigh")
      raise FloatingPointError(
          f"NTGA produced non-finite pixels in block(s) {list(group)} "
          f"({why}); nothing was written for them")
    for i, b in enumerate(group):
      idx = blocks[b]
      rows = quantize(x[idx], adv[i, :len(idx)], cfg.eps, cfg.norm)
      out[idx] = rows
      if store is not None:
        store.save(b, rows)
      bar.update(1)
  bar.close()
  if n_proc > 1:
    _gather_from_store(store, blocks, others, out)
  return out


def _gather_from_store(store: _BlockStore, blocks: list[np.ndarray],
                       others: list[int], out: np.ndarray) -> None:
  """Waits for every process, then reads the blocks the others poisoned."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  multihost_utils.sync_global_devices("ntga: blocks written")
  for b in others:
    rows = store.load(b)
    if rows is None:
      raise OutputError(f"block {b} is missing from {store.folder} after "
                        "every process finished")
    out[blocks[b]] = rows
  # Nobody may remove the store (ntga.attacks.pipeline.remove_checkpoints, after
  # the output is written) before all have read it.
  multihost_utils.sync_global_devices("ntga: blocks read")
