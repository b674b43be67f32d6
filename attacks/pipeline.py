"""Poisoning a whole dataset: config, run, ratio subset, manifest, code fingerprint.

The library entry points behind ``ntga poison``, ``ntga demo`` and the
benchmarks. :func:`poison_dataset` runs a registered attack on a
:class:`ntga.data.Dataset` under one seed and returns the poisoned images with
the manifest fields that describe the run, and :func:`input_record` the
manifest's record of the input (absolute spec, hashes of the decoded arrays);
:func:`ratio_subset` is the one home of the seeded ``--ratio`` subset, and
:func:`code_fingerprint` a hash of the source an attack runs, for caches that
must notice a changed attack. The manifest's fields are documented in
:mod:`ntga.io`.

Example:
  >>> from ntga import attacks, data
  >>> from ntga.attacks import pipeline
  >>> atk = attacks.get("random")
  >>> ds = data.load("digits", "train", limit=100)
  >>> manifest, x_p = pipeline.poison_dataset(
  ...     atk, pipeline.build_config(atk, {"mode": "class"}), ds, seed=0)
  >>> manifest["attack"], x_p.shape == ds.x.shape
  ('random', True)
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import shutil
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

from ntga import attacks, data, io
from ntga.attacks.registry import Attack
from ntga.errors import ConfigError
from ntga.protocol import AttackConfig, RunContext

#: ``fold_in`` salt of the ``--ratio`` subset's key: the subset is drawn from
#: ``fold_in(key(seed), RATIO_STREAM)``, a stream no attack uses.
RATIO_STREAM = 0x5a7

#: The package whose modules :func:`code_fingerprint` follows.
_PACKAGE = "ntga"


# --------------------------------------------------------------------------
# Config and ratio.


def build_config(attack: Attack, settings: Mapping[str, Any],
                 eps: float | None = None, preset: str = "paper") -> AttackConfig:
  """The attack's config from typed settings and an optional eps override.

  Args:
    attack: a registered attack.
    settings: field name -> value (already of the field's type).
    eps: if given, the perturbation bound (replaces ``settings["eps"]``).
    preset: the named preset the settings override (see
      :meth:`ntga.protocol.AttackConfig.preset`); ``"paper"``: the defaults.

  Returns:
    ``attack.config_cls.preset(preset, **settings)`` (validated by the class).

  Raises:
    ConfigError: a key that is not a field of the config (the message names
      the known ones), eps for an attack without an eps bound, a preset the
      attack does not have (the message names its presets, and the attacks
      that have it), or a value the config rejects.

  Example:
    >>> build_config(attacks.get("ntga"), {"steps": 4}, eps=0.1).eps
    0.1
    >>> build_config(attacks.get("em"), {}, preset="cpu") == EMConfig.cpu()
    True
  """
  presets = attack.config_cls.preset_names
  if preset not in presets:
    others = [a.name for a in attacks.registry().values()
              if preset in a.config_cls.preset_names]
    where = (f" (attacks with a {preset!r} preset: {', '.join(others)})"
             if others else "")
    raise ConfigError(f"unknown preset {preset!r} for attack {attack.name!r}; "
                      f"known: {', '.join(presets)}{where}")
  known = {f.name for f in dataclasses.fields(attack.config_cls)}
  unknown = sorted(set(settings) - known)
  if unknown:
    plural = "s" if len(unknown) > 1 else ""
    raise ConfigError(f"unknown setting{plural} {', '.join(map(repr, unknown))} "
                      f"for attack {attack.name!r}; known: "
                      f"{', '.join(sorted(known))}")
  kwargs = dict(settings)
  if eps is not None:
    if "eps" not in known:
      raise ConfigError(f"attack {attack.name!r} has no eps bound; drop --eps")
    kwargs["eps"] = eps
  return attack.config_cls.preset(preset, **kwargs)


def check_ratio(ratio: float | None) -> None:
  """Raises ConfigError unless ``ratio`` is None or in [0, 1]."""
  if ratio is not None and not 0.0 <= ratio <= 1.0:
    raise ConfigError(f"--ratio must be in [0, 1], got {ratio}")


#: Seeds run through ``jax.random.key(seed)``, which keeps 32 bits of the
#: seed (without x64): a larger seed would alias a smaller one.
SEED_LIMIT = 2**32


def check_seed(seed: int) -> None:
  """Raises ConfigError unless ``seed`` is an int in [0, 2**32).

  ``jax.random.key`` keeps only the low 32 bits of a seed, so ``2**32``
  would silently run as seed 0; such seeds are refused instead.

  Example:
    >>> check_seed(2**32 - 1)
  """
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
    raise ConfigError(f"--seed must be an integer, got {seed!r}")
  if not 0 <= seed < SEED_LIMIT:
    raise ConfigError(f"--seed must be in [0, 2**32) (JAX keys keep 32 bits "
                      f"of it), got {seed}")


def ratio_subset(seed: int, x_clean: np.ndarray, x_poisoned: np.ndarray,
                 ratio: float) -> tuple[np.ndarray, np.ndarray]:
  """Keeps a seeded ``round(ratio * N)`` poisoned rows; the rest stay clean.

  The rows come from the run's seed through :data:`RATIO_STREAM`, so
  ``ntga poison --ratio`` and a benchmark that poisons the whole set once and
  subsets it later pick the same rows.

  Args:
    seed: the run's seed (the one the attack was given).
    x_clean: clean images (N, ...).
    x_poisoned: poisoned images, same shape.
    ratio: fraction in [0, 1].

  Returns:
    ``(x_out, mask)`` as :func:`ntga.attacks.apply_ratio` returns them.

  Example:
    >>> x_out, mask = ratio_subset(3, ds.x, x_p, 0.5)
    >>> int(mask.sum()) == round(0.5 * len(ds.x))
    True
  """
  key = jax.random.fold_in(jax.random.key(seed), RATIO_STREAM)
  return attacks.apply_ratio(key, x_clean, x_poisoned, ratio)


# --------------------------------------------------------------------------
# The code an attack runs.


def _spec(module: str):
  """The import spec of ``module``, or None if it is not a module."""
  try:
    return importlib.util.find_spec(module)
  except (ImportError, ValueError):  # a name inside a module, not a module
    return None


def _read_source(module: str) -> str:
  """The source text of an importable module."""
  return Path(_spec(module).origin).read_text(encoding="utf-8")


def _imports(module: str, source: str, is_package: bool) -> set[str]:
  """Modules of the ntga package that ``source`` imports (at any depth).

  ``from P import name`` counts ``P.name`` when that is a module (a
  submodule import) and ``P`` otherwise; relative imports are resolved
  against ``module``. Imports inside functions count too.
  """
  found = set()
  for node in ast.walk(ast.parse(source, module)):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = module.split(".")
        parts = parts[:len(parts) - node.level + (1 if is_package else 0)]
        base = ".".join(parts + ([node.module] if node.module else []))
      for alias in node.names:
        sub = f"{base}.{alias.name}"
        found.add(sub if _spec(sub) is not None else base)
  return {m for m in found
          if m == _PACKAGE or m.startswith(_PACKAGE + ".")}


def _closure(roots: set[str]) -> dict[str, str]:
  """``{module: source}`` of ``roots`` and every ntga module they import."""
  sources: dict[str, str] = {}
  todo = sorted(roots)
  while todo:
    module = todo.pop()
    if module in sources:
      continue
    sources[module] = _read_source(module)
    is_package = _spec(module).submodule_search_locations is not None
    todo.extend(_imports(module, sources[module], is_package) - set(sources))
  return sources


def source_fingerprint(*modules: str) -> str:
  """A hash of the source of ``modules`` and of every ntga module they import.

  SHA-256 over the source text of the named modules and, transitively, of
  every module of the ``ntga`` package that they import: an edit to any of
  them changes it.

  Args:
    *modules: dotted module names (``"ntga.victims.train"``).

  Returns:
    16 hex digits.

  Example:
    >>> len(source_fingerprint("ntga.victims.train"))
    16
  """
  h = hashlib.sha256()
  for module, source in sorted(_closure(set(modules)).items()):
    h.update(module.encode() + b"\0" + source.encode() + b"\0")
  return h.hexdigest()[:16]


def code_fingerprint(attack: Attack) -> str:
  """A hash of the source code that an attack's output depends on.

  SHA-256 over the source text of the modules that define the attack's
  ``poison`` function and config class and, transitively, of every module of
  the ``ntga`` package (core, ``ntga.attacks``, ``ntga.victims``) that they
  import. An edit to any of them changes the fingerprint; an edit elsewhere
  (another attack, the CLI, the benchmarks) does not.

  Args:
    attack: a registered attack.

  Returns:
    16 hex digits.

  Example:
    >>> len(code_fingerprint(attacks.get("cuda")))
    16
  """
  return source_fingerprint(attack.poison.__module__, attack.config_cls.__module__)


# --------------------------------------------------------------------------
# A whole-dataset run.


def build_manifest(attack: Attack, config: AttackConfig, x_clean: np.ndarray,
                   x_out: np.ndarray, *, seed: int, ratio: float | None = None,
                   mask: np.ndarray | None = None,
                   preset: str | None = None) -> dict[str, Any]:
  """The manifest fields that describe one poisoning run.

  The fields are documented in :mod:`ntga.io` (the manifest).

  Args:
    attack: the attack that ran.
    config: its config as given (data-dependent defaults are filled here).
    x_clean: the clean images.
    x_out: the written images (after any ratio subset).
    seed: the run's seed (a secret-seed attack records only a fingerprint).
    ratio: the ``--ratio`` fraction, if one was applied.
    mask: the rows the ratio subset kept poisoned (with ``ratio``).
    preset: the named preset ``config`` was built from, if any.

  Returns:
    ``attack``, ``preset`` (when given), ``config`` (resolved),
    ``code_fingerprint``, ``ratio``, ``n_poisoned`` and ``poisoned_rows``
    (with a ratio), ``seed`` or ``seed_fingerprint``, ``psnr_db``,
    ``max_abs_delta_levels``, ``max_abs_delta`` and ``versions``.

  Example:
    >>> m = build_manifest(attacks.get("cuda"), CUDAConfig(), x, x_p, seed=3)
    >>> "seed" in m, m["seed_fingerprint"] == attacks.key_fingerprint(jax.random.key(3))
    (False, True)
  """
  resolved = config.resolved(x_clean.shape[1:])
  manifest: dict[str, Any] = {"attack": attack.name}
  if preset is not None:
    manifest["preset"] = preset
  manifest.update(config=dataclasses.asdict(resolved),
                  code_fingerprint=code_fingerprint(attack))
  if ratio is not None:
    rows = np.flatnonzero(np.asarray(mask))
    manifest.update(ratio=ratio, n_poisoned=int(len(rows)),
                    poisoned_rows=rows.tolist())
  if resolved.secret_seed:
    manifest["seed_fingerprint"] = attacks.key_fingerprint(jax.random.key(seed))
  else:
    manifest["seed"] = seed
  manifest.update(attacks.perturbation_stats(x_clean, x_out))
  manifest["versions"] = io.library_versions()
  return manifest


def input_record(ds: data.Dataset, spec: str, *, split: str = "train",
                 limit: int | None = None,
                 data_dir: str | None = None) -> dict[str, Any]:
  """The manifest's ``input``: where the clean data came from, and its hashes.

  Args:
    ds: the clean split as :func:`ntga.data.load` returned it for these
      arguments.
    spec, split, limit, data_dir: the arguments it was loaded with.

  Returns:
    ``spec`` (:func:`ntga.data.resolve_spec`: an absolute path for path
    specs), ``split``, ``limit``, ``data_dir``, ``sha256_of`` (``"decoded
    arrays"``), ``sha256_x`` (``io.sha256(ds.x)``) and ``sha256_y``
    (``io.sha256_labels(ds.y)``). Loading the same spec again and hashing
    the arrays reproduces both hashes.

  Example:
    >>> ds = data.load("digits", "train", limit=100)
    >>> record = input_record(ds, "digits", limit=100)
    >>> record["sha256_x"] == io.sha256(data.load("digits", limit=100).x)
    True
  """
  return {"spec": data.resolve_spec(spec, data_dir), "split": split,
          "limit": limit, "data_dir": data_dir,
          "sha256_of": "decoded arrays", "sha256_x": io.sha256(ds.x),
          "sha256_y": io.sha256_labels(ds.y)}


def poison_dataset(attack: Attack, config: AttackConfig, ds: data.Dataset, *,
                   seed: int, ratio: float | None = None,
                   out: Path | None = None, progress: bool = True,
                   preset: str | None = None
                   ) -> tuple[dict[str, Any], np.ndarray]:
  """Runs an attack on a dataset; returns (manifest fields, poisoned x).

  Args:
    attack: a registered attack.
    config: its config (``None`` defaults are resolved for the data).
    ds: the clean split.
    seed: PRNG seed of the attack (and of the ratio subset).
    ratio: poison only this seeded fraction of the rows (see
      :func:`ratio_subset`); None poisons all.
    out: the run's output folder; a resumable attack keeps its checkpoints in
      ``out/.checkpoints`` (:data:`ntga.io.ATTACK_CHECKPOINTS`) so that a
      killed run resumes. Nothing else is written there: the caller writes
      the run (:func:`ntga.io.write_run`) and then calls
      :func:`remove_checkpoints`.
    progress: show the attack's progress bar.
    preset: the named preset ``config`` was built from (recorded).

  Returns:
    ``(manifest, x)``: :func:`build_manifest`'s fields and uint8 images of
    ``ds.x``'s shape.

  Example:
    >>> manifest, x_p = poison_dataset(attacks.get("ntga"), NTGAConfig(), ds,
    ...                                seed=0, out=Path("runs/ntga"))
  """
  check_ratio(ratio)
  check_seed(seed)
  checkpoints = None if out is None else Path(out) / io.ATTACK_CHECKPOINTS
  context = RunContext(num_classes=ds.num_classes, checkpoint_dir=checkpoints,
                       progress=progress)
  x_p = attack.poison(jax.random.key(seed), ds.x, ds.y, config, context)
  mask = None
  if ratio is not None:
    x_p, mask = ratio_subset(seed, ds.x, x_p, ratio)
  manifest = build_manifest(attack, config, ds.x, x_p, seed=seed, ratio=ratio,
                            mask=mask, preset=preset)
  return manifest, np.asarray(x_p, np.uint8)


def remove_checkpoints(out: Path) -> None:
  """Removes ``out/.checkpoints`` (call once the run is written)."""
  shutil.rmtree(Path(out) / io.ATTACK_CHECKPOINTS, ignore_errors=True)
