"""Tests of ntga.data: every spec format, the stratified limit, and errors."""

import gzip
import io
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from ntga import data
from ntga.data import _digits
from ntga.data._limit import apply_limit
from ntga.errors import DataError

from conftest import MNIST_DIR  # ../shared/data/mnist beside the checkout
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _rng(seed=0):
  return np.random.default_rng(seed)


# ---------------------------------------------------------------- import cost


def test_import_does_not_pull_in_tensorflow_or_jax():
  code = ("import sys, ntga.data; "
          "print(sorted(m for m in ('jax', 'tensorflow', 'tensorflow_datasets') if m in sys.modules))")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       check=True, cwd=root)
  assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- digits


def test_digits_pixels_labels_and_split():
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  bunch = load_digits()
  train, test = data.load("digits", "train"), data.load("digits", "test")
  assert train.x.shape == (1347, 8, 8, 1) and test.x.shape == (450, 8, 8, 1)
  assert train.x.dtype == np.uint8 and train.y.dtype == np.int64
  assert train.class_names == tuple("0123456789")
  tr_pos = _digits.digits_split_positions(bunch.target, "train")
  te_pos = _digits.digits_split_positions(bunch.target, "test")
  assert len(np.intersect1d(tr_pos, te_pos)) == 0
  assert len(tr_pos) + len(te_pos) == len(bunch.target)
  expected = np.round(bunch.images * 255 / 16).astype(np.uint8)[..., None]
  np.testing.assert_array_equal(test.x, expected[te_pos])
  np.testing.assert_array_equal(train.y, bunch.target[tr_pos])
  assert train.x.max() == 255 and train.x.min() == 0
  # Stratified: every class has about a quarter of its examples in test.
  frac = np.bincount(test.y) / np.bincount(bunch.target)
  assert np.all(np.abs(frac - 0.25) < 0.01)
  np.testing.assert_array_equal(data.load("digits", "test").x, test.x)


def test_digits_unknown_split():
  with pytest.raises(DataError, match="digits.*'validation'"):
    data.load("digits", "validation")


# ---------------------------------------------------------------- limit


def test_stratified_order_round_robin():
  y = np.array([2, 0, 1, 0, 2, 0, 0, 1, 2, 0])
  order = data.stratified_order(y, seed=7)
  assert sorted(order.tolist()) == list(range(len(y)))
  # Rounds: classes 0, 1, 2 each once, twice; then class 2 (3 members) and 0.
  assert y[order].tolist() == [0, 1, 2, 0, 1, 2, 0, 2, 0, 0]
  np.testing.assert_array_equal(order, data.stratified_order(y, seed=7))
  orders = {tuple(data.stratified_order(y, seed=s)) for s in range(10)}
  assert len(orders) > 1


def test_stratified_order_prefixes_are_balanced():
  y = _rng().integers(0, 5, size=300)
  order = data.stratified_order(y, seed=1)
  smallest = np.bincount(y).min()
  for k in (5, 50, 5 * smallest):
    counts = np.bincount(y[order[:k]], minlength=5)
    assert counts.max() - counts.min() <= 1, (k, counts)


def test_limit_digits_is_stratified_sorted_and_seeded():
  full = data.load("digits", "train")
  ds = data.load("digits", "train", limit=20)
  assert len(ds) == 20
  np.testing.assert_array_equal(np.bincount(ds.y, minlength=10), np.full(10, 2))
  assert np.all(np.diff(ds.index) > 0)
  np.testing.assert_array_equal(ds.x, full.x[ds.index])
  np.testing.assert_array_equal(ds.y, full.y[ds.index])
  np.testing.assert_array_equal(np.sort(data.stratified_order(full.y, 0)[:20]), ds.index)
  again = data.load("digits", "train", limit=20)
  np.testing.assert_array_equal(ds.index, again.index)
  other = data.load("digits", "train", limit=20, seed=1)
  assert not np.array_equal(ds.index, other.index)
  np.testing.assert_array_equal(np.bincount(other.y, minlength=10), np.full(10, 2))


