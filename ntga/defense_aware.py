"""Differentiable stand-ins for the defenses, for defense-aware NTGA.

NTGA poisons a block of training images by ascending the loss of the NTK
Gaussian process trained on them (``ntga.pgd``). A victim that defends itself
does not train on those images but on a transformation of them: greyed or
JPEG-compressed once before training (the image shortcut squeezing of Liu,
Zhao & Larson, "Image Shortcut Squeezing: Countering Perturbative
Availability Poisons with Compression", ICML 2023,
github.com/liuzrcc/ImageShortcutSqueezing), or randomly cropped and flipped
every batch. Defense-aware NTGA puts the same transformation in front of
the kernel, K(T(x_block + delta), T_test(x_target)), so that the GP predicts
what a network trained on the *defended* poisoned data learns and the
perturbation is optimised through the defense.

:func:`transforms` builds the pair (T, T_test) for a tuple of names from
:data:`NAMES`; each mirrors what the library's victims do
(``ntga.victims.defenses`` and the training step):

* ``grayscale``: every channel becomes the ITU-R 601-2 luma
  0.299 R + 0.587 G + 0.114 B, replicated to the 3 channels the victim sees
  (one-channel images are left alone). Linear, so the kernel of the greyed
  images is the greyscale-aware kernel exactly; the victim's version also
  rounds to uint8, half a grey level at most.
* ``jpeg``: a JPEG round trip at the defense's quality (10, as ISS) through
  the differentiable codec of :mod:`ntga._diff_jpeg` (Shin & Song's
  differentiable rounding; it follows Pillow, which the victim calls).
* ``augment``: the victim's standard augmentation, a random crop after
  ``crop_pad`` px of zero padding (2 px: the ``fast`` recipe's translation)
  then a random left-right flip. A victim trains on the expectation over
  these transformations; here it is realised by expectation over
  transformation (EOT; Athalye, Engstrom, Ilyas & Kwok, "Synthesizing Robust
  Adversarial Examples", ICML 2018): every call draws one crop offset and
  one flip per image from its key, so each PGD step's gradient is a
  one-sample estimate of the expected loss's gradient. Draw a fresh key per
  step (``fold_in(key, step)``) and apply T once per loss evaluation, so the
  block's own kernel and its kernel against the targets see the same
  transformed images.

Composition follows the victim's order: the data-level squeezes first
(grayscale, then JPEG), then the per-batch crop and flip. The victim applies
none of these defenses to its test images (grayscale and JPEG transform the
training images only; crop and flip are training-time augmentations), so
T_test is the identity for every name. (The ``fast`` victim's flip
test-time augmentation belongs to its recipe, not to a defense; with
``augment`` the training side already averages over flips.)

Example:
  >>> train_fn, target_fn = transforms(("grayscale", "augment"))
  >>> k = kernel_fn(target_fn(x_target), train_fn(jax.random.fold_in(key, step), x_block))
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ntga._diff_jpeg import ROUNDINGS, dct_matrix, jpeg, quant_tables
from ntga.errors import ConfigError

__all__ = ["NAMES", "ROUNDINGS", "JPEG_QUALITY", "DC_BAND", "LUMA", "TrainFn",
           "TargetFn", "augment", "band_pass", "dct_matrix", "grayscale",
           "jpeg", "jpeg_band", "parse_names", "quant_tables", "transforms"]

#: The defenses NTGA can be made aware of, in the order the victim applies them.
NAMES: tuple[str, ...] = ("grayscale", "jpeg", "augment")

#: The quality of the victim's ``jpeg`` defense (ISS's and this library's;
#: ``ntga.victims.defenses.Jpeg`` takes its default from here).
JPEG_QUALITY: int = 10

#: The (8, 8) DCT mask of the DC coefficient alone: :func:`band_pass` with it
#: replaces every 8x8 block of a channel by its mean.
DC_BAND: np.ndarray = np.arange(64).reshape(8, 8) == 0  # True at (0, 0) only
DC_BAND.flags.writeable = False

#: ITU-R 601-2 luma weights of R, G, B (the victim's ``grayscale``, Pillow's "L").
LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)

#: ``train_fn(key, x) -> x``: float NHWC images in [0, 1] in and out.
TrainFn = Callable[[jax.Array, jax.Array], jax.Array]
#: ``target_fn(x) -> x``: float NHWC images in [0, 1] in and out.
TargetFn = Callable[[jax.Array], jax.Array]


def parse_names(names: str | Sequence[str]) -> tuple[str, ...]:
  """Validates defense names and puts them in the victim's order.

  Args:
    names: a sequence of names from :data:`NAMES`, or one comma-separated
      string of them (``"grayscale,jpeg"``); empty means none.

  Returns:
    The names, each once, in the order of :data:`NAMES`.

  Raises:
    ConfigError: an unknown or repeated name.

  Example:
    >>> parse_names("augment,grayscale")
    ('grayscale', 'augment')
  """
  if isinstance(names, str):
    names = [n.strip() for n in names.split(",") if n.strip()]
  names = list(names)
  for name in names:
    if name not in NAMES:
      raise ConfigError(f"unknown defense_aware name {name!r}; choose from "
                        f"{', '.join(NAMES)}")
  repeated = sorted({n for n in names if names.count(n) > 1})
  if repeated:
    raise ConfigError(f"defense_aware names repeated: {', '.join(repeated)}")
  return tuple(n for n in NAMES if n in names)


@jax.jit
def grayscale(x: jax.Array) -> jax.Array:
  """Replaces every channel by the luma (the victim's ``grayscale``, unrounded).

  Args:
    x: float images (N, H, W, C) in [0, 1], C in {1, 3}.

  Returns:
    Images of the same shape; with C = 3 all channels equal
    0.299 R + 0.587 G + 0.114 B, with C = 1 the input itself.

  Raises:
    ConfigError: C not 1 or 3.

  Example:
    >>> grayscale(jnp.ones((1, 2, 2, 3)) * jnp.array([1.0, 0.0, 0.0]))[0, 0, 0]
    Array([0.299, 0.299, 0.299], dtype=float32)
  """
  c = x.shape[-1]
  if c == 1:
    return x
  if c != 3:
    raise ConfigError(f"grayscale needs 1 or 3 channels, got {c}")
  luma = x @ jnp.asarray(LUMA, x.dtype)
  return jnp.repeat(luma[..., None], 3, axis=-1)


@functools.partial(jax.jit, static_argnames=("crop_pad", "flip"))
def augment(key: jax.Array, x: jax.Array, *, crop_pad: int = 2,
            flip: bool = True) -> jax.Array:
  """One draw of the victim's random crop and flip per image (EOT).

  As the victim's training step: zero-pad by ``crop_pad`` px, crop back to
  H x W at an offset uniform in [0, 2 crop_pad]^2, then flip left-right with
  probability 1/2; every image draws its own offset and flip from ``key``.

  Args:
    key: PRNG key; the same key gives the same draw.
    x: float images (N, H, W, C).
    crop_pad: padding of the crop (0: no crop).
    flip: whether to flip.

  Returns:
    Images of the same shape: each a translated (and mirrored) copy of its
    input, zeros where the translation uncovers the padding.

  Example:
    >>> x_aug = augment(jax.random.fold_in(key, step), x, crop_pad=2)
  """
  k_crop, k_flip = jax.random.split(key)
  n, h, w, _ = x.shape
  if crop_pad > 0:
    padded = jnp.pad(x, ((0, 0), (crop_pad, crop_pad), (crop_pad, crop_pad), (0, 0)))
    offsets = jax.random.randint(k_crop, (n, 2), 0, 2 * crop_pad + 1)
    rows = offsets[:, :1] + jnp.arange(h)[None, :]
    cols = offsets[:, 1:] + jnp.arange(w)[None, :]
    x = padded[jnp.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
  if flip:
    mirror = jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1))
    x = jnp.where(mirror, x[:, :, ::-1, :], x)
  return x


def jpeg_band(quality: int, eps: float) -> np.ndarray:
  """(8, 8) mask of the luma DCT coefficients whose rounding eps can flip.

  A JPEG round trip at ``quality`` keeps a perturbation only where it moves
  a quantised DCT coefficient across a rounding boundary. Coefficient (u, v)
  of an 8x8 block changes by at most ``255 eps |d_u|_1 |d_v|_1`` (in the
  codec's units) under an L_inf perturbation of ``eps`` (the sign pattern of
  its basis image), where d_u are the rows of the DCT matrix. The mask keeps
  the coefficients where that reaches half a step of the luma table, the
  ones an eps-bounded perturbation can flip from a random start. At
  quality 10 and eps 8/255 these are 16 low frequencies; the chroma planes
  are averaged over 2 x 2 pixels, a low-pass of their own.

  Args:
    quality: the defense's JPEG quality, in [1, 100].
    eps: the L_inf budget in [0, 1] pixel units.

  Returns:
    A boolean (8, 8) array in natural order (row u, column v).

  Example:
    >>> int(jpeg_band(10, 8 / 255).sum())
    16
  """
  luma, _ = quant_tables(quality)
  l1 = np.abs(dct_matrix()).sum(axis=1)
  return 255.0 * eps * np.outer(l1, l1) >= luma / 2.0


@jax.jit
def band_pass(g: jax.Array, band: jax.Array) -> jax.Array:
  """Projects images onto the DCT coefficients of ``band`` of each 8x8 block.

  Every channel is cut into the 8x8 blocks a JPEG encoder uses (aligned at
  the top left; a partial block at the right or bottom edge is padded with
  zeros and cropped after), transformed by the orthonormal DCT, multiplied
  by ``band`` and transformed back. The DCT is orthonormal, so this is the
  orthogonal projection onto those coefficients (for whole blocks).

  Args:
    g: float (N, H, W, C), e.g. a gradient with respect to images.
    band: (8, 8) mask (bool or 0/1) in natural order, see :func:`jpeg_band`.

  Returns:
    An array of g's shape.

  Example:
    >>> low = band_pass(grad, jpeg_band(10, 8 / 255))
  """
  n, h, w, c = g.shape
  ph, pw = -h % 8, -w % 8
  x = jnp.pad(g, ((0, 0), (0, ph), (0, pw), (0, 0)))
  blocks = x.reshape((n, (h + ph) // 8, 8, (w + pw) // 8, 8, c))
  d = jnp.asarray(dct_matrix(), g.dtype)
  coef = jnp.einsum("ui,naibjc,vj->naubvc", d, blocks, d)
  coef = coef * jnp.asarray(band, g.dtype)[None, None, :, None, :, None]
  back = jnp.einsum("ui,naubvc,vj->naibjc", d, coef, d)
  return back.reshape(x.shape)[:, :h, :w, :]


def _identity_target(x: jax.Array) -> jax.Array:
  """The target side: the victim tests on untransformed images."""
  return x


def transforms(names: str | Sequence[str], *, jpeg_quality: int = JPEG_QUALITY,
               jpeg_rounding: str = "ste", crop_pad: int = 2, flip: bool = True
               ) -> tuple[TrainFn, TargetFn]:
  """The training-side and target-side transforms of defense-aware NTGA.

  Args:
    names: defense names from :data:`NAMES` (a sequence or a comma-separated
      string; see :func:`parse_names`); empty gives identities (plain NTGA).
    jpeg_quality: quality of ``jpeg``, in [1, 95] like the victim's defense
      (ISS's and the library's default: 10).
    jpeg_rounding: the codec's differentiable rounding, one of
      :data:`ROUNDINGS` (``"ste"``: exact forward, identity gradient;
      ``"cubic"``: Shin & Song's smooth approximation).
    crop_pad: ``augment``'s crop padding (2: the ``fast`` recipe's
      translation; the other recipes use H // 8, 4 px at 32 px).
    flip: whether ``augment`` flips.

  Returns:
    ``(train_fn, target_fn)``: ``train_fn(key, x)`` maps a block of float
    NHWC training images in [0, 1] to what the defended victim trains on,
    composed in the victim's order (grayscale, JPEG, then crop and flip);
    ``key`` only matters for ``augment``. ``target_fn(x)`` maps target images
    to what the victim is tested on: the identity (see the module docstring).
    Both are jit-compatible.

  Raises:
    ConfigError: an unknown or repeated name, or a setting out of range.

  Example:
    >>> train_fn, target_fn = transforms("grayscale,jpeg", jpeg_quality=10)
    >>> x_def = train_fn(jax.random.key(0), x_block)
  """
  chosen = parse_names(names)
  if not 1 <= jpeg_quality <= 95:
    raise ConfigError(f"defense_aware jpeg quality must be in [1, 95], got {jpeg_quality}")
  if jpeg_rounding not in ROUNDINGS:
    raise ConfigError(f"defense_aware jpeg rounding must be one of "
                      f"{', '.join(ROUNDINGS)}, got {jpeg_rounding!r}")
  if crop_pad < 0:
    raise ConfigError(f"defense_aware crop_pad must be >= 0, got {crop_pad}")
  if "augment" in chosen and crop_pad == 0 and not flip:
    raise ConfigError("defense_aware augment with crop_pad=0 and flip=False "
                      "does nothing")

  def train_fn(key: jax.Array, x: jax.Array) -> jax.Array:
    if "grayscale" in chosen:
      x = grayscale(x)
    if "jpeg" in chosen:
      x = jpeg(x, jpeg_quality, rounding=jpeg_rounding)
    if "augment" in chosen:
      x = augment(key, x, crop_pad=crop_pad, flip=flip)
    return x

  return jax.jit(train_fn), _identity_target
