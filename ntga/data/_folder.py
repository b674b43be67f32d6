"""Image folders, on disk or inside a tar archive.

Two layouts are recognised:

* ``ROOT/<split>/<class>/<image>`` (e.g. ``train/`` and ``test/``): the
  requested split's folder is read; a missing one is an error.
* ``ROOT/<class>/<image>``: a single split, returned for whatever split is
  asked (so ``ROOT/test`` can itself be passed as the test spec).

A ``<split>`` level is recognised when one of its folders is named like a
split (train, test, val, valid, validation) or like the requested split.
Wrapper folders with nothing but one sub-folder (``cifar10_jpg/`` in an
archive) are stepped through. Images are files ending in .png, .jpg or .jpeg
(any case); other files and names starting with ``.`` are ignored.

Classes are sorted by folder name and files by file name within a class; that
order defines each image's position in the split (``Dataset.index``). Images
are decoded with Pillow. Greyscale ("1", "L", "LA") images stay one channel;
if any image of the split is in colour (RGB, RGBA, P, CMYK, ...) every image
becomes RGB, greyscale ones by repeating their channel (as Pillow's "L" to
"RGB" conversion does). All images must share one size.

Transparency: an alpha channel (RGBA, LA, PA, or a palette image with a
transparent colour) that is fully opaque carries nothing and is dropped. An
image with any pixel less than fully opaque is an error: ntga does not guess
the background it would be seen on, so flatten such images first (for
example ``Image.alpha_composite`` onto a white or black background) or save
them without alpha.

Each image keeps its name: :attr:`Dataset.paths` holds its path relative to
the split's class folders (``"automobile/0000.png"``), which ``ntga poison
--png`` mirrors and ``train.npz`` stores.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
import zlib
from collections.abc import Callable

import numpy as np

from ntga.data._arrays import make_dataset
from ntga.data._limit import limit_positions
from ntga.data._types import Dataset
from ntga.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
SPLIT_NAMES = frozenset({"train", "test", "val", "valid", "validation"})
_GREY_MODES = ("1", "L", "LA", "La")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_UNSUPPORTED_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_PROGRESS_MIN_IMAGES = 5000


def is_image_name(name: str) -> bool:
  """Whether a file name has an image extension (.png/.jpg/.jpeg, any case)."""
  return name.lower().endswith(IMAGE_EXTENSIONS)


def is_tar_name(name: str) -> bool:
  """Whether a file name looks like a tar archive (.tar, .tar.gz, .tgz)."""
  return name.lower().endswith(TAR_SUFFIXES)


class ImageTree:
  """The image files and folders of a directory or archive, by relative path.

  Attributes:
    images: relative POSIX paths of image files.
    dirs: relative POSIX paths of folders.
    read: maps an image path to its bytes.
    where: maps a relative path to the name used in error messages.
  """

  def __init__(self, images: list[str], dirs: set[str], read: Callable[[str], bytes],
               where: Callable[[str], str]):
    self.images = images
    self.dirs = dirs
    self.read = read
    self.where = where


def _hidden(rel: str) -> bool:
  return any(part.startswith(".") for part in rel.split("/"))


def dir_tree(root: str) -> ImageTree:
  """Lists a directory's image files and folders (no decoding yet)."""
  images, dirs = [], set()
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
    rel_dir = "" if rel_dir == "." else rel_dir + "/"
    dirs.update(rel_dir + d for d in dirnames)
    images.extend(rel_dir + f for f in filenames if is_image_name(f) and not f.startswith("."))

  def read(rel: str) -> bytes:
    path = os.path.join(root, rel)
    try:
      with open(path, "rb") as f:
        return f.read()
    except OSError as e:
      raise DataError(f"{path}: cannot read: {e}") from e

  return ImageTree(images, dirs, read, lambda rel: os.path.join(root, rel))