def test_limit_bounds():
  full = data.load("digits", "test")
  whole = data.load("digits", "test", limit=10_000)
  np.testing.assert_array_equal(whole.x, full.x)
  np.testing.assert_array_equal(whole.index, np.arange(len(full)))
  for bad in (0, -3):
    with pytest.raises(DataError, match="limit"):
      data.load("digits", limit=bad)


# ---------------------------------------------------------------- IDX


def _idx_bytes(arr, ndim):
  header = bytes([0, 0, 8, ndim]) + np.asarray(arr.shape, ">u4").tobytes()
  return header + np.ascontiguousarray(arr, np.uint8).tobytes()


def _write_idx(root, prefix, x, y, compress=True, images=None, labels=None):
  os.makedirs(root, exist_ok=True)
  opener = gzip.open if compress else open
  ext = ".gz" if compress else ""
  with opener(os.path.join(root, f"{prefix}-images-idx3-ubyte{ext}"), "wb") as f:
    f.write(images if images is not None else _idx_bytes(x, 3))
  with opener(os.path.join(root, f"{prefix}-labels-idx1-ubyte{ext}"), "wb") as f:
    f.write(labels if labels is not None else _idx_bytes(y, 1))


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
  x = _rng().integers(0, 256, (7, 5, 4), dtype=np.uint8)
  y = np.array([0, 3, 1, 3, 2, 0, 1], np.uint8)
  _write_idx(tmp_path, "train", x, y, compress)
  _write_idx(tmp_path, "t10k", x[:3], y[:3], compress)
  ds = data.load(str(tmp_path), "train")
  np.testing.assert_array_equal(ds.x, x[..., None])
  np.testing.assert_array_equal(ds.y, y)
  assert ds.y.dtype == np.int64 and ds.class_names == ("0", "1", "2", "3")
  assert len(data.load(str(tmp_path), "test")) == 3


def test_real_mnist_idx():
  train, test = data.load(MNIST_DIR, "train"), data.load(MNIST_DIR, "test")
  assert train.x.shape == (60000, 28, 28, 1) and test.x.shape == (10000, 28, 28, 1)
  assert train.x.dtype == np.uint8 and train.class_names == tuple("0123456789")
  assert np.bincount(train.y).tolist() == MNIST_TRAIN_COUNTS
  assert np.bincount(test.y).tolist() == MNIST_TEST_COUNTS
  assert train.x.max() == 255 and 30 < train.x.mean() < 36


def test_idx_errors(tmp_path):
  x = np.zeros((4, 3, 3), np.uint8)
  y = np.zeros(4, np.uint8)
  _write_idx(tmp_path / "ok", "train", x, y)
  with pytest.raises(DataError, match=r"ok.*t10k-images"):
    data.load(str(tmp_path / "ok"), "test")
  _write_idx(tmp_path / "count", "train", x, y[:3])
  with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: 3 labels.*4 images"):
    data.load(str(tmp_path / "count"))
  bad_magic = b"\x00\x00\x08\x01" + _idx_bytes(x, 3)[4:]
  _write_idx(tmp_path / "magic", "train", x, y, images=bad_magic)
  with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: bad IDX magic"):
    data.load(str(tmp_path / "magic"))
  _write_idx(tmp_path / "short", "train", x, y, images=_idx_bytes(x, 3)[:-5])
  with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: header declares"):
    data.load(str(tmp_path / "short"))
  (tmp_path / "gz").mkdir()
  (tmp_path / "gz" / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
  (tmp_path / "gz" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(y, 1)))
  with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: cannot read"):
    data.load(str(tmp_path / "gz"))


# ---------------------------------------------------------------- CIFAR pickles


def _dump(path, obj):
  with open(path, "wb") as f:
    pickle.dump(obj, f, protocol=2)


