"""Linear separability of poisons: can a linear model fit them?

The diagnostic of Yu et al., "Availability Attacks Create Shortcuts", KDD
2022: availability poisons that work tend to be (almost) linearly separable by
class, so a linear classifier fits the perturbations alone -- and often the
poisoned images -- far better than it fits clean images.
"""

from __future__ import annotations

import jax
import numpy as np

from ntga.errors import DataError
from ntga.victims import _linear


def _standardise(x: np.ndarray) -> np.ndarray:
  """Flattens, centres each feature and scales by one global std."""
  flat = np.asarray(x, np.float32).reshape((len(x), -1))
  flat = flat - flat.mean(axis=0, keepdims=True)
  return flat / max(float(flat.std()), 1e-12)


def linear_separability(key: jax.Array, x: np.ndarray, y: np.ndarray,
                        num_classes: int, *, x_clean: np.ndarray | None = None,
                        epochs: int = 20, lr: float = 1e-2) -> dict[str, float]:
  """Training accuracy of linear classifiers on poisoned data and perturbations.

  Args:
    key: PRNG key.
    x: uint8 (possibly poisoned) images (N, H, W, C).
    y: labels (N,).
    num_classes: number of classes.
    x_clean: the matching clean uint8 images; adds the fit on the perturbations
      ``x - x_clean`` and on the clean images for reference.
    epochs, lr: the linear model's Adam training.

  Returns:
    ``data_accuracy`` (fit on ``x``) and, with ``x_clean``,
    ``perturbation_accuracy``, ``clean_accuracy`` and ``perturbation_linf``
    (max |x - x_clean| in [0, 1] units). Accuracies are fractions.

  Raises:
    DataError: ``x_clean`` does not have ``x``'s shape.

  Example:
    >>> linear_separability(key, poisoned.x, poisoned.y, 10, x_clean=clean.x)
  """
  out = {}
  k1, k2, k3 = (jax.random.fold_in(key, i) for i in range(3))
  xf = np.asarray(x, np.float32) / 255.0
  _, out["data_accuracy"] = _linear.fit_linear(k1, _standardise(xf), y, num_classes,
                                               epochs=epochs, lr=lr)
  if x_clean is not None:
    if x_clean.shape != x.shape:
      raise DataError(f"clean images {x_clean.shape} do not match the data {x.shape}")
    cf = np.asarray(x_clean, np.float32) / 255.0
    delta = xf - cf
    out["perturbation_linf"] = float(np.abs(delta).max())
    if out["perturbation_linf"] == 0.0:
      raise DataError("the data and the clean images are identical: no perturbation")
    _, out["perturbation_accuracy"] = _linear.fit_linear(
        k2, _standardise(delta), y, num_classes, epochs=epochs, lr=lr)
    _, out["clean_accuracy"] = _linear.fit_linear(k3, _standardise(cf), y,
                                                  num_classes, epochs=epochs, lr=lr)
  return out
