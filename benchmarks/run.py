"""Runs one benchmark config and records it, or reuses the cached record.

  python -m benchmarks.run CONFIG [--smoke] [--out DIR] [--force] [--cells PAT]

CONFIG names a module of :mod:`benchmarks.configs`; its ``kind`` names the
module of :mod:`benchmarks.kinds` that runs it. The record lands in
``DIR/<CONFIG>-<hash>.json`` (DIR defaults to ``benchmarks/results/``), where
the hash is the sha256 of the config's canonical JSON: a config that was
already run is not recomputed (``--force`` recomputes it), so a long matrix is
filled in over several sittings. A record holds the config and its hash, the
seeds, library versions, the machine, the wall-clock, the metrics and the
command line; smoke records are marked ``"smoke": true`` and left out of
``python -m benchmarks.report``. A ``table`` config is recorded cell by cell
instead (see :mod:`benchmarks.kinds.table`): ``--cells 'ROW / COL'`` (or an
fnmatch pattern such as ``'cnn / *'``) runs a part of it.

Example:
  >>> from benchmarks import run
  >>> run.main(["attack_speed", "--smoke", "--out", "/tmp/bench"])  # doctest: +SKIP
  0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from benchmarks import _harness, _records, configs, kinds
from ntga.errors import NTGAError


def build_parser() -> argparse.ArgumentParser:
  """The ``python -m benchmarks.run`` argument parser."""
  p = argparse.ArgumentParser(
      prog="python -m benchmarks.run",
      description="Run a benchmark config (cached by config hash) and record it.")
  p.add_argument("config", help="a module of benchmarks/configs: "
                 + ", ".join(configs.names()))
  p.add_argument("--smoke", action="store_true",
                 help="the tiny variant (seconds; marked smoke, not reported)")
  p.add_argument("--out", default=str(_records.RESULTS),
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
  options = _harness.Options(smoke=args.smoke, out=Path(args.out),
                             force=args.force, argv=argv, cells=args.cells)
  try:
    config = configs.load(args.config, smoke=args.smoke)
    outcome = _harness.execute(kinds.get(config["kind"]), args.config, config,
                               options)
  except NTGAError as e:
    print(f"bench: error: {e}", file=sys.stderr)
    return 2
  print(outcome.out)
  if outcome.err:
    print(outcome.err, file=sys.stderr)
  return 0


if __name__ == "__main__":
  from ntga import hugepages  # an entry point: see ntga/hugepages.py
  hugepages.restart_with_hugepages()
  sys.exit(main())
