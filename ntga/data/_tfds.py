"""``tfds:NAME`` specs through tensorflow-datasets.

TensorFlow and tensorflow-datasets are imported here, inside the function, so
only ``tfds:`` specs pay for them. The dataset is built with
``tfds.builder(name, data_dir=...)`` and ``download_and_prepare()`` (a no-op
once prepared; offline it succeeds when the download cache already holds the
source files) and read in full with ``as_dataset(batch_size=-1)``. Rows come in
the order tfds stored them, which is deterministic but need not be the
original distribution's order.
"""

from __future__ import annotations

import numpy as np

from ntga.data._arrays import make_dataset
from ntga.data._types import Dataset
from ntga.errors import DataError


def load_tfds_split(name: str, split: str, data_dir: str | None) -> Dataset:
  """Loads a split of a tensorflow-datasets image-classification dataset.

  Args:
    name: the tfds name, optionally with config/version (``"mnist"``,
      ``"cifar100"``, ``"svhn_cropped:3.*.*"``).
    split: a split of the dataset; tfds slicing (``"train[:10%]"``) works too.
    data_dir: tfds data directory; None for tfds's default
      (``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``).

  Returns:
    uint8 NHWC images, int64 labels, class names from the builder's label
    feature.

  Example:
    >>> ds = load_tfds_split("mnist", "test", None)  # doctest: +SKIP
    >>> ds.x.shape
    (10000, 28, 28, 1)
  """
  where = f"tfds:{name}"
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise DataError(f"{where}: tensorflow-datasets is not installed ({e})") from e
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.DatasetNotFoundError as e:
    first_line = str(e).strip().splitlines()[0]
    raise DataError(f"{where}: unknown tensorflow-datasets name ({first_line})") from e
  keys = builder.info.supervised_keys
  if not keys or len(keys) != 2:
    raise DataError(f"{where}: has no (image, label) supervised keys")
  image_key, label_key = keys
  try:
    builder.download_and_prepare()
  except OSError as e:  # network failures (requests/urllib3 errors are OSErrors)
    raise DataError(f"{where}: download_and_prepare failed under data_dir "
                    f"{builder.data_dir_root}: {type(e).__name__}: {str(e).splitlines()[0]}") from e
  base_split = split.split("[")[0]
  if base_split not in builder.info.splits:
    raise DataError(f"{where}: no split {base_split!r} (have: {', '.join(sorted(builder.info.splits))})")
  data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
  x, y = np.asarray(data[image_key]), np.asarray(data[label_key])
  if x.dtype != np.uint8 or x.ndim != 4:
    raise DataError(f"{where}: feature {image_key!r} is {x.dtype} {x.shape}, expected uint8 NHWC")
  feature = builder.info.features[label_key]
  names = getattr(feature, "names", None)
  return make_dataset(x, y, names, where)
