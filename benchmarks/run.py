"""Runs one benchmark config and records it, or reuses the cached record.

  python -m benchmarks.run CONFIG [--smoke] [--out DIR] [--force] [--cells PAT]

CONFIG names a module of :mod:`benchmarks.configs`. The record lands in
``DIR/<CONFIG>-<hash>.json`` (DIR defaults to ``benchmarks/results/``), where
the hash is the sha256 of the config's canonical JSON: a config that was
already run is not recomputed (``--force`` recomputes it), so a long matrix is
filled in over several sittings. A record holds the config and its hash, the
seeds, library versions, the machine, the wall-clock, the metrics and the
command line; smoke records are marked ``"smoke": true`` and left out of
``python -m benchmarks.report``. A ``table`` config is cached cell by cell
instead (see :mod:`benchmarks._tables`): ``--cells 'ROW / COL'`` (or an
fnmatch pattern such as ``'cnn / *'``) runs a part of it.

Example:
  >>> from benchmarks import run
  >>> run.main(["attack_speed", "--smoke", "--out", "/tmp/bench"])  # doctest: +SKIP
  0
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks import configs
from ntga.errors import ConfigError, NTGAError, OutputError

RESULTS = Path(__file__).resolve().parent / "results"
RECORD_VERSION = 1


def config_hash(config: dict[str, Any]) -> str:
  """sha256 (hex) of the config's canonical JSON (sorted keys, no spaces)."""
  text = json.dumps(config, sort_keys=True, separators=(",", ":"),
                    ensure_ascii=True, allow_nan=False)
  return hashlib.sha256(text.encode()).hexdigest()


def record_path(out: Path, name: str, config: dict[str, Any]) -> Path:
  """Where the record of ``config`` (module ``name``) lives under ``out``."""
  return Path(out) / f"{name}-{config_hash(config)[:16]}.json"


def _seeds(config: dict[str, Any]) -> list[int]:
  if "seeds" in config:
    return list(config["seeds"])
  return [config["seed"]] if "seed" in config else []


def run_config(name: str, *, smoke: bool = False, out: Path = RESULTS,
               force: bool = False, argv: Sequence[str] = ()
               ) -> tuple[dict[str, Any], Path, bool]:
  """Runs benchmark config ``name`` unless its record is cached.

  Args:
    name: a module of :mod:`benchmarks.configs`.
    smoke: run the tiny variant.
    out: the results folder.
    force: recompute even if a record exists.
    argv: the command line, stored in the record.

  Returns:
    ``(record, path, cached)``.

  Raises:
    ConfigError: unknown config or bad settings.
    OutputError: the results folder cannot be written.
  """
  from benchmarks import _records, runners  # pylint: disable=g-import-not-at-top
  from ntga import io  # pylint: disable=g-import-not-at-top

  config = configs.load(name, smoke=smoke)
  path = record_path(out, name, config)
  if path.exists() and not force:
    return json.loads(path.read_text()), path, True
  kind = config["kind"]
  if kind not in runners.RUNNERS:
    raise ConfigError(f"benchmarks/configs/{name}.py: unknown kind {kind!r}; "
                      f"known kinds: {', '.join(runners.RUNNERS)}")
  try:
    Path(out).mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise OutputError(f"cannot create results folder {out}: {e.strerror}") from e
  started = datetime.datetime.now(datetime.timezone.utc)
  start = time.perf_counter()
  metrics = runners.RUNNERS[kind](config)
  record = {
      "record_version": RECORD_VERSION,
      "name": name,
      "kind": kind,
      "smoke": smoke,
      "config": config,
      "config_hash": config_hash(config),
      "seeds": _seeds(config),
      "versions": io.library_versions(),
      "machine": _records.machine(),
      "started_utc": started.isoformat(timespec="seconds"),
      "wall_clock_s": time.perf_counter() - start,
      "command": "python -m benchmarks.run " + shlex.join(argv),
      "metrics": metrics,
  }
  io.write_json(path, record)
  return record, path, False


def build_parser() -> argparse.ArgumentParser:
  """The ``benchmarks.run`` / ``ntga bench`` argument parser."""
  p = argparse.ArgumentParser(
      prog="python -m benchmarks.run",
      description="Run a benchmark config (cached by config hash) and record it.")
  p.add_argument("config", help="a module of benchmarks/configs: "
                 + ", ".join(configs.names()))
  p.add_argument("--smoke", action="store_true",
                 help="the tiny variant (seconds; marked smoke, not reported)")
  p.add_argument("--out", default=str(RESULTS),
                 help="results folder (default: benchmarks/results)")
  p.add_argument("--force", action="store_true",
                 help="recompute even if this config's record exists")
  p.add_argument("--cells", default=None, metavar="PATTERN",
                 help="table configs only: run only the cells named 'ROW / COL' "
                 "that match this fnmatch pattern")
  return p


def main(argv: Sequence[str] | None = None) -> int:
  """Command-line entry point; returns the exit status (2 on a user error)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  args = build_parser().parse_args(argv)
  try:
    config = configs.load(args.config, smoke=args.smoke)
    if config["kind"] == "table":
      from benchmarks import _tables  # pylint: disable=g-import-not-at-top
      status = _tables.run_table(args.config, config, smoke=args.smoke,
                                 out=Path(args.out), force=args.force,
                                 cells=args.cells)
      counts = {s: sum(c["status"] == s for c in status["cells"])
                for s in ("run", "cached", "skipped")}
      print(f"{args.config}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
            + f" cells; records in {Path(args.out) / args.config}")
      return 0
    if args.cells is not None:
      raise ConfigError(f"--cells applies to table configs only; "
                        f"{args.config} is a {config['kind']!r} config")
    record, path, cached = run_config(args.config, smoke=args.smoke,
                                      out=Path(args.out), force=args.force,
                                      argv=argv)
  except NTGAError as e:
    print(f"bench: error: {e}", file=sys.stderr)
    return 2
  print(json.dumps(record, indent=2))
  print(f"{'cached' if cached else 'wrote'} {path}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  from ntga import hugepages  # an entry point: see ntga/hugepages.py
  hugepages.restart_with_hugepages()
  sys.exit(main())
