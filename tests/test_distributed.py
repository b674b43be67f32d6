"""Two CPU processes on loopback (jax.distributed) give the single-process output."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

ARGS = ["poison", "--data", "digits", "--limit", "120", "--set", "block_size=20",
        "--set", "target_size=60", "--set", "steps=2"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  single = tmp_path / "single"
  subprocess.run([sys.executable, "-m", "ntga", *ARGS, "--out", str(single)],
                 env=env, check=True, capture_output=True, timeout=300)
  out = tmp_path / "dist"
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-m", "ntga", *ARGS, "--out", str(out), "--distributed",
       "--num-processes", "2", "--process-id", str(i)],
      env=dict(env, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}"),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  logs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], logs
  assert "wrote" in logs[0] and "wrote" not in logs[1]  # process 0 writes
  with np.load(single / "train.npz") as a, np.load(out / "train.npz") as b:
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["index"], b["index"])
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["processes"] == 2
  assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train.npz"]


def test_process_flags_need_distributed(tmp_path, capsys):
  from ntga import cli
  argv = [*ARGS, "--out", str(tmp_path / "o"), "--process-id", "1"]
  assert cli.main(argv) == 2
  assert "--process-id needs --distributed" in capsys.readouterr().err


def _flags(**kw):
  import argparse
  from ntga import distributed
  parser = argparse.ArgumentParser()
  distributed.add_distributed_arguments(parser, "does its share")
  args = parser.parse_args(["--distributed"])
  return argparse.Namespace(**{**vars(args), **kw})


def test_init_distributed_reads_flags_then_environment(monkeypatch):
  """Flags win over JAX_* variables; nothing JAX-global is set on the way."""
  import jax
  from ntga import distributed
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize",
                      lambda **kw: calls.append(kw))
  monkeypatch.setattr(jax.config, "update", lambda *a: calls.append(("update", a)))
  monkeypatch.setenv("JAX_NUM_PROCESSES", "4")
  monkeypatch.setenv("JAX_PROCESS_ID", "3")
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
  distributed.init_distributed(_flags(process_id=1))
  assert calls == [{"coordinator_address": "10.0.0.1:1234", "num_processes": 4,
                    "process_id": 1}]


def test_init_distributed_rejects_bad_values(monkeypatch):
  import pytest
  from ntga import distributed
  from ntga.errors import ConfigError
  monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
  with pytest.raises(ConfigError, match="JAX_NUM_PROCESSES='two' is not a valid int"):
    distributed.init_distributed(_flags())
  with pytest.raises(ConfigError, match=r"--process-id must be in \[0, 2\), got 2"):
    distributed.init_distributed(_flags(num_processes=2, process_id=2))
