"""Running a config: time its kind's ``run``, write the record, reuse a cached one.

A kind runs a config in one go by default (:func:`run_config`: one record per
config, ``<results>/<config>-<hash>.json``); a kind that records a config in
parts (the ``table`` kind: one record per cell) defines its own
``execute(name, config, options)``, which :func:`execute` calls instead.

Example:
  >>> from benchmarks import _harness, configs, kinds
  >>> config = configs.load("attack_speed", smoke=True)
  >>> _harness.execute(kinds.get("attack_speed"), "attack_speed", config,
  ...                  _harness.Options(smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from benchmarks import _records
from ntga.errors import ConfigError, OutputError


@dataclasses.dataclass(frozen=True)
class Options:
  """How to run a config (the flags of ``python -m benchmarks.run``).

  Attributes:
    smoke: the config's tiny variant (its records are marked smoke).
    out: the results folder.
    force: recompute even if a record exists.
    argv: the command line, stored in the record.
    cells: for kinds recorded in parts: run only the parts matching this
      name or fnmatch pattern.
  """
  smoke: bool = False
  out: Path = _records.RESULTS
  force: bool = False
  argv: Sequence[str] = ()
  cells: str | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What a run prints: ``out`` on stdout, ``err`` (if any) on stderr."""
  out: str
  err: str | None = None


def make_folder(folder: Path) -> None:
  """Creates ``folder`` (and parents).

  Raises:
    OutputError: it cannot be created.
  """
  try:
    Path(folder).mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise OutputError(f"cannot create results folder {folder}: {e.strerror}") from e


def run_config(kind: ModuleType, name: str, config: dict[str, Any],
               options: Options = Options()
               ) -> tuple[dict[str, Any], Path, bool]:
  """Runs ``kind.run(config)`` unless the config's record is cached.

  Args:
    kind: the config's kind module (see :mod:`benchmarks.kinds`).
    name: the config module.
    config: ``configs.load(name, smoke=options.smoke)``.
    options: see :class:`Options` (``cells`` must be None).

  Returns:
    ``(record, path, cached)``.

  Raises:
    ConfigError: ``options.cells`` was given, or the kind rejects the config.
    OutputError: the results folder cannot be written.
  """
  from ntga import io  # pylint: disable=g-import-not-at-top

  if options.cells is not None:
    raise ConfigError(f"--cells applies to table configs only; {name} is a "
                      f"{config['kind']!r} config")
  path = _records.record_path(options.out, name, config)
  if path.exists() and not options.force:
    return json.loads(path.read_text()), path, True
  make_folder(options.out)
  started = _records.now_utc()
  start = time.perf_counter()
  metrics = kind.run(config)
  record = _records.new_record(
      name=name, kind=config["kind"], smoke=options.smoke, config_key="config",
      config=config, hash_=_records.config_hash(config),
      seeds=_records.seeds_of(config), started=started,
      wall_clock_s=time.perf_counter() - start,
      command="python -m benchmarks.run " + shlex.join(options.argv),
      metrics=metrics)
  io.write_json(path, record)
  return record, path, False


def execute(kind: ModuleType, name: str, config: dict[str, Any],
            options: Options) -> Outcome:
  """Runs a config the way its kind records it; returns what to print.

  A kind module with an ``execute`` function runs the config itself;
  otherwise :func:`run_config` makes one record, printed as JSON.
  """
  own = getattr(kind, "execute", None)
  if own is not None:
    return own(name, config, options)
  record, path, cached = run_config(kind, name, config, options)
  return Outcome(json.dumps(record, indent=2),
                 f"{'cached' if cached else 'wrote'} {path}")
