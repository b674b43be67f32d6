"""The ``ntga`` command line: poison output, errors, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from ntga import cli

FAST = ["--set", "block_size=40", "--set", "target_size=60",
        "--set", "steps=2"]


def _ntga(*args, **kw):
  return subprocess.run([sys.executable, "-m", "ntga", *args],
                        capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  out = tmp_path_factory.mktemp("run") / "out"
  assert cli.main(["poison", "--data", "digits", "--limit", "100", "--out",
                   str(out), "--png", "--seed", "3", *FAST]) == 0
  return out


def test_poison_writes_npz_manifest_and_pngs(run_dir):
  from ntga import data
  clean = data.load("digits", "train", limit=100)
  with np.load(run_dir / "train.npz") as z:
    x, y, index = z["x"], z["y"], z["index"]
  assert x.dtype == np.uint8 and x.shape == clean.x.shape
  assert y.dtype == np.int64 and index.dtype == np.int64
  np.testing.assert_array_equal(index, clean.index)
  np.testing.assert_array_equal(y, clean.y)
  manifest = json.loads((run_dir / "manifest.json").read_text())
  assert manifest["attack"] == "ntga" and manifest["seed"] == 3
  assert manifest["config"]["eps"] == 0.3 and manifest["config"]["block_size"] == 40
  assert manifest["input"]["spec"] == "digits"
  assert manifest["versions"]["jax"]
  delta = int(np.abs(x.astype(int) - clean.x).max())
  assert manifest["max_abs_delta_levels"] == delta and 0 < delta <= 76
  import hashlib
  assert manifest["sha256_x"] == hashlib.sha256(x.tobytes()).hexdigest()
  # Lossless PNGs at train/<class>/<index>.png.
  name = clean.class_names[y[5]]
  png = np.asarray(Image.open(run_dir / "train" / name / f"{index[5]}.png"))
  np.testing.assert_array_equal(png, x[5, ..., 0])
  assert not (run_dir / ".checkpoints").exists()
  # Ordinary permissions (0666 less the umask), not the temp files' 0600.
  umask = os.umask(0)
  os.umask(umask)
  for f in ("train.npz", "manifest.json"):
    assert (run_dir / f).stat().st_mode & 0o777 == 0o666 & ~umask


def test_output_loads_back_as_a_data_spec(run_dir):
  from ntga import data
  ds = data.load(str(run_dir), "train")
  with np.load(run_dir / "train.npz") as z:
    np.testing.assert_array_equal(ds.x, z["x"])


@pytest.mark.parametrize("args, message", [
    (["--set", "bogus=1"], "unknown setting 'bogus'"),
    (["--set", "steps=ten"], "expected int"),
    (["--eps", "2"], "eps must be in (0, 1]"),
    (["--attack", "nope"], "unknown attack 'nope'"),
    (["--data", "/no/such/place"], "/no/such/place"),
])
def test_bad_input_is_one_line_error(tmp_path, capsys, args, message):
  argv = ["poison", "--data", "digits", "--out", str(tmp_path / "o"), *args]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("ntga: error:") and "\n" not in err
  assert message in err


def test_non_empty_output_is_refused_then_overwritten(run_dir, tmp_path, capsys):
  out = tmp_path / "o"
  out.mkdir()
  (out / "keep.txt").write_text("mine")
  argv = ["poison", "--data", "digits", "--limit", "30", "--out", str(out),
          *FAST]
  assert cli.main(argv) == 2
  assert "not empty" in capsys.readouterr().err
  assert (out / "keep.txt").read_text() == "mine"
  assert cli.main(argv + ["--overwrite"]) == 0
  assert (out / "train.npz").exists()


def test_never_writes_into_the_input(run_dir, capsys):
  argv = ["poison", "--data", str(run_dir / "train.npz"), "--out",
          str(run_dir), "--overwrite", *FAST]
  assert cli.main(argv) == 2
  assert "overlaps the input" in capsys.readouterr().err


def test_help_is_fast_and_imports_no_jax():
  code = ("import sys, ntga.cli as c; c.build_parser(['poison']); "
          "print('jax' in sys.modules, 'tensorflow' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True)
  assert out.stdout.split() == ["False", "False"]


def test_killed_run_resumes_to_identical_output(tmp_path):
  # 15 small blocks, each slow enough (8 steps, 200 targets) to be caught.
  args = ["poison", "--data", "digits", "--limit", "300", "--set",
          "block_size=20", "--set", "target_size=200", "--set", "steps=8"]
  ref = tmp_path / "ref"
  assert cli.main(args + ["--out", str(ref)]) == 0

  out = tmp_path / "killed"
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  proc = subprocess.Popen([sys.executable, "-m", "ntga", *args, "--out",
                           str(out)], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  ckpt = out / ".checkpoints"
  deadline = time.time() + 240
  while time.time() < deadline and len(list(ckpt.glob("block_*.npy"))) < 2:
    assert proc.poll() is None, "run ended before it could be killed"
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  done = len(list(ckpt.glob("block_*.npy")))
  # Killed after >= 2 blocks and before the output was written.
  assert 2 <= done <= 15 and not (out / "manifest.json").exists()
  result = _ntga(*args, "--out", str(out), env=env)
  assert result.returncode == 0, result.stderr
  with np.load(ref / "train.npz") as a, np.load(out / "train.npz") as b:
    np.testing.assert_array_equal(a["x"], b["x"])


def test_demo_writes_table_figure_and_run(tmp_path, capsys):
  from ntga import demo
  out = tmp_path / "demo"
  assert demo.main(out=str(out), victims=("fnn-relu",), epochs=3) == 0
  printed = capsys.readouterr().out
  assert "clean-trained" in printed and "fnn-relu" in printed
  results = json.loads((out / "demo_results.json").read_text())
  row = results["victims"][0]
  assert row["victim"] == "fnn-relu"
  assert row["clean_trained"] > 0.8  # digits is easy when clean
  assert row["poison_trained"] < row["clean_trained"] - 0.3
  assert Image.open(out / "demo.png").size[0] > 200
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["attack"] == "ntga" and manifest["input"]["spec"] == "digits"


def test_ci_runs_the_readme_test_command():
  from pathlib import Path
  root = Path(__file__).resolve().parents[1]
  readme = (root / "README.md").read_text().split("```bash\n", 1)[1]
  install_demo, install_test = readme.split("```", 1)[0].strip().splitlines()
  assert install_demo.endswith("ntga demo")
  assert install_test in (root / ".ci" / "run").read_text().splitlines()


def test_bench_is_not_a_command(capsys):
  """Benchmarks run from a checkout (python -m benchmarks.run), not via ntga."""
  with pytest.raises(SystemExit) as e:
    cli.main(["bench", "table1_mnist"])
  assert e.value.code == 2
  assert "invalid choice: 'bench'" in capsys.readouterr().err


def test_unknown_setting_names_the_known_ones(tmp_path, capsys):
  argv = ["poison", "--attack", "cuda", "--data", "digits", "--out",
          str(tmp_path / "o"), "--set", "pb=0.2", "--set", "steps=3"]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert "unknown setting 'steps' for attack 'cuda'; known: batch_size, blur_size" in err


def test_distributed_needs_a_multi_process_attack(tmp_path, capsys, monkeypatch):
  from ntga import distributed
  monkeypatch.setattr(distributed, "init_distributed", lambda args: None)
  argv = ["poison", "--attack", "cuda", "--data", "digits", "--out",
          str(tmp_path / "o"), "--distributed"]
  assert cli.main(argv) == 2
  assert ("--distributed is supported by block-wise attacks (ntga), not 'cuda'"
          in capsys.readouterr().err)


def test_demo_figure_changes_no_global_setting(tmp_path):
  """save_figure draws on a bare Figure: no pyplot, no matplotlib.use."""
  code = """if True:
    import sys
    from pathlib import Path
    import matplotlib
    import numpy as np
    calls = []
    matplotlib.use = lambda *a, **k: calls.append(a)
    from ntga.demo import save_figure
    x = np.zeros((4, 8, 8, 1), np.uint8)
    save_figure(Path(sys.argv[1]), x, x + 3, np.array([0, 1, 0, 1]), ("a", "b"))
    print(calls == [], "matplotlib.pyplot" in sys.modules)
  """
  png = tmp_path / "grid.png"
  out = subprocess.run([sys.executable, "-c", code, str(png)],
                       capture_output=True, text=True, check=True)
  assert out.stdout.split() == ["True", "False"]
  assert Image.open(png).size[0] > 100
