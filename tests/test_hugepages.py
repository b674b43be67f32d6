"""Tests for ntga.hugepages: when the entry points restart, and that they do."""

import os
import subprocess
import sys

from ntga import hugepages


def test_wanted_only_without_the_tunable_and_opt_out(monkeypatch):
  monkeypatch.delenv(hugepages.OPT_OUT, raising=False)
  monkeypatch.setenv(hugepages.ENV, hugepages.TUNABLE)
  assert not hugepages.wanted()
  monkeypatch.setenv(hugepages.ENV, "glibc.malloc.arena_max=2")
  monkeypatch.setenv(hugepages.OPT_OUT, "1")
  assert not hugepages.wanted()


def test_restart_sets_the_tunable_once():
  """A program that calls it restarts with the tunable (when the platform
  allows) and keeps the tunables it had; a second call does nothing."""
  env = {k: v for k, v in os.environ.items()
         if k not in (hugepages.ENV, hugepages.OPT_OUT)}
  env[hugepages.ENV] = "glibc.malloc.arena_max=4"
  code = ("import os; from ntga import hugepages; "
          "hugepages.restart_with_hugepages(); hugepages.restart_with_hugepages(); "
          "print(os.environ.get('GLIBC_TUNABLES'))")
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, check=True).stdout.strip().splitlines()
  assert len(out) == 1
  if hugepages.platform_supports():
    assert out[0] == f"glibc.malloc.arena_max=4:{hugepages.TUNABLE}"
  else:
    assert out[0] == "glibc.malloc.arena_max=4"