def read_tar(path: str, keep: Callable[[str], bool]) -> tuple[dict[str, bytes], set[str]]:
  """Reads an archive in one sequential pass, without extracting to disk.

  Args:
    path: a .tar, .tar.gz or .tgz file.
    keep: which regular-file members (normalised relative path) to read.

  Returns:
    ``({member path: bytes} for kept files, {folder paths})``; hidden members
    and members escaping the archive root are skipped.
  """
  files, dirs = {}, set()
  try:
    with tarfile.open(path, mode="r|*") as tf:
      for member in tf:
        name = posixpath.normpath(member.name.lstrip("/"))
        if name in (".", "") or name.startswith("..") or _hidden(name):
          continue
        if member.isdir():
          dirs.add(name)
        elif member.isfile():
          parent = posixpath.dirname(name)
          while parent:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
          if keep(name):
            files[name] = tf.extractfile(member).read()
  except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
    raise DataError(f"{path}: cannot read archive: {e}") from e
  return files, dirs


def tar_tree(path: str, files: dict[str, bytes], dirs: set[str]) -> ImageTree:
  """An :class:`ImageTree` over the image members :func:`read_tar` returned."""
  images = [n for n in files if is_image_name(posixpath.basename(n))]
  return ImageTree(images, dirs, files.__getitem__, lambda rel: f"{path}:{rel}")


def _class_root(tree: ImageTree, split: str, where: str, require_split: bool = False) -> str:
  """The relative folder whose sub-folders are the classes of ``split``.

  With ``require_split`` a one-split tree (``<class>/<image>``) is an error.
  """
  if not tree.images:
    raise DataError(f"{where}: no .png/.jpg/.jpeg images found")
  prefix = ""
  paths = [p.split("/") for p in tree.images]
  while True:
    depths = {len(p) for p in paths}
    tops = {p[0] for p in paths}
    if depths == {2}:
      if require_split:
        raise DataError(f"{where}: one split of <class>/<image> folders, not a separate "
                        f"{split!r} split")
      return prefix
    if depths == {3} and tops & (SPLIT_NAMES | {split}):
      if split not in tops:
        raise DataError(f"{where}: no {split!r} split folder (found: {', '.join(sorted(tops))})")
      return f"{prefix}{split}/"
    if len(tops) == 1 and min(depths) >= 3:
      prefix += paths[0][0] + "/"
      paths = [p[1:] for p in paths]
      continue
    if depths == {3}:
      raise DataError(f"{where}: images sit two folders deep but no folder is named like a split "
                      f"({', '.join(sorted(SPLIT_NAMES | {split}))}); pass the split's folder itself")
    shallow = min(paths, key=len)
    raise DataError(f"{tree.where(prefix + '/'.join(shallow))}: image outside the expected layout "
                    f"<class>/<image> or <split>/<class>/<image>")


def _check_opaque(im, where: str) -> None:
  """Raises DataError if a Pillow image has any pixel less than fully opaque.

  Images without an alpha channel (and palette images without a transparent
  colour) pass at once; for the others the alpha channel is read.
  """
  if im.mode not in _ALPHA_MODES and "transparency" not in im.info:
    return
  rgba = im.convert("LA" if im.mode in _GREY_MODES else "RGBA")
  low = rgba.getchannel("A").getextrema()[0]
  if low < 255:
    raise DataError(f"{where}: image has transparent pixels (mode {im.mode}, alpha down to "
                    f"{low}); flatten it onto a background or save it without alpha")


def _decode(raw: bytes, where: str) -> np.ndarray:
  """Decodes one image to uint8 (H, W) greyscale or (H, W, 3) colour."""
  # Pillow is only needed for image folders; import it here to keep
  # `import ntga.data` light.
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(io.BytesIO(raw)) as im:
      if im.mode in _UNSUPPORTED_MODES:
        raise DataError(f"{where}: image mode {im.mode} (16-bit or float) is not supported; "
                        f"save 8-bit greyscale or RGB")
      _check_opaque(im, where)
      target = "L" if im.mode in _GREY_MODES else "RGB"
      return np.asarray(im if im.mode == target else im.convert(target), dtype=np.uint8)
  except _pillow_errors() as e:
    raise _image_error(e, where) from e