def _fake_cifar10(root, per_batch=3, str_keys=False):
  """Writes a tiny cifar-10-batches-py folder; returns (train x, y, test x, y)."""
  k = (lambda s: s) if str_keys else (lambda s: s.encode())
  folder = root / "cifar-10-batches-py"
  folder.mkdir(parents=True)
  rng = _rng(3)
  xs, ys = [], []
  for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    flat = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, per_batch).tolist()
    _dump(folder / name, {k("data"): flat, k("labels"): labels, k("batch_label"): k(name)})
    xs.append(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    ys.append(labels)
  names = [k(n) for n in ("airplane automobile bird cat deer dog frog horse ship truck").split()]
  _dump(folder / "batches.meta", {k("label_names"): names, k("num_vis"): 3072})
  return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], np.array(ys[5])


@pytest.mark.parametrize("str_keys", [False, True])
def test_cifar10_pickles(tmp_path, str_keys):
  x_tr, y_tr, x_te, y_te = _fake_cifar10(tmp_path, str_keys=str_keys)
  for spec in (tmp_path, tmp_path / "cifar-10-batches-py"):
    ds = data.load(str(spec), "train")
    assert ds.x.shape == (15, 32, 32, 3)
    np.testing.assert_array_equal(ds.x, x_tr)
    np.testing.assert_array_equal(ds.y, y_tr)
    assert ds.class_names[0] == "airplane" and ds.num_classes == 10
  test = data.load(str(tmp_path), "test")
  np.testing.assert_array_equal(test.x, x_te)
  np.testing.assert_array_equal(test.y, y_te)


def test_cifar_channel_layout(tmp_path):
  """Pixel (row 1, col 2) of channel c sits at flat position c*1024 + 1*32 + 2."""
  _fake_cifar10(tmp_path)
  folder = tmp_path / "cifar-10-batches-py"
  flat = np.zeros((1, 3072), np.uint8)
  flat[0, [0 * 1024 + 34, 1 * 1024 + 34, 2 * 1024 + 34]] = [10, 20, 30]
  _dump(folder / "test_batch", {b"data": flat, b"labels": [4]})
  ds = data.load(str(folder), "test")
  assert ds.x[0, 1, 2].tolist() == [10, 20, 30]
  assert ds.x.sum() == 60


def test_cifar100_pickles_and_tarball(tmp_path):
  folder = tmp_path / "src" / "cifar-100-python"
  folder.mkdir(parents=True)
  rng = _rng(5)
  x = {s: rng.integers(0, 256, (n, 3072), dtype=np.uint8) for s, n in (("train", 6), ("test", 2))}
  fine = {"train": [0, 99, 5, 7, 99, 1], "test": [3, 4]}
  for s in ("train", "test"):
    _dump(folder / s, {b"data": x[s], b"fine_labels": fine[s], b"coarse_labels": [0] * len(fine[s])})
  _dump(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                          b"coarse_label_names": [b"a"] * 20})
  ds = data.load(str(tmp_path / "src"), "train")
  assert ds.num_classes == 100 and ds.class_names[99] == "c99"
  np.testing.assert_array_equal(ds.y, fine["train"])
  np.testing.assert_array_equal(ds.x, x["train"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
  archive = tmp_path / "cifar-100-python.tar.gz"
  with tarfile.open(archive, "w:gz") as tf:
    tf.add(folder, arcname="cifar-100-python")
  from_tar = data.load(str(archive), "test")
  np.testing.assert_array_equal(from_tar.y, fine["test"])
  np.testing.assert_array_equal(from_tar.x, data.load(str(folder), "test").x)


def test_cifar_errors(tmp_path):
  _fake_cifar10(tmp_path)
  folder = tmp_path / "cifar-10-batches-py"
  os.remove(folder / "data_batch_3")
  with pytest.raises(DataError, match=r"data_batch_3: missing"):
    data.load(str(folder), "train")
  _dump(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]})
  with pytest.raises(DataError, match=r"test_batch: 1 labels for 2 images"):
    data.load(str(folder), "test")
  (folder / "test_batch").write_bytes(pickle.dumps({b"data": os.getcwd}))
  with pytest.raises(DataError, match=r"test_batch: refusing to unpickle posix.getcwd"):
    data.load(str(folder), "test")
  (folder / "test_batch").write_bytes(b"garbage")
  with pytest.raises(DataError, match=r"test_batch: not a readable pickle"):
    data.load(str(folder), "test")


