"""The real ``tfds:`` path, offline: tfds's download cache is seeded with MNIST.

No mocking: tensorflow-datasets' own MNIST builder runs ``download_and_prepare``
and finds the original MNIST files from ../shared/data/mnist already in its
download cache (under the names and with the ``.INFO`` files its download
manager writes), so it builds the dataset without touching the network.
"""

import hashlib
import os
import posixpath
import shutil

import numpy as np
import pytest

from ntga import data
from ntga.errors import DataError

from conftest import MNIST_DIR  # ../shared/data/mnist beside the checkout

pytestmark = pytest.mark.tfds


@pytest.fixture(scope="module")
def tfds_data_dir(tmp_path_factory):
  """A tfds data_dir whose download cache already holds the MNIST files."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  # a dependency of ntga
  from tensorflow_datasets.core.download import resource  # pylint: disable=import-outside-toplevel
  data_dir = tmp_path_factory.mktemp("tfds")
  builder = tfds.builder("mnist", data_dir=str(data_dir))
  # DownloadManager caches under <data_dir>/downloads/<dataset name>/.
  cache = data_dir / "downloads" / builder.name
  cache.mkdir(parents=True)
  url_infos = builder.url_infos
  assert len(url_infos) == 4, url_infos
  for url, info in url_infos.items():
    fname = posixpath.basename(url)
    dst = cache / resource.get_dl_fname(url, info.checksum)
    shutil.copyfile(os.path.join(MNIST_DIR, fname), dst)
    resource.write_info_file(url=url, path=dst, dataset_name=builder.name,
                             original_fname=fname, url_info=info)
  return str(data_dir)


def _hashes(x):
  return [hashlib.sha1(img.tobytes()).hexdigest() for img in x]


@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_tfds_mnist_matches_idx(tfds_data_dir, split, n):
  ds = data.load("tfds:mnist", split, data_dir=tfds_data_dir)
  assert ds.x.shape == (n, 28, 28, 1) and ds.x.dtype == np.uint8
  assert ds.y.shape == (n,) and ds.y.dtype == np.int64
  assert ds.class_names == tuple(str(i) for i in range(10))
  np.testing.assert_array_equal(ds.index, np.arange(n))
  ref = data.load(MNIST_DIR, split)
  # tfds stores examples in its own (key-hash) order, not the IDX order, so the
  # splits are compared as multisets of (image, label) pairs.
  assert sorted(zip(_hashes(ds.x), ds.y.tolist())) == sorted(zip(_hashes(ref.x), ref.y.tolist()))


def test_tfds_limit_is_stratified(tfds_data_dir):
  ds = data.load("tfds:mnist", "test", data_dir=tfds_data_dir, limit=30, seed=3)
  assert len(ds) == 30
  np.testing.assert_array_equal(np.bincount(ds.y, minlength=10), np.full(10, 3))
  assert np.all(np.diff(ds.index) > 0)


def test_tfds_slicing_and_bad_split(tfds_data_dir):
  ds = data.load("tfds:mnist", "test[:100]", data_dir=tfds_data_dir)
  assert ds.x.shape == (100, 28, 28, 1)
  with pytest.raises(DataError, match="tfds:mnist.*validation"):
    data.load("tfds:mnist", "validation", data_dir=tfds_data_dir)


def test_tfds_unknown_name(tmp_path):
  with pytest.raises(DataError, match="tfds:no_such_dataset_xyz"):
    data.load("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))
