"""Dataset loading: ``load(spec, split)`` -> :class:`Dataset` (uint8 NHWC, int64 labels).

Importing this package is cheap: scikit-learn, Pillow and TensorFlow are only
imported by the loaders that need them, and JAX never.

Example:
  >>> from ntga import data
  >>> ds = data.load("digits", "test", limit=50, seed=1)
  >>> ds.x.shape, ds.num_classes
  ((50, 8, 8, 1), 10)
"""

from ntga.data._arrays import check_arrays
from ntga.data._limit import stratified_order
from ntga.data._load import load, resolve_spec
from ntga.data._types import Dataset

__all__ = ["Dataset", "check_arrays", "load", "resolve_spec", "stratified_order"]