# ---------------------------------------------------------------- image folders


def _save(path, arr, fmt=None):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(arr).save(path, format=fmt)


def _grey(value, size=(4, 5)):
  return np.full(size, value, np.uint8)


def test_image_folder_order_and_pixels(tmp_path):
  # Written out of order: classes sort by folder name, files by file name.
  _save(tmp_path / "train" / "zebra" / "b.png", _grey(1))
  _save(tmp_path / "train" / "zebra" / "a.png", _grey(2))
  _save(tmp_path / "train" / "ant" / "10.PNG", _grey(3))
  _save(tmp_path / "train" / "ant" / "09.png", _grey(4))
  _save(tmp_path / "train" / "ant" / "notes.png", _grey(5))
  (tmp_path / "train" / "ant" / "readme.txt").write_text("ignored")
  _save(tmp_path / "test" / "ant" / "x.png", _grey(6))
  ds = data.load(str(tmp_path), "train")
  assert ds.class_names == ("ant", "zebra")
  assert ds.x.shape == (5, 4, 5, 1) and ds.x.dtype == np.uint8
  # ant: 09.png, 10.PNG, notes.png; zebra: a.png, b.png
  assert ds.x[:, 0, 0, 0].tolist() == [4, 3, 5, 2, 1]
  assert ds.y.tolist() == [0, 0, 0, 1, 1]
  np.testing.assert_array_equal(ds.index, np.arange(5))
  sub = data.load(str(tmp_path), "train", limit=2)
  assert sub.index.tolist() in ([0, 3], [0, 4], [1, 3], [1, 4], [2, 3], [2, 4])
  np.testing.assert_array_equal(sub.x, ds.x[sub.index])
  test = data.load(str(tmp_path), "test")
  assert test.class_names == ("ant",) and test.x[0, 0, 0, 0] == 6


def test_image_folder_colour_promotes_all_to_rgb(tmp_path):
  rgb = _rng().integers(0, 256, (4, 5, 3), dtype=np.uint8)
  _save(tmp_path / "a" / "1.png", _grey(77))
  _save(tmp_path / "b" / "1.png", rgb)
  rgba = np.concatenate([rgb, np.full((4, 5, 1), 255, np.uint8)], axis=-1)
  _save(tmp_path / "c" / "1.png", rgba)
  palette = Image.fromarray(rgb).quantize(colors=4)
  (tmp_path / "d").mkdir()
  palette.save(tmp_path / "d" / "1.png")
  ds = data.load(str(tmp_path), "test")  # flat layout: one split for any name
  assert ds.x.shape == (4, 4, 5, 3)
  assert np.all(ds.x[0] == 77)
  np.testing.assert_array_equal(ds.x[1], rgb)
  np.testing.assert_array_equal(ds.x[2], rgb)
  np.testing.assert_array_equal(ds.x[3], np.asarray(palette.convert("RGB")))
  _save(tmp_path / "grey" / "a" / "1.png", _grey(77))
  _save(tmp_path / "grey" / "b" / "1.png", np.stack([_grey(9), _grey(255)], -1))  # mode LA
  grey_only = data.load(str(tmp_path / "grey"), "train")
  assert grey_only.x.shape == (2, 4, 5, 1)
  assert grey_only.x[:, 0, 0, 0].tolist() == [77, 9]


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_image_folder_transparency_is_an_error(tmp_path, mode):
  """An opaque alpha channel is dropped; any transparent pixel is refused."""
  rgb = _rng().integers(0, 256, (4, 5, 3), dtype=np.uint8)
  alpha = np.full((4, 5), 255, np.uint8)
  _save(tmp_path / "ok" / "a" / "1.png", rgb)
  _save(tmp_path / "ok" / "b" / "1.png", np.dstack([rgb, alpha]))  # opaque RGBA
  np.testing.assert_array_equal(data.load(str(tmp_path / "ok")).x[1], rgb)
  alpha[2, 3] = 254
  if mode == "RGBA":
    img = Image.fromarray(np.dstack([rgb, alpha]))
  elif mode == "LA":
    img = Image.fromarray(np.dstack([rgb[..., 0], alpha]))
  else:  # a palette image with a transparent colour
    img = Image.fromarray(rgb).quantize(colors=4)
    img.info["transparency"] = int(np.asarray(img)[0, 0])
  assert img.mode == mode
  (tmp_path / "bad" / "a").mkdir(parents=True)
  img.save(tmp_path / "bad" / "a" / "1.png")
  with pytest.raises(DataError, match=rf"bad/a/1.png: image has transparent pixels \(mode {mode}"):
    data.load(str(tmp_path / "bad"))