def _is_colour(raw: bytes, where: str) -> bool:
  """Whether an image decodes to colour, from its header alone."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(io.BytesIO(raw)) as im:
      return im.mode not in _GREY_MODES
  except _pillow_errors() as e:
    raise _image_error(e, where) from e


def _pillow_errors() -> tuple[type[Exception], ...]:
  """What Pillow raises for an image it cannot read (opening or decoding)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  return (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _image_error(e: Exception, where: str) -> DataError:
  """The one-line error for an image Pillow cannot read."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if isinstance(e, Image.UnidentifiedImageError):  # its text names a BytesIO object
    return DataError(f"{where}: unreadable or corrupt image: not an image format "
                     f"Pillow recognises")
  return DataError(f"{where}: unreadable or corrupt image: {e}")


def _decode_all(tree: ImageTree, rels: list[str]) -> list[np.ndarray]:
  # Serial on purpose: for small images Pillow's per-call overhead holds the
  # GIL, and threads or processes measured slower than one loop here.
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  bar = tqdm(rels, desc="decoding images", unit="img", leave=False,
             disable=len(rels) < _PROGRESS_MIN_IMAGES)
  return [_decode(tree.read(rel), tree.where(rel)) for rel in bar]


def load_tree_split(tree: ImageTree, split: str, where: str,
                    require_split: bool = False, limit: int | None = None,
                    seed: int = 0) -> Dataset:
  """Loads one split of an image tree (see the module docstring).

  Args:
    tree: the listed directory or archive.
    split: split name, e.g. ``"train"``.
    where: the directory or archive, named in error messages.
    require_split: refuse a one-split tree instead of returning it.
    limit, seed: keep only the rows :func:`ntga.data._limit.limit_positions`
      picks from the labels (the folder names), and decode only those (when
      all of them are grey, the others' headers say whether the split has
      colour images); the result equals ``apply_limit`` of the whole split.

  Returns:
    uint8 (N, H, W, 1 or 3) images, int64 labels, sorted class-folder names,
    each image's ``<class>/<file>`` path, and its position in the split.
  """
  root = _class_root(tree, split, where, require_split)
  by_class: dict[str, list[str]] = {}
  for d in tree.dirs:
    if d.startswith(root) and "/" not in d[len(root):]:
      by_class.setdefault(d[len(root):], [])
  for rel in tree.images:
    if rel.startswith(root):
      cls, name = rel[len(root):].split("/")
      by_class.setdefault(cls, []).append(name)
  class_names = sorted(by_class)
  rels, labels = [], []
  for label, cls in enumerate(class_names):
    names = sorted(by_class[cls])
    if not names:
      raise DataError(f"{tree.where(root + cls)}: empty class folder (no .png/.jpg/.jpeg images)")
    rels.extend(f"{root}{cls}/{n}" for n in names)
    labels.extend([label] * len(names))
  labels = np.asarray(labels, np.int64)
  index = limit_positions(labels, limit, seed)
  dropped: list[str] = []
  if index is not None:
    kept = set(index.tolist())
    dropped = [rel for i, rel in enumerate(rels) if i not in kept]
    rels, labels = [rels[i] for i in index], labels[index]
  arrays = _decode_all(tree, rels)
  size = arrays[0].shape[:2]
  for rel, a in zip(rels, arrays):
    if a.shape[:2] != size:
      raise DataError(f"{tree.where(rel)}: image size {a.shape[1]}x{a.shape[0]} differs from "
                      f"{size[1]}x{size[0]} of {tree.where(rels[0])}")
  # Grey images broadcast to RGB when any image of the split is in colour,
  # also one the limit left out (its header says so, without decoding).
  colour = (any(a.ndim == 3 for a in arrays)
            or any(_is_colour(tree.read(rel), tree.where(rel)) for rel in dropped))
  x = np.empty((len(arrays), *size, 3 if colour else 1), np.uint8)
  for i, a in enumerate(arrays):
    x[i] = a if a.ndim == 3 else a[..., None]  # greyscale broadcasts to RGB
  return make_dataset(x, labels, class_names, where, index=index,
                      paths=[rel[len(root):] for rel in rels])


def load_folder_split(root: str, split: str, require_split: bool = False,
                      limit: int | None = None, seed: int = 0) -> Dataset:
  """Loads ``split`` from an image folder on disk.

  Args:
    root: the folder (``ROOT`` with split folders, or one split's folder).
    split: the split to read.
    require_split: refuse a one-split folder instead of returning it.
    limit, seed: decode only the rows ``limit`` keeps (see
      :func:`load_tree_split`).

  Returns:
    The split, images in class-then-file-name order.

  Example:
    >>> ds = load_folder_split("photos", "test")  # doctest: +SKIP
  """
  return load_tree_split(dir_tree(root), split, root, require_split, limit, seed)
