"""Tests for victims.cli (the code behind `ntga evaluate` / `ntga separability`)."""

import argparse
import json

import numpy as np
import pytest

from ntga.errors import ConfigError
from ntga.victims import _names, cli


def _npz(path, n, size, seed=0, k=3):
  rng = np.random.default_rng(seed)
  np.savez(path, x=rng.integers(0, 256, (n, size, size, 1)).astype(np.uint8),
           y=np.arange(n) % k)
  return str(path)


def test_evaluate_digits_writes_metrics_and_curve(tmp_path, capsys):
  out = tmp_path / "run"
  argv = ["evaluate", "--train", "digits", "--test", "digits", "--victim", "fnn-relu",
          "--epochs", "2", "--limit-train", "200", "--limit-test", "60", "--seed", "3",
          "--out", str(out), "--no-progress"]
  assert cli.main(argv) == 0
  line = capsys.readouterr().out.strip().splitlines()[-1]
  assert "final clean test accuracy" in line and "peak" in line
  m = json.loads((out / "metrics.json").read_text())
  assert 0.0 <= m["final_test_accuracy"] <= m["peak_test_accuracy"] <= 1.0
  assert len(m["test_accuracy"]) == 2 and m["seed"] == 3
  assert m["config"]["victim"] == "fnn-relu" and m["config"]["epochs"] == 2
  assert m["n_train"] == 200 and m["n_test"] == 60
  assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  # the same --out again is refused before any training, nothing is lost
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert "metrics.json" in err and len(err.splitlines()) == 1
  assert json.loads((out / "metrics.json").read_text()) == m


def test_evaluate_refuses_an_out_folder_holding_other_files(tmp_path, capsys):
  out = tmp_path / "run"
  out.mkdir()
  (out / "notes.txt").write_text("mine")
  argv = ["evaluate", "--train", "digits", "--test", "digits", "--victim", "fnn",
          "--epochs", "1", "--limit-train", "50", "--limit-test", "20",
          "--out", str(out), "--no-progress"]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "not empty" in err and "notes.txt" in err
  assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
  assert (out / "notes.txt").read_text() == "mine"