def test_image_folder_keeps_each_images_path(tmp_path):
  rng = _rng(3)
  for split in ("train", "test"):
    for cls, names in (("cat", ["b.png", "a.JPG"]), ("automobile", ["0001.png", "0000.png"])):
      for name in names:
        _save(tmp_path / "src" / split / cls / name, rng.integers(0, 256, (4, 4, 3), np.uint8),
              fmt="JPEG" if name.endswith("JPG") else None)
  ds = data.load(str(tmp_path / "src"), "train")
  assert ds.paths.tolist() == ["automobile/0000.png", "automobile/0001.png", "cat/a.JPG",
                               "cat/b.png"]
  sub = data.load(str(tmp_path / "src"), "train", limit=2)
  assert sub.paths.tolist() == ds.paths[sub.index].tolist()
  archive = tmp_path / "src.tar"
  with tarfile.open(archive, "w") as tf:
    tf.add(tmp_path / "src", arcname="wrapper")
  assert data.load(str(archive), "test").paths.tolist() == ds.paths.tolist()
  assert data.load("digits", limit=5).paths is None
  # An .npz carries paths through (a poisoning run's train.npz does).
  np.savez(tmp_path / "p.npz", x=ds.x, y=ds.y, paths=ds.paths)
  assert data.load(str(tmp_path / "p.npz")).paths.tolist() == ds.paths.tolist()
  for bad, message in ((["a/../../x.png"] * 4, "not a plain relative path"),
                       (["/etc/x.png", "b", "c", "d"], "not a plain relative path"),
                       (["a.png", "a.png", "b", "c"], "'a.png' names more than one image"),
                       (["a", "b"], "paths must be 4 strings")):
    np.savez(tmp_path / "bad.npz", x=ds.x, y=ds.y, paths=np.array(bad))
    with pytest.raises(DataError, match=message):
      data.load(str(tmp_path / "bad.npz"))


def test_require_split_refuses_one_split_sources(tmp_path):
  _save(tmp_path / "flat" / "a" / "1.png", _grey(1))
  np.savez(tmp_path / "one.npz", x=np.zeros((2, 2, 2, 1), np.uint8), y=np.array([0, 1]))
  # Returned for any split by default...
  assert len(data.load(str(tmp_path / "flat"), "test")) == 1
  assert len(data.load(str(tmp_path / "one.npz"), "test")) == 2
  # ...and refused when the split must be a separate one.
  with pytest.raises(DataError, match=r"flat: one split of <class>/<image> folders, not a "
                     r"separate 'test' split"):
    data.load(str(tmp_path / "flat"), "test", require_split=True)
  with pytest.raises(DataError, match=r"one.npz: an .npz file holds one split"):
    data.load(str(tmp_path / "one.npz"), "test", require_split=True)
  _save(tmp_path / "both" / "test" / "a" / "1.png", _grey(5))
  _save(tmp_path / "both" / "train" / "a" / "1.png", _grey(6))
  assert data.load(str(tmp_path / "both"), "test", require_split=True).x[0, 0, 0, 0] == 5
  assert len(data.load("digits", "test", require_split=True)) == 450


