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

from ntga import cli, data, io

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
    (["--set", "steps=2,bogus=1"], "unknown setting 'bogus'"),
    (["--eps", "2"], "eps must be in (0, 1]"),
    (["--eps", "8/255x"], "--eps expects a number or a fraction a/b"),
    (["--eps", "1/0"], "--eps expects a number or a fraction a/b"),
    (["--ratio", "half"], "--ratio expects a number or a fraction a/b"),
    (["--ratio", "3/2"], "--ratio must be in [0, 1]"),
    (["--seed", "4294967296"], "--seed must be in [0, 2**32)"),
    (["--attack", "nope"], "unknown attack 'nope'; known attacks: ntga, cuda, ops"),
    (["--preset", "cpu"], "unknown preset 'cpu' for attack 'ntga'; known: paper "
     "(attacks with a 'cpu' preset: em, rem)"),
    (["--attack", "em", "--preset", "gpu"],
     "unknown preset 'gpu' for attack 'em'; known: paper, cpu"),
    (["--data", "/no/such/place"], "/no/such/place"),
])
def test_bad_input_is_one_line_error(tmp_path, capsys, args, message):
  argv = ["poison", "--data", "digits", "--out", str(tmp_path / "o"), *args]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("ntga: error:") and "\n" not in err
  assert message in err
  assert not (tmp_path / "o").exists()  # a failed run leaves no empty folder


def _image_folder(root, rgba_alpha=None):
  """ROOT/{train,test}/{automobile,cat}/*: 8x8 colour PNGs and one JPEG."""
  rng = np.random.default_rng(0)
  for split in ("train", "test"):
    for cls in ("automobile", "cat"):
      (root / split / cls).mkdir(parents=True)
      for i in range(3):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(
            root / split / cls / f"{i:04d}.png")
  Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(
      root / "train" / "cat" / "photo.jpg")
  if rgba_alpha is not None:
    rgba = np.dstack([rng.integers(0, 256, (8, 8, 3), np.uint8),
                      np.full((8, 8), rgba_alpha, np.uint8)])
    Image.fromarray(rgba).save(root / "train" / "cat" / "rgba.png")


def test_image_folder_run_keeps_provenance(tmp_path, monkeypatch):
  """Paths, input hashes, absolute spec, poisoned rows: what a data owner checks."""
  import hashlib
  from ntga import data, io
  _image_folder(tmp_path / "imgs")
  monkeypatch.chdir(tmp_path)
  out = tmp_path / "out"
  assert cli.main(["poison", "--attack", "random", "--data", "imgs", "--out",
                   "out", "--png", "--ratio", "1/2", "--seed", "7", "--eps",
                   "8/255", "--set", "mode=class,batch_size=4"]) == 0
  clean = data.load(str(tmp_path / "imgs"), "train")
  names = ["automobile/0000.png", "automobile/0001.png", "automobile/0002.png",
           "cat/0000.png", "cat/0001.png", "cat/0002.png", "cat/photo.jpg"]
  with np.load(out / "train.npz") as z:
    x, y, paths = z["x"], z["y"], z["paths"]
  assert paths.tolist() == names == clean.paths.tolist()
  # --png mirrors the input's tree (a .jpg source becomes .png, losslessly).
  pngs = sorted(str(p.relative_to(out / "train")) for p in (out / "train").rglob("*.png"))
  assert pngs == sorted(io.png_names(names))
  for row, name in enumerate(io.png_names(names)):
    np.testing.assert_array_equal(np.asarray(Image.open(out / "train" / name)), x[row])
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["preset"] == "paper" and manifest["seed"] == 7
  assert manifest["config"]["eps"] == 8 / 255 and manifest["config"]["mode"] == "class"
  assert manifest["config"]["batch_size"] == 4
  # The input: an absolute path, and hashes anyone can recompute from the files.
  record = manifest["input"]
  assert record["spec"] == str((tmp_path / "imgs").resolve())
  assert record["sha256_of"] == "decoded arrays"
  assert record["sha256_x"] == hashlib.sha256(clean.x.tobytes()).hexdigest()
  assert record["sha256_y"] == hashlib.sha256(clean.y.astype("<i8").tobytes()).hexdigest()
  assert manifest["sha256_y"] == record["sha256_y"]
  assert manifest["sha256_x"] == hashlib.sha256(x.tobytes()).hexdigest()
  # --ratio 1/2: the listed rows are poisoned, every other row is the clean one.
  rows = manifest["poisoned_rows"]
  assert manifest["ratio"] == 0.5 and len(rows) == manifest["n_poisoned"] == 4
  clean_rows = sorted(set(range(7)) - set(rows))
  np.testing.assert_array_equal(x[clean_rows], clean.x[clean_rows])
  assert all((x[r] != clean.x[r]).any() for r in rows)
  # The run's output keeps its paths when poisoned again.
  assert data.load(str(out)).paths.tolist() == names


@pytest.mark.parametrize("alpha, ok", [(255, True), (0, False)])
def test_rgba_input(tmp_path, capsys, alpha, ok):
  """An opaque alpha channel is dropped; transparency is a one-line error."""
  _image_folder(tmp_path / "imgs", rgba_alpha=alpha)
  argv = ["poison", "--attack", "random", "--data", str(tmp_path / "imgs"),
          "--out", str(tmp_path / "o")]
  if ok:
    assert cli.main(argv) == 0
    with np.load(tmp_path / "o" / "train.npz") as z:
      assert z["x"].shape == (8, 8, 8, 3) and "cat/rgba.png" in z["paths"]
    return
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert "\n" not in err and "cat/rgba.png: image has transparent pixels" in err
  assert not (tmp_path / "o").exists()


