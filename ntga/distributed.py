"""Joining a multi-process (multi-host) JAX run from command-line flags.

The CLIs (``ntga poison``, ``ntga evaluate``) share three helpers: the flags
(``--distributed``, ``--coordinator``, ``--num-processes``,
``--process-id``), their check, and ``jax.distributed.initialize`` from flags
or environment. Nothing here changes JAX's global configuration; a CLI entry
point that needs a setting (e.g. the CPU collectives implementation) sets it
itself before calling :func:`init_distributed`.

Example:
  >>> parser = argparse.ArgumentParser()
  >>> add_distributed_arguments(parser, "poisons its share of the blocks")
  >>> args = parser.parse_args(["--distributed"])
  >>> check_distributed_flags(args)
  >>> init_distributed(args)  # every process runs the same command
"""

from __future__ import annotations

import argparse
import os
from typing import Callable, TypeVar

from ntga.errors import ConfigError

_T = TypeVar("_T")


def add_distributed_arguments(parser: argparse.ArgumentParser,
                              role: str) -> None:
  """Adds --distributed, --coordinator, --num-processes and --process-id.

  Args:
    parser: the sub-command's parser.
    role: what each process does, for the group's help text.
  """
  dist = parser.add_argument_group(
      "several processes", "--distributed runs jax.distributed.initialize(); "
      f"every process runs the same command, {role}. Unset values come from "
      "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, or JAX's "
      "cluster detection (SLURM, Open MPI, TPU, Kubernetes).")
  dist.add_argument("--distributed", action="store_true",
                    help="join a multi-process (multi-host) run")
  dist.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                    help="address of process 0's coordinator")
  dist.add_argument("--num-processes", type=int, default=None)
  dist.add_argument("--process-id", type=int, default=None)


def check_distributed_flags(args: argparse.Namespace) -> None:
  """Rejects --coordinator/--num-processes/--process-id without --distributed.

  Raises:
    ConfigError: one of them is set while ``args.distributed`` is not.
  """
  if args.distributed:
    return
  stray = [f"--{flag.replace('_', '-')}"
           for flag in ("coordinator", "num_processes", "process_id")
           if getattr(args, flag) is not None]
  if stray:
    raise ConfigError(f"{', '.join(stray)} needs --distributed")


def _pick(flag: _T | None, env: str, kind: Callable[[str], _T]) -> _T | None:
  """The flag's value, else the environment variable's (parsed), else None."""
  if flag is not None:
    return flag
  value = os.environ.get(env)
  if value is None:
    return None
  try:
    return kind(value)
  except ValueError:
    raise ConfigError(f"{env}={value!r} is not a valid {kind.__name__}") from None


def init_distributed(args: argparse.Namespace) -> None:
  """Calls ``jax.distributed.initialize`` from flags or environment.

  Args:
    args: parsed flags of :func:`add_distributed_arguments`.

  Raises:
    ConfigError: a process id outside ``[0, num_processes)`` or an
      unparsable environment value.
  """
  import jax  # pylint: disable=g-import-not-at-top

  count = _pick(args.num_processes, "JAX_NUM_PROCESSES", int)
  pid = _pick(args.process_id, "JAX_PROCESS_ID", int)
  if count is not None and pid is not None and not 0 <= pid < count:
    raise ConfigError(f"--process-id must be in [0, {count}), got {pid}")
  jax.distributed.initialize(
      coordinator_address=_pick(args.coordinator, "JAX_COORDINATOR_ADDRESS", str),
      num_processes=count, process_id=pid)