def test_resolve_spec(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "real").mkdir()
  os.symlink(tmp_path / "real", tmp_path / "link")
  assert data.resolve_spec("digits") == "digits"
  assert data.resolve_spec("tfds:mnist", "/d") == "tfds:mnist"
  assert data.resolve_spec("link") == str((tmp_path / "real").resolve())
  assert data.resolve_spec("x.npz", data_dir=str(tmp_path / "d")) == str(
      (tmp_path / "d" / "x.npz").resolve())


def test_image_folder_jpeg_case_insensitive_and_flat_split(tmp_path):
  _save(tmp_path / "test" / "cat" / "1.JPG", _grey(100, (8, 8)), fmt="JPEG")
  _save(tmp_path / "test" / "dog" / "2.jpeg", _grey(200, (8, 8)), fmt="JPEG")
  ds = data.load(str(tmp_path / "test"), "train")  # a split folder passed directly
  assert ds.class_names == ("cat", "dog") and ds.x.shape == (2, 8, 8, 1)
  assert abs(int(ds.x[0].mean()) - 100) <= 2 and abs(int(ds.x[1].mean()) - 200) <= 2
  with pytest.raises(DataError, match=r"no 'train' split folder \(found: test\)"):
    data.load(str(tmp_path), "train")


def test_image_folder_tarball_matches_directory(tmp_path):
  src = tmp_path / "src" / "cifar_like"
  rng = _rng(9)
  for split, n in (("train", 3), ("test", 2)):
    for cls in ("cat", "airplane", "bird"):
      for i in range(n):
        _save(src / split / cls / f"{i:04d}.png", rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
  archive = tmp_path / "imgs.tar.gz"
  with tarfile.open(archive, "w:gz") as tf:
    tf.add(src, arcname="cifar_like")
    junk = tarfile.TarInfo("cifar_like/train/cat/._0000.png")  # macOS resource fork
    junk.size = 4
    tf.addfile(junk, io.BytesIO(b"junk"))
  for split in ("train", "test"):
    from_dir = data.load(str(src), split)
    from_tar = data.load(str(archive), split)
    assert from_tar.class_names == ("airplane", "bird", "cat")
    np.testing.assert_array_equal(from_tar.x, from_dir.x)
    np.testing.assert_array_equal(from_tar.y, from_dir.y)
  assert len(data.load(str(archive), "train")) == 9
  with pytest.raises(DataError, match=r"imgs.tar.gz: no 'val' split folder"):
    data.load(str(archive), "val")


def test_a_limited_image_folder_decodes_only_the_kept_images(tmp_path):
  for c, n in (("a", 5), ("b", 3), ("c", 4)):
    for i in range(n):
      _save(tmp_path / "imgs" / c / f"{i}.png", np.full((4, 4, 3), 10 * i + n, np.uint8))
  whole = data.load(str(tmp_path / "imgs"))
  limited = data.load(str(tmp_path / "imgs"), limit=5, seed=3)
  expected = apply_limit(whole, 5, 3)
  for field in ("x", "y", "index", "paths"):
    np.testing.assert_array_equal(getattr(limited, field), getattr(expected, field))
  # an image the limit leaves out is never decoded
  dropped = sorted(set(whole.paths) - set(limited.paths))[0]
  (tmp_path / "imgs" / dropped).write_bytes(b"\x89PNG not really")
  with pytest.raises(DataError, match="unreadable or corrupt image"):
    data.load(str(tmp_path / "imgs"))
  again = data.load(str(tmp_path / "imgs"), limit=5, seed=3)
  np.testing.assert_array_equal(again.x, expected.x)


def test_a_limited_image_folder_is_in_colour_when_a_left_out_image_is(tmp_path):
  for c in "ab":
    for i in range(4):
      _save(tmp_path / "mixed" / c / f"{i}.png", _grey(20 * i, (4, 4)))
  _save(tmp_path / "mixed" / "b" / "3.png", np.full((4, 4, 3), 90, np.uint8))
  whole = data.load(str(tmp_path / "mixed"))
  assert whole.x.shape[-1] == 3
  seed = next(s for s in range(50) if "b/3.png" not in apply_limit(whole, 3, s).paths)
  limited = data.load(str(tmp_path / "mixed"), limit=3, seed=seed)
  np.testing.assert_array_equal(limited.x, apply_limit(whole, 3, seed).x)
  assert limited.x.shape[-1] == 3


def test_image_folder_errors(tmp_path):
  _save(tmp_path / "size" / "a" / "1.png", _grey(0, (4, 4)))
  _save(tmp_path / "size" / "b" / "1.png", _grey(0, (4, 6)))
  with pytest.raises(DataError, match=r"b/1.png: image size 6x4 differs from 4x4 of .*a/1.png"):
    data.load(str(tmp_path / "size"))
  _save(tmp_path / "corrupt" / "a" / "1.png", _grey(0))
  (tmp_path / "corrupt" / "a" / "2.png").write_bytes(b"\x89PNG not really")
  with pytest.raises(DataError, match=r"a/2.png: unreadable or corrupt image: not an image "
                     r"format Pillow recognises$"):
    data.load(str(tmp_path / "corrupt"))
  _save(tmp_path / "empty" / "a" / "1.png", _grey(0))
  (tmp_path / "empty" / "b").mkdir()
  with pytest.raises(DataError, match=r"empty/b: empty class folder"):
    data.load(str(tmp_path / "empty"))
  (tmp_path / "none").mkdir()
  with pytest.raises(DataError, match=r"none: no .png/.jpg/.jpeg images found"):
    data.load(str(tmp_path / "none"))
  _save(tmp_path / "deep16" / "a" / "1.png", np.zeros((2, 2), np.uint16))
  with pytest.raises(DataError, match=r"1.png: image mode I;16"):
    data.load(str(tmp_path / "deep16"))
  _save(tmp_path / "layout" / "train" / "a" / "1.png", _grey(0))
  _save(tmp_path / "layout" / "stray.png", _grey(0))
  with pytest.raises(DataError, match=r"layout/stray.png: image outside the expected layout"):
    data.load(str(tmp_path / "layout"))
  bad_tar = tmp_path / "bad.tar.gz"
  bad_tar.write_bytes(b"this is not an archive")
  with pytest.raises(DataError, match=r"bad.tar.gz: cannot read archive"):
    data.load(str(bad_tar))


# ---------------------------------------------------------------- npz


def test_npz_round_trip_and_any_split(tmp_path):
  x = _rng().integers(0, 256, (6, 3, 3, 2), dtype=np.uint8)
  y = np.array([1, 0, 2, 2, 1, 0])
  path = tmp_path / "d.npz"
  np.savez(path, x=x, y=y, class_names=np.array(["a", "b", "c"]), index=np.arange(10, 16))
  for split in ("train", "test"):
    ds = data.load(str(path), split)
    np.testing.assert_array_equal(ds.x, x)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.class_names == ("a", "b", "c") and ds.y.dtype == np.int64
    np.testing.assert_array_equal(ds.index, np.arange(10, 16))
  sub = data.load(str(path), limit=3)
  assert sorted(sub.y.tolist()) == [0, 1, 2]
  assert set(sub.index.tolist()) <= set(range(10, 16))


def test_npz_conversions(tmp_path):
  path = tmp_path / "d.npz"
  np.savez(path, x=np.array([[[0.0, 255.0]], [[3.0, 4.0]]]), y=np.array([0, 4], np.int32))
  ds = data.load(str(path))
  assert ds.x.shape == (2, 1, 2, 1) and ds.x.dtype == np.uint8
  assert ds.x[0, 0, 1, 0] == 255
  assert ds.class_names == ("0", "1", "2", "3", "4")


def test_npz_output_directory(tmp_path):
  x = np.zeros((2, 2, 2, 1), np.uint8)
  np.savez(tmp_path / "train.npz", x=x, y=np.array([0, 1]))
  (tmp_path / "manifest.json").write_text("{}")
  assert len(data.load(str(tmp_path), "train")) == 2
  with pytest.raises(DataError, match=r"no test.npz for split 'test' \(found: train\)"):
    data.load(str(tmp_path), "test")


@pytest.mark.parametrize("arrays, message", [
    (dict(y=np.zeros(2, int)), r"no 'x' array"),
    (dict(x=np.zeros((2, 2, 2), np.uint8)), r"no 'y' array"),
    (dict(x=np.zeros((2, 2, 2), np.uint8), y=np.zeros(3, int)), r"3 labels for 2 images"),
    (dict(x=np.zeros((2, 2), np.uint8), y=np.zeros(2, int)), r"x must have shape"),
    (dict(x=np.full((2, 2, 2), 0.5), y=np.zeros(2, int)), r"non-integer values"),
    (dict(x=np.full((2, 2, 2), 256), y=np.zeros(2, int)), r"outside the uint8 range"),
    (dict(x=np.full((2, 2, 2), -1), y=np.zeros(2, int)), r"outside the uint8 range"),
    (dict(x=np.zeros((2, 2, 2), np.uint8), y=np.zeros((2, 1), int)), r"y must be 1-D"),
    (dict(x=np.zeros((2, 2, 2), np.uint8), y=np.zeros(2)), r"integer class indices"),
    (dict(x=np.zeros((2, 2, 2), np.uint8), y=np.array([0, 3]), class_names=np.array(["a"])),
     r"label 3 but only 1 class names"),
])
def test_npz_errors(tmp_path, arrays, message):
  path = tmp_path / "bad.npz"
  np.savez(path, **arrays)
  with pytest.raises(DataError, match=r"bad.npz: .*" + message):
    data.load(str(path))


@pytest.mark.parametrize("content", [b"PK not a zip", b"plain text, not an archive\n"])
def test_npz_corrupt_file(tmp_path, content):
  path = tmp_path / "broken.npz"
  path.write_bytes(content)
  with pytest.raises(DataError, match=r"broken.npz: not a readable .npz file: not a zip archive$"):
    data.load(str(path))


def test_npz_truncated_archive(tmp_path):
  path = tmp_path / "cut.npz"
  np.savez(path, x=np.zeros((4, 2, 2), np.uint8), y=np.zeros(4, np.int64))
  whole = path.read_bytes()
  path.write_bytes(whole[:len(whole) // 2] + whole[-22:])  # keeps the end record
  with pytest.raises(DataError, match=r"cut.npz: not a readable .npz file"):
    data.load(str(path))


# ---------------------------------------------------------------- specs


def test_unknown_specs(tmp_path):
  with pytest.raises(DataError, match=r"no_such_set: unknown dataset"):
    data.load("no_such_set")
  with pytest.raises(DataError, match=r"missing dataset name"):
    data.load("tfds:")
  other = tmp_path / "x.csv"
  other.write_text("1,2")
  with pytest.raises(DataError, match=r"x.csv: not a dataset file"):
    data.load(str(other))


def test_relative_path_resolved_against_data_dir(tmp_path):
  np.savez(tmp_path / "rel.npz", x=np.zeros((1, 2, 2, 1), np.uint8), y=np.array([0]))
  assert len(data.load("rel.npz", data_dir=str(tmp_path))) == 1
