"""Preemption-safe victim training: orbax checkpoints per epoch, exact resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import pytest

from ntga import data
from ntga.errors import OutputError
from ntga.victims import train as vt


@pytest.fixture(scope="module")
def digits():
  return data.load("digits", "train", limit=200), data.load("digits", "test", limit=100)


def _curves(m):
  return {k: m[k] for k in ("test_accuracy", "test_loss", "train_loss",
                            "train_accuracy")}


def test_resume_from_checkpoint_equals_straight_run(key, digits, tmp_path):
  train, test = digits
  cfg3 = vt.TrainConfig(victim="fnn-relu", epochs=3)
  straight = vt.train_and_evaluate(key, train, test, cfg3, progress=False)
  ckpt = tmp_path / "ckpt"
  first = vt.train_and_evaluate(key, train, test, vt.TrainConfig(victim="fnn-relu",
                                                                 epochs=1),
                                progress=False, checkpoint_dir=ckpt)
  assert first["test_accuracy"] == straight["test_accuracy"][:1]
  assert sorted(os.listdir(ckpt)) == ["1"]  # orbax's step folder after epoch 1
  resumed = vt.train_and_evaluate(key, train, test, cfg3, progress=False,
                                  checkpoint_dir=ckpt)
  assert resumed["resumed_from_epoch"] == 1 and straight["resumed_from_epoch"] == 0
  assert _curves(resumed) == _curves(straight)  # exact on one set of devices
  assert len(resumed["epoch_time_s"]) == 3
  assert sorted(os.listdir(ckpt)) == ["2", "3"]  # only the latest two are kept
  # a finished run is restored, not retrained
  again = vt.train_and_evaluate(key, train, test, cfg3, progress=False,
                                checkpoint_dir=ckpt)
  assert again["resumed_from_epoch"] == 3 and _curves(again) == _curves(straight)


def test_resume_restores_rng_state_and_batch_stats(key, tmp_path):
  """cnn: dropout RNG counters (typed keys) and batch norm statistics, 2 devices.

  The straight run keeps checkpoints 1 and 2; dropping 2 leaves the folder a
  run killed during epoch 2 would leave (same config: no second compile).
  """
  train = data.load("digits", "train", limit=64)
  test = data.load("digits", "test", limit=32)
  mesh = jax.make_mesh((2,), ("data",), devices=jax.devices()[:2])
  cfg = vt.TrainConfig(victim="cnn", epochs=2, batch_size=16, augment="crop-flip")
  ckpt = tmp_path / "ckpt"
  straight = vt.train_and_evaluate(key, train, test, cfg, progress=False, mesh=mesh,
                                   checkpoint_dir=ckpt)
  shutil.rmtree(ckpt / "2")
  resumed = vt.train_and_evaluate(key, train, test, cfg, progress=False, mesh=mesh,
                                  checkpoint_dir=ckpt)
  assert (straight["resumed_from_epoch"], resumed["resumed_from_epoch"]) == (0, 1)
  assert _curves(resumed) == _curves(straight)


def test_checkpoints_of_another_run_are_refused(key, digits, tmp_path):
  train, test = digits
  ckpt = tmp_path / "ckpt"
  cfg = vt.TrainConfig(victim="fnn-relu", epochs=1, schedule="cosine")
  vt.train_and_evaluate(key, train, test, cfg, progress=False, checkpoint_dir=ckpt)
  with pytest.raises(OutputError, match="different run"):
    vt.train_and_evaluate(jax.random.fold_in(key, 1), train, test, cfg,
                          progress=False, checkpoint_dir=ckpt)
  with pytest.raises(OutputError, match="different run"):
    vt.train_and_evaluate(key, train, test, vt.TrainConfig(
        victim="fnn-relu", epochs=1, schedule="cosine", lr=0.01),
                          progress=False, checkpoint_dir=ckpt)
  # a cosine schedule depends on the epoch count: 1 epoch cannot become 2
  with pytest.raises(OutputError, match="epoch count"):
    vt.train_and_evaluate(key, train, test, vt.TrainConfig(
        victim="fnn-relu", epochs=2, schedule="cosine"),
                          progress=False, checkpoint_dir=ckpt)
  assert sorted(os.listdir(ckpt)) == ["1"]  # nothing was overwritten


ARGS = ["-m", "ntga", "evaluate", "--train", "digits", "--test", "digits",
        "--victim", "fnn-relu", "--epochs", "12", "--limit-train", "200",
        "--limit-test", "100", "--batch-size", "32", "--seed", "2", "--no-progress"]


def test_killed_cli_run_resumes_to_the_same_metrics(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  ref = tmp_path / "ref"
  subprocess.run([sys.executable, *ARGS, "--out", str(ref)], env=env, check=True,
                 capture_output=True, timeout=300)
  out = tmp_path / "run"
  ckpt = out / "checkpoints"
  proc = subprocess.Popen([sys.executable, *ARGS, "--out", str(out)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 240
  while not (ckpt.is_dir() and any(p.name.isdigit() for p in ckpt.iterdir())):
    assert proc.poll() is None, "the run ended before its first checkpoint"
    assert time.monotonic() < deadline, "no checkpoint appeared"
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  assert proc.returncode == -signal.SIGKILL
  assert not (out / "metrics.json").exists()  # killed before the end
  subprocess.run([sys.executable, *ARGS, "--out", str(out)], env=env, check=True,
                 capture_output=True, timeout=300)
  a = json.loads((ref / "metrics.json").read_text())
  b = json.loads((out / "metrics.json").read_text())
  assert 1 <= b["resumed_from_epoch"] < 12 and a["resumed_from_epoch"] == 0
  assert _curves(b) == _curves(a)
  assert len(b["test_accuracy"]) == 12
  # the finished folder holds the results only, and is refused from now on
  assert sorted(p.name for p in out.iterdir()) == ["learning_curve.png",
                                                   "metrics.json"]
  rerun = subprocess.run([sys.executable, *ARGS, "--out", str(out)], env=env,
                         capture_output=True, text=True, timeout=300)
  assert rerun.returncode == 2 and "metrics.json" in rerun.stderr