def test_ntga_on_one_class_is_an_error(tmp_path, capsys):
  x = np.random.default_rng(0).integers(0, 256, (20, 4, 4, 1), np.uint8)
  np.savez(tmp_path / "one.npz", x=x, y=np.zeros(20, np.int64),
           class_names=np.array(["only"]))
  argv = ["poison", "--data", str(tmp_path / "one.npz"), "--out",
          str(tmp_path / "o"), *FAST]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert err == ("ntga: error: NTGA needs at least 2 classes: with one, the "
                 "GP's loss has no gradient and poisoning would change nothing")
  assert not (tmp_path / "o").exists()


def test_preset_reaches_the_attack_and_the_manifest(tmp_path, monkeypatch):
  from ntga.attacks import em
  seen = []

  def fake_poison(key, x, y, config, context):
    seen.append(config)
    return np.asarray(x)

  monkeypatch.setattr(em, "poison", fake_poison)
  out = tmp_path / "o"
  assert cli.main(["poison", "--attack", "em", "--preset", "cpu", "--data",
                   "digits", "--limit", "20", "--out", str(out), "--set",
                   "max_rounds=2"]) == 0
  assert seen == [em.EMConfig.cpu(max_rounds=2)]
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["preset"] == "cpu" and manifest["config"]["max_rounds"] == 2


def test_poison_help_lists_each_attacks_settings_and_presets(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["poison", "--help"])
  assert e.value.code == 0
  text = capsys.readouterr().out
  assert "--preset NAME" in text and "fraction such as 8/255" in text
  for name in ("ntga", "cuda", "ops", "random"):
    assert f"  {name} (presets: paper)\n" in text
  assert "  em (presets: paper, cpu)\n" in text
  assert "  rem (presets: paper, cpu)\n" in text
  assert "eps=auto" in text and "surrogate=fnn" in text and "max_rounds=1000" in text
  # Each non-paper preset: the settings it changes (whatever they are today).
  import dataclasses
  from ntga.attacks.em import EMConfig
  changed = [f.name for f in dataclasses.fields(EMConfig)
             if getattr(EMConfig.cpu(), f.name) != getattr(EMConfig(), f.name)]
  em_block = text.split("  em (presets: paper, cpu)\n")[1].split("  rem (")[0]
  line = " ".join(em_block.split("--preset cpu: ")[1].split())
  assert changed and [kv.split("=")[0] for kv in line.split()] == changed


def test_set_splits_pairs_at_a_comma_before_a_name():
  import dataclasses

  @dataclasses.dataclass(frozen=True, kw_only=True)
  class Config:
    defense_aware: str = "none"
    steps: int = 1
    eps: float = 0.1

  assert cli.split_pairs("a=1,b=2") == ["a=1", "b=2"]
  assert cli.split_pairs("defense_aware=grayscale,jpeg") == ["defense_aware=grayscale,jpeg"]
  assert cli.parse_settings(Config, ["steps=3,eps=0.5", "defense_aware=grayscale,jpeg"]) == {
      "steps": 3, "eps": 0.5, "defense_aware": "grayscale,jpeg"}
  assert cli.parse_settings(Config, ["defense_aware=grayscale,jpeg, steps=2"]) == {
      "defense_aware": "grayscale,jpeg", "steps": 2}
  with pytest.raises(cli.ConfigError, match="--set steps=2,: expected int"):
    cli.parse_settings(Config, ["steps=2,"])
  assert cli.parse_number(" 8/255", "--eps") == 8 / 255
  assert cli.parse_number("3e-2", "--eps") == 0.03


def test_png_names():
  from ntga import io
  assert io.png_names(["a/1.jpg", "a/2.png", "b/2.JPEG"]) == ["a/1.png", "a/2.png", "b/2.png"]
  assert io.png_names(["a/x.jpg", "a/x.png"]) == ["a/x.jpg.png", "a/x.png.png"]
  names = io.png_names(["x.jpg", "x.png", "x.jpg.png"])
  assert len(set(names)) == 3


def test_interrupted_run_says_how_to_resume(tmp_path, capsys, monkeypatch):
  from ntga import io
  from ntga.attacks import pipeline

  def interrupted(*args, out=None, **kw):
    del args, kw
    if checkpoint:
      (out / io.ATTACK_CHECKPOINTS).mkdir()
      (out / io.ATTACK_CHECKPOINTS / "block_0.npy").write_bytes(b"done")
    raise KeyboardInterrupt

  monkeypatch.setattr(pipeline, "poison_dataset", interrupted)
  for checkpoint, hint in ((False, "nothing was kept; re-run the same command "
                            "to start again"),
                           (True, "the progress is kept in OUT/.checkpoints; "
                            "re-run the same command to resume")):
    out = tmp_path / f"o{checkpoint}"
    assert cli.main(["poison", "--data", "digits", "--limit", "20", "--out",
                     str(out)]) == 130
    assert capsys.readouterr().err.strip() == f"ntga: interrupted; {hint}"
    assert out.exists() == checkpoint  # kept only with something to resume


def test_sigterm_interrupts_like_ctrl_c(monkeypatch):
  import signal
  with pytest.raises(KeyboardInterrupt):
    cli._terminated(signal.SIGTERM, None)  # pylint: disable=protected-access
  before = signal.getsignal(signal.SIGTERM)
  seen = []
  monkeypatch.setattr(cli, "run_doctor",
                      lambda args: seen.append(signal.getsignal(signal.SIGTERM)) or 0)
  assert cli.main(["doctor"]) == 0
  assert seen == [cli._terminated]  # pylint: disable=protected-access
  assert signal.getsignal(signal.SIGTERM) is before


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
  assert manifest["input"]["sha256_y"] == io.sha256_labels(data.load("digits").y)


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
