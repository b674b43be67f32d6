"""`ntga evaluate --distributed`: 2 CPU processes equal 1 process with 2 devices."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

ARGS = ["evaluate", "--train", "digits", "--test", "digits", "--victim", "fnn-relu",
        "--epochs", "2", "--limit-train", "200", "--limit-test", "60",
        "--batch-size", "64", "--optimizer", "sgd", "--lr", "0.05", "--seed", "1",
        "--no-progress"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict:
  return dict(os.environ, JAX_PLATFORMS="cpu",
              XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def test_two_processes_equal_one_process_two_devices(tmp_path):
  """Data-parallel training over 2 processes (1 CPU device each, gloo).

  SGD, as in the sharded test of test_victims_train.py: Adam's normalisation
  would magnify float reassociation differences.
  """
  single = tmp_path / "single"
  subprocess.run([sys.executable, "-m", "ntga", *ARGS, "--out", str(single)],
                 env=_env(2), check=True, capture_output=True, timeout=300)
  out = tmp_path / "dist"
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-m", "ntga", *ARGS, "--out", str(out), "--distributed",
       "--num-processes", "2", "--process-id", str(i)],
      env=dict(_env(1), JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}"),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  logs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], logs
  assert "final clean test accuracy" in logs[0]  # process 0 reports ...
  assert "final clean test accuracy" not in logs[1]  # ... and only it
  one = json.loads((single / "metrics.json").read_text())
  two = json.loads((out / "metrics.json").read_text())
  assert (one["num_devices"], two["num_devices"], two["processes"]) == (2, 2, 2)
  assert one["steps_per_epoch"] == two["steps_per_epoch"] == 3
  for name in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
    np.testing.assert_allclose(two[name], one[name], rtol=1e-4, err_msg=name)
  assert sorted(p.name for p in out.iterdir()) == ["learning_curve.png",
                                                   "metrics.json"]


def test_distributed_flags_without_distributed_are_refused(tmp_path, capsys):
  from ntga.victims import cli
  assert cli.main([*ARGS, "--coordinator", "127.0.0.1:1234"]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "--distributed" in err