def test_separability_refuses_an_out_that_is_a_file(tmp_path, capsys):
  out = tmp_path / "taken"
  out.write_text("mine")
  assert cli.main(["separability", "--data", "digits", "--epochs", "1",
                   "--out", str(out)]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "not a directory" in err
  assert out.read_text() == "mine"


def test_evaluate_mismatched_train_test_is_a_clear_error(tmp_path, capsys):
  train = _npz(tmp_path / "a.npz", 12, 8)
  test = _npz(tmp_path / "b.npz", 12, 10)
  assert cli.main(["evaluate", "--train", train, "--test", test, "--victim", "fnn",
                   "--epochs", "1", "--no-progress"]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "must match" in err
  test4 = tmp_path / "c.npz"
  np.savez(test4, x=np.zeros((4, 8, 8, 1), np.uint8), y=np.arange(4))
  assert cli.main(["evaluate", "--train", train, "--test", str(test4), "--victim",
                   "fnn", "--epochs", "1", "--no-progress"]) == 2
  assert "classes" in capsys.readouterr().err


def test_hooks_into_another_parser():
  parser = argparse.ArgumentParser(prog="ntga")
  sub = parser.add_subparsers(dest="cmd")
  cli.add_evaluate_arguments(sub.add_parser("evaluate"))
  cli.add_separability_arguments(sub.add_parser("separability"))
  args = parser.parse_args(["evaluate", "--train", "x", "--victim", "cnn",
                            "--defense", "at-linf", "--at-eps", "8/255"])
  assert args.at_eps == pytest.approx(8 / 255)
  cfg = cli.config_from_args(args).resolved()
  assert cfg.defense.name == "at-linf" and cfg.defense.steps == 10
  assert cfg.defense.step_size == pytest.approx(2 / 255)
  args = parser.parse_args(["evaluate", "--train", "x", "--victim", "cnn",
                            "--defense", "jpeg", "--jpeg-quality", "30"])
  assert cli.config_from_args(args).defense.quality == 30
  args = parser.parse_args(["evaluate", "--train", "x", "--victim", "fast",
                            "--defense", "at-nfgsm", "--at-eps", "4/255", "--at-noise", "1.5"])
  nfgsm = cli.config_from_args(args).resolved().defense
  assert (nfgsm.name, nfgsm.noise) == ("at-nfgsm", 1.5)
  assert nfgsm.step_size == pytest.approx(4 / 255)
  args = parser.parse_args(["evaluate", "--train", "x", "--victim", "fast",
                            "--defense", "at-nfgsm", "--at-steps", "3"])
  with pytest.raises(ConfigError, match="at_steps.*defense at-nfgsm"):
    cli.config_from_args(args)
  args = parser.parse_args(["evaluate", "--train", "x", "--victim", "fast",
                            "--defense", "ortho"])
  ortho = cli.config_from_args(args).resolved().defense
  assert (ortho.augment, ortho.linear, ortho.project_test) == ("authors", "sgd", False)
  args = parser.parse_args(["evaluate", "--train", "x", "--victim", "fast",
                            "--defense", "ortho", "--ortho-augment", "victim",
                            "--ortho-linear", "adam", "--ortho-fit-on", "projected",
                            "--ortho-project-test"])
  ortho = cli.config_from_args(args).resolved().defense
  assert (ortho.augment, ortho.linear, ortho.fit_on, ortho.project_test) == (
      "victim", "adam", "projected", True)
  args = parser.parse_args(["evaluate", "--train", "x", "--victim", "fast",
                            "--robust-eps", "8/255"])
  assert cli.config_from_args(args).robust_eps == pytest.approx(8 / 255)
  # Names are checked by config_from_args (one line), not argparse choices.
  args = parser.parse_args(["evaluate", "--train", "x", "--victim", "lenet"])
  with pytest.raises(ConfigError, match="unknown victim 'lenet'; choose one of fnn, "):
    cli.config_from_args(args)
  args = parser.parse_args(["separability", "--data", "p.npz", "--clean", "c.npz"])
  assert (args.data, args.clean, args.split) == ("p.npz", "c.npz", "train")


def test_defense_flag_of_another_defense_is_a_clear_error(capsys):
  # --jpeg-quality means nothing without --defense jpeg: refused, not ignored
  assert cli.main(["evaluate", "--train", "digits", "--victim", "cnn",
                   "--jpeg-quality", "30", "--no-progress"]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "jpeg_quality" in err and "none" in err
  assert cli.main(["evaluate", "--train", "digits", "--victim", "cnn", "--defense",
                   "bdr", "--at-steps", "3", "--no-progress"]) == 2
  assert "at_steps" in capsys.readouterr().err
  assert cli.main(["evaluate", "--train", "digits", "--victim", "cnn",
                   "--ortho-augment", "victim", "--no-progress"]) == 2
  assert "ortho_augment" in capsys.readouterr().err
  # an unknown value: one line naming the valid ones
  assert cli.main(["evaluate", "--train", "digits", "--victim", "cnn", "--defense",
                   "ortho", "--ortho-augment", "strong", "--no-progress"]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "authors, victim" in err


def test_learning_curve_leaves_the_matplotlib_backend_alone(tmp_path):
  """Drawing the curve neither switches the global backend nor loads pyplot."""
  import os
  import subprocess
  import sys
  code = (
      "import sys, matplotlib; from ntga.victims import cli; "
      "m = {'train_accuracy': [0.5, 0.7], 'test_accuracy': [0.4, 0.6], "
      "'train_loss': [1.0, 0.8], 'config': {'victim': 'cnn', 'defense': 'jpeg'}}; "
      "cli.plot_learning_curve(m, sys.argv[1]); "
      "print(matplotlib.rcParams['backend'], 'matplotlib.pyplot' in sys.modules)")
  env = dict(os.environ, MPLBACKEND="pdf")
  png = tmp_path / "c.png"
  out = subprocess.run([sys.executable, "-c", code, str(png)], capture_output=True,
                       text=True, check=True, env=env)
  assert out.stdout.split() == ["pdf", "False"]
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert cli.VICTIM_CHECKPOINTS == "checkpoints"


def test_separability_cli(tmp_path, capsys):
  rng = np.random.default_rng(1)
  n, k = 300, 3
  clean = rng.integers(0, 256, (n, 6, 6, 1)).astype(np.uint8)
  y = np.arange(n) % k
  poisoned = np.clip(clean.astype(int) + rng.choice([-8, 8], (k, 6, 6, 1))[y],
                     0, 255).astype(np.uint8)
  np.savez(tmp_path / "clean.npz", x=clean, y=y)
  np.savez(tmp_path / "poisoned.npz", x=poisoned, y=y)
  assert cli.main(["separability", "--data", str(tmp_path / "poisoned.npz"),
                   "--clean", str(tmp_path / "clean.npz"),
                   "--out", str(tmp_path / "sep")]) == 0
  line = capsys.readouterr().out.strip()
  assert "perturbations" in line and "poisoned data" in line
  res = json.loads((tmp_path / "sep" / "separability.json").read_text())
  assert res["perturbation_accuracy"] >= 0.99 and res["n"] == n


def test_building_the_parsers_does_not_import_jax():
  import os
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  code = ("import argparse, sys; from ntga.victims import cli as c; "
          "c.add_evaluate_arguments(argparse.ArgumentParser()); "
          "c.add_separability_arguments(argparse.ArgumentParser()); "
          "print(any(m == 'jax' or m.startswith(('jax.', 'flax')) for m in sys.modules))")
  env = dict(os.environ, PYTHONPATH=root)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, cwd=root, env=env)
  assert out.stdout.strip() == "False"


@pytest.mark.parametrize("flag, value, what, valid", [
    ("--victim", "resnet-18", "victim", _names.VICTIMS),
    ("--defense", "jpg", "defense", _names.DEFENSES),
    ("--optimizer", "rmsprop", "optimizer", _names.OPTIMIZERS),
    ("--schedule", "linear", "schedule", _names.SCHEDULES),
    ("--augment", "rotate", "augment", _names.AUGMENTS),
])
def test_unknown_name_is_one_short_line(capsys, flag, value, what, valid):
  from ntga import cli as ntga_cli
  argv = ["evaluate", "--train", "digits", "--victim", "cnn", flag, value]
  assert ntga_cli.main(argv) == 2
  captured = capsys.readouterr()
  assert captured.out == ""  # no usage dump
  assert captured.err == (f"ntga: error: unknown {what} {value!r}; choose one of "
                          f"{', '.join(valid)}\n")


def test_evaluate_without_test_needs_a_separate_test_split(tmp_path, capsys):
  from ntga import cli as ntga_cli
  one = _npz(tmp_path / "one.npz", 12, 8)
  (tmp_path / "run").mkdir()
  _npz(tmp_path / "run" / "train.npz", 12, 8)  # a poisoning run's output
  for spec, why in ((one, "an .npz file holds one split"),
                    (str(tmp_path / "run"), "no test.npz for split 'test'")):
    assert ntga_cli.main(["evaluate", "--train", spec, "--victim", "fnn",
                          "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and why in err
    assert err.rstrip().endswith("; pass --test SPEC with the clean test data")
