"""Writing the output of a poisoning run, atomically.

Every run writes into one output folder OUT:

* ``OUT/train.npz``: ``x`` (uint8, N x H x W x C, input order), ``y`` (int64),
  ``index`` (int64: each row's position in the source split),
  ``class_names``, and for inputs made of files (image folders) ``paths``
  (each row's source file, ``<class>/<file>``);
* ``OUT/manifest.json``: the run's record (below);
* with ``png=True``, the images as lossless PNGs under ``OUT/train/``: at
  their source path with a ``.png`` extension (``automobile/0000.png``) when
  the input had paths, else at ``<class>/<index>.png``.

The manifest (:func:`ntga.attacks.pipeline.build_manifest` and
:func:`ntga.attacks.pipeline.input_record` fill it; :func:`write_run` adds the
output's hashes) holds:

* ``attack``, ``preset`` (the named preset the settings started from),
  ``config`` (every setting, data-dependent defaults filled in),
  ``code_fingerprint`` (a hash of the attack's source code) and ``versions``;
* ``seed``, or for an attack whose seed is its secret (CUDA, whose seed draws
  the per-class filters) ``seed_fingerprint`` instead:
  ``sha256(b"ntga-key:" + key_data(jax.random.key(seed)))``, first 16 hex
  digits (:func:`ntga.attacks.key_fingerprint`). Whoever holds the seed can
  show it made the run; the record itself does not print it. It is not a
  vault: JAX keys keep 32 bits of the seed (``--seed`` must lie in [0,
  2**32)), so someone who tries every seed finds it (about 4 core-hours in
  plain Python, far less with native code or a GPU); keep the manifest
  private when the filters must stay secret;
* ``input``: ``spec`` (an absolute path for path inputs), ``split``,
  ``limit``, ``data_dir``, and ``sha256_x`` / ``sha256_y`` of the clean input
  as decoded (``sha256_of: "decoded arrays"``): the sha256 of the bytes of
  ``x`` (uint8, C order) and ``y`` (int64 little-endian) that
  ``ntga.data.load(spec, split, limit=limit, data_dir=data_dir)`` returns, so
  ``ntga.io.sha256(ds.x)`` recomputes it from the same files;
* ``sha256_x`` and ``sha256_y`` of the written ``x`` and ``y`` (the same
  byte layout), ``n_examples``, ``image_shape``;
* with ``--ratio``: ``ratio``, ``n_poisoned`` and ``poisoned_rows`` (the
  ascending rows of ``train.npz`` that hold poisoned images; the rest are
  clean);
* ``psnr_db``, ``max_abs_delta_levels``, ``max_abs_delta``.

Each file is written to a temporary name and renamed into place, so a killed
run never leaves a half-written file; a folder that is not empty is refused
unless ``overwrite`` is set (a folder holding only an unfinished run's
checkpoints, ``OUT/.checkpoints``, is accepted, so that run can resume).

Example:

  >>> out = prepare_output("runs/mnist-ntga", overwrite=False, inputs=["mnist"])
  >>> write_run(out, x, y, index, class_names, manifest)
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import posixpath
import shutil
import sys
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
  """Hex sha256 of an array's bytes (C order, the array's own dtype).

  Example:
    >>> sha256(np.zeros(0, np.uint8))[:8]
    'e3b0c442'
  """
  return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def sha256_labels(y: np.ndarray) -> str:
  """Hex sha256 of labels as int64 little-endian bytes (the manifest's ``sha256_y``).

  Example:
    >>> sha256_labels([0, 1]) == sha256(np.array([0, 1], "<i8"))
    True
  """
  return sha256(np.asarray(y, "<i8"))


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


def run_fingerprint(config: Any, *arrays: Any) -> str:
  """A hash naming one run: its settings and its input arrays.

  Checkpoints carry it (:func:`claim_checkpoints`, and the victims' training
  checkpoints), so that a run resumes only from checkpoints of the same data,
  seed and settings.

  Args:
    config: a dataclass instance or a mapping of settings (hashed as JSON
      with sorted keys).
    *arrays: the run's inputs (e.g. its PRNG key, images, labels), hashed
      by their bytes in order; a JAX PRNG key by its key data.

  Returns:
    The sha256 hex digest.

  Example:
    >>> run_fingerprint(cfg, key, x, y)
  """
  h = hashlib.sha256()
  settings = (dataclasses.asdict(config) if dataclasses.is_dataclass(config)
              else dict(config))
  h.update(json.dumps(settings, sort_keys=True).encode())
  for a in arrays:
    h.update(np.ascontiguousarray(_key_data(a)).tobytes())
  return h.hexdigest()


def _key_data(a: Any) -> Any:
  """A typed JAX PRNG key's raw data; anything else as it is. (A key can only
  exist once JAX is imported, so this module does not import it.)"""
  jax = sys.modules.get("jax")
  if (jax is not None and isinstance(a, jax.Array)
      and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)):
    return jax.random.key_data(a)
  return a


def claim_checkpoints(folder: str | os.PathLike, fingerprint: str) -> Path:
  """Makes ``folder`` the checkpoint folder of the run named ``fingerprint``.

  A new folder is created with a ``meta.json`` holding the fingerprint; an
  existing one must hold the same fingerprint, so that no run resumes from
  another's checkpoints.

  Args:
    folder: the checkpoint folder (usually ``OUT/.checkpoints``).
    fingerprint: :func:`run_fingerprint` of the run.

  Returns:
    The folder, as a Path.

  Raises:
    OutputError: the folder holds checkpoints of a different run.

  Example:
    >>> ckpt = claim_checkpoints(out / ATTACK_CHECKPOINTS, run_fingerprint(cfg, x, y))
  """
  folder = Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  meta = folder / "meta.json"
  if meta.exists():
    if json.loads(meta.read_text()).get("fingerprint") != fingerprint:
      raise OutputError(f"{folder} holds checkpoints of a different run (data, "
                        "seed or config differ); remove it or use --overwrite")
  else:
    atomic_write(meta, lambda f: f.write(
        json.dumps({"fingerprint": fingerprint}).encode()))
  return folder


def remove_if_empty(out: str | os.PathLike) -> bool:
  """Removes a run's folder if it holds nothing (an empty checkpoint folder aside).

  What a failed run calls on the folder :func:`prepare_output` created for
  it, so that no empty folder is left behind; a folder with any file in it
  (checkpoints to resume from included) is kept.

  Args:
    out: the output folder.

  Returns:
    Whether the folder was removed.

  Example:
    >>> out = prepare_output("runs/x", overwrite=False)
    >>> remove_if_empty(out)
    True
  """
  out = Path(out)
  ckpt = out / ATTACK_CHECKPOINTS
  try:
    if ckpt.is_dir() and not any(ckpt.iterdir()):
      ckpt.rmdir()
    out.rmdir()  # only succeeds when empty
  except OSError:
    return False
  return True


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


def png_names(paths) -> list[str]:
  """Where :func:`write_pngs` puts each image, from its source path.

  A path's extension becomes ``.png`` (``cat/1.jpg`` -> ``cat/1.png``);
  where two sources would then share a name (``a.jpg`` and ``a.png`` in one
  folder) each keeps its own extension and gains ``.png`` (``a.jpg.png``),
  and if names still collide every path just gains ``.png``.

  Args:
    paths: relative POSIX paths, one per image.

  Returns:
    Relative POSIX paths, one per image, all distinct.

  Example:
    >>> png_names(["cat/1.JPG", "cat/2.jpg", "cat/2.png"])
    ['cat/1.png', 'cat/2.jpg.png', 'cat/2.png.png']
  """
  paths = [str(p) for p in paths]
  stems = [posixpath.splitext(p)[0] + ".png" for p in paths]
  clash = {s for s, c in collections.Counter(stems).items() if c > 1}
  names = [p + ".png" if s in clash else s for p, s in zip(paths, stems)]
  if len(set(names)) < len(names):
    names = [p + ".png" for p in paths]
  return names


def write_pngs(folder: Path, x: np.ndarray, y: np.ndarray, index: np.ndarray,
               class_names: tuple[str, ...], paths=None) -> None:
  """Writes every image as a lossless PNG under ``folder``, then renames.

  With ``paths`` image ``i`` goes to ``folder/png_names(paths)[i]`` (the
  input's own tree: ``automobile/0000.png``); without, to
  ``folder/<class>/<index>.png``. The tree is built in a temporary sibling
  folder and moved into place at the end, replacing any previous tree.

  Args:
    folder: the tree's root (``OUT/train``).
    x: uint8 (N, H, W, C) images.
    y: (N,) labels.
    index: (N,) positions in the source split.
    class_names: one name per class.
    paths: optional (N,) relative source paths (see
      :attr:`ntga.data.Dataset.paths`).

  Raises:
    OutputError: a path that is absolute or leaves the tree.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if paths is None:
    names = [f"{class_names[label]}/{idx}.png" for label, idx in zip(y, index)]
  else:
    names = png_names(paths)
    for name in names:
      if name.startswith("/") or ".." in name.split("/"):
        raise OutputError(f"image path {name!r} would leave {folder}")
  tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
  try:
    for sub in sorted({posixpath.dirname(n) for n in names} - {""}):
      (tmp / sub).mkdir(parents=True, exist_ok=True)
    for img, name in zip(x, names):
      mode_img = img[..., 0] if img.shape[-1] == 1 else img
      Image.fromarray(mode_img).save(tmp / name, format="PNG")
    if folder.exists():
      shutil.rmtree(folder)
    os.replace(tmp, folder)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def write_run(out: Path, x: np.ndarray, y: np.ndarray, index: np.ndarray,
              class_names: tuple[str, ...], manifest: dict[str, Any], *,
              png: bool = False, paths=None) -> None:
  """Writes train.npz, the optional PNG tree and manifest.json into ``out``.

  The manifest goes last, so a folder with a manifest holds a complete run.

  Args:
    out: a folder returned by :func:`prepare_output`.
    x: uint8 (N, H, W, C) poisoned images.
    y: int64 (N,) labels.
    index: int64 (N,) positions in the source split.
    class_names: one name per class.
    manifest: the run's record; ``sha256_x``, ``sha256_y``, ``n_examples``
      and ``image_shape`` are added here.
    png: also write the PNG tree ``out/train/`` (see :func:`write_pngs`).
    paths: optional (N,) source paths (``Dataset.paths``): stored in
      train.npz as ``paths`` and mirrored by the PNG tree.

  Example:
    >>> write_run(out, x_p, ds.y, ds.index, ds.class_names, manifest,
    ...           png=True, paths=ds.paths)
  """
  x = np.ascontiguousarray(x, np.uint8)
  y = np.asarray(y, np.int64)
  manifest = dict(manifest, sha256_x=sha256(x), sha256_y=sha256_labels(y),
                  n_examples=int(len(x)), image_shape=list(x.shape[1:]))
  stale = out / "manifest.json"
  if stale.exists():
    stale.unlink()
  arrays = {"x": x, "y": y, "index": np.asarray(index, np.int64),
            "class_names": np.asarray(class_names, dtype=str)}
  if paths is not None:
    arrays["paths"] = np.asarray(paths, dtype=str)
  write_npz(out / "train.npz", **arrays)
  if png:
    write_pngs(out / "train", x, y, index, class_names, paths)
  elif (out / "train").is_dir():
    shutil.rmtree(out / "train")
  write_json(out / "manifest.json", manifest)
