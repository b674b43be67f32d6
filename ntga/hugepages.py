"""Transparent huge pages for XLA's CPU buffers: an entry-point switch.

XLA's CPU runtime allocates every large buffer of a step afresh. With glibc's
default malloc, buffers over 32 MiB are fresh ``mmap``s whose 4 KiB pages
fault in one by one: training the ``fast`` victim spent ~30% of its CPU time
in the kernel doing that. glibc (>= 2.35) can ask for transparent huge pages
instead (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``), which removes most of
those faults (the ``victim_speed`` benchmark runs with it). The tunable is
read only when a process starts, so :func:`restart_with_hugepages`
re-executes the current command once with it set. Only entry points call it
(``ntga``, ``python -m ntga.cli``, ``python -m ntga.victims.cli``,
``python -m benchmarks.run``); a library user sets the variable in the shell.
``NTGA_NO_HUGEPAGES=1`` turns it off.

Example:
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python my_training_script.py
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ENV = "GLIBC_TUNABLES"
TUNABLE = "glibc.malloc.hugetlb=1"
OPT_OUT = "NTGA_NO_HUGEPAGES"
_THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def platform_supports() -> bool:
  """True on Linux with glibc and transparent huge pages not switched off."""
  if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
    return False
  try:
    return "[never]" not in _THP.read_text()
  except OSError:
    return False


def wanted() -> bool:
  """True if the platform supports it and the environment neither sets the
  tunable already nor opts out (:data:`OPT_OUT`)."""
  if os.environ.get(OPT_OUT):
    return False
  if "glibc.malloc.hugetlb" in os.environ.get(ENV, ""):
    return False
  return platform_supports()


def restart_with_hugepages() -> None:
  """Re-executes this process's command line with :data:`TUNABLE` set.

  Returns only when nothing is to be done (see :func:`wanted`); otherwise the
  process image is replaced and the same command starts again.
  """
  if not wanted():
    return
  old = os.environ.get(ENV)
  os.environ[ENV] = f"{old}:{TUNABLE}" if old else TUNABLE
  sys.stdout.flush()
  sys.stderr.flush()
  os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
