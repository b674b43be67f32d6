"""Writing the output of a poisoning run, atomically.

Every run writes into one output folder OUT:

* ``OUT/train.npz``: ``x`` (uint8, N x H x W x C, input order), ``y`` (int64),
  ``index`` (int64: each row's position in the source split) and
  ``class_names``;
* ``OUT/manifest.json``: attack name, full config, seed, input spec, library
  versions, sha256 of ``x`` and the measured max |x_poisoned - x_clean|;
* with ``png=True``, ``OUT/train/<class>/<index>.png`` (lossless).

Each file is written to a temporary name and renamed into place, so a killed
run never leaves a half-written file; a folder that is not empty is refused
unless ``overwrite`` is set (a folder holding only an unfinished run's
checkpoints, ``OUT/.checkpoints``, is accepted, so that run can resume).

Example:

  >>> out = prepare_output("runs/mnist-ntga", overwrite=False, inputs=["mnist"])
  >>> write_run(out, x, y, index, class_names, manifest)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ntga.errors import OutputError

#: Sub-folder of OUT where a resumable attack keeps its per-block checkpoints
#: until the run is written (the folder name on disk that users resume from).
ATTACK_CHECKPOINTS = ".checkpoints"
_PACKAGES = ("ntga", "jax", "jaxlib", "neural-tangents", "flax", "optax",
             "numpy", "tensorflow-datasets")


def package_versions(names) -> dict[str, str | None]:
  """Installed version of each named distribution (None if not installed).

  Reads package metadata only; nothing is imported.

  Example:
    >>> package_versions(["no-such-package"])
    {'no-such-package': None}
  """
  out = {}
  for name in names:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


def library_versions() -> dict[str, str | None]:
  """Installed versions of the libraries that shape a run's output."""
  return package_versions(_PACKAGES)


def sha256(array: np.ndarray) -> str:
  """Hex sha256 of an array's bytes (C order)."""
  return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _inside(path: Path, folder: Path) -> bool:
  try:
    path.relative_to(folder)
    return True
  except ValueError:
    return False


def prepare_output(out: str | os.PathLike, *, overwrite: bool,
                   inputs: Iterable[str] = ()) -> Path:
  """Checks that OUT may be written and creates it.

  Args:
    out: the output folder.
    overwrite: allow a non-empty folder (files are replaced one by one, each
      atomically).
    inputs: input specs; a path among them that is OUT, inside OUT, or
      contains OUT is refused (never write into the input).

  Returns:
    The output folder as a Path (created if needed).

  Raises:
    OutputError: OUT is a file, is not empty (without ``overwrite``), or
      overlaps an input.
  """
  out = Path(out).resolve()
  for spec in inputs:
    p = Path(spec)
    if not p.exists():
      continue
    p = p.resolve()
    if p == out or _inside(p, out) or (p.is_dir() and _inside(out, p)):
      raise OutputError(f"output folder {out} overlaps the input {p}; "
                        "choose another --out")
  if out.exists() and not out.is_dir():
    raise OutputError(f"output path {out} exists and is not a folder")
  if out.exists() and not overwrite:
    leftovers = [p.name for p in out.iterdir() if p.name != ATTACK_CHECKPOINTS]
    if leftovers:
      raise OutputError(f"output folder {out} is not empty (holds "
                        f"{leftovers[0]!r}); use --overwrite or another --out")
  try:
    out.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise OutputError(f"cannot create output folder {out}: {e.strerror}") from e
  return out


def _umask() -> int:
  mask = os.umask(0)  # reading the umask means setting it; put it back at once
  os.umask(mask)
  return mask


def atomic_write(path: str | os.PathLike, write) -> None:
  """Calls ``write(binary_file)`` on a temp file beside ``path``, then renames.

  A killed or failing writer leaves ``path`` as it was (old or absent). The
  file gets the usual permissions (0666 less the umask), not the temp file's
  owner-only 0600.
  """
  path = Path(path)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                             suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
      os.fchmod(f.fileno(), 0o666 & ~_umask())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
  """Writes ``obj`` as indented JSON, atomically."""
  data = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)
  atomic_write(path, lambda f: f.write(data.encode() + b"\n"))


def _json_default(obj):
  if isinstance(obj, np.generic):
    return obj.item()
  if isinstance(obj, np.ndarray):
    return obj.tolist()
  if isinstance(obj, Path):
    return str(obj)
  raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
  """Writes arrays to an uncompressed .npz, atomically."""
  atomic_write(path, lambda f: np.savez(f, **arrays))


def write_pngs(folder: Path, x: np.ndarray, y: np.ndarray, index: np.ndarray,
               class_names: tuple[str, ...]) -> None:
  """Writes ``folder/<class>/<index>.png`` for every image, then renames.

  The tree is built in a temporary sibling folder and moved into place at
  the end, replacing any previous tree.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
  try:
    for name in class_names:
      (tmp / name).mkdir()
    for img, label, idx in zip(x, y, index):
      mode_img = img[..., 0] if img.shape[-1] == 1 else img
      Image.fromarray(mode_img).save(tmp / class_names[label] / f"{idx}.png")
    if folder.exists():
      shutil.rmtree(folder)
    os.replace(tmp, folder)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def write_run(out: Path, x: np.ndarray, y: np.ndarray, index: np.ndarray,
              class_names: tuple[str, ...], manifest: dict[str, Any], *,
              png: bool = False) -> None:
  """Writes train.npz, the optional PNG tree and manifest.json into ``out``.

  The manifest goes last, so a folder with a manifest holds a complete run.

  Args:
    out: a folder returned by :func:`prepare_output`.
    x: uint8 (N, H, W, C) poisoned images.
    y: int64 (N,) labels.
    index: int64 (N,) positions in the source split.
    class_names: one name per class.
    manifest: the run's record; ``sha256_x`` is added here.
    png: also write ``out/train/<class>/<index>.png``.
  """
  x = np.ascontiguousarray(x, np.uint8)
  manifest = dict(manifest, sha256_x=sha256(x), n_examples=int(len(x)),
                  image_shape=list(x.shape[1:]))
  stale = out / "manifest.json"
  if stale.exists():
    stale.unlink()
  write_npz(out / "train.npz", x=x, y=np.asarray(y, np.int64),
            index=np.asarray(index, np.int64),
            class_names=np.asarray(class_names, dtype=str))
  if png:
    write_pngs(out / "train", x, y, index, class_names)
  elif (out / "train").is_dir():
    shutil.rmtree(out / "train")
  write_json(out / "manifest.json", manifest)
