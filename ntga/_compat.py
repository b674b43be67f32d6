"""Makes neural-tangents 0.6.5 importable on current JAX.

neural-tangents 0.6.5 (its last release) imports names that JAX has since moved
or removed: ``jax.core.Jaxpr`` and friends (now in ``jax.extend.core``), the
``jax.util`` module, and ``jax.interpreters.ad.zeros_like_p``. Its package
``__init__`` also imports ``neural_tangents.experimental``, which pulls in
TensorFlow. This module aliases only the names that are missing, keeps
``experimental`` from loading, and then imports ``stax``.

Nothing else in ntga imports neural_tangents directly: use ``from ntga._compat
import stax``. The kernel tests in ``tests/test_kernels.py`` compare NT's
kernels with independent closed forms, so a JAX release that breaks NT in a
new way fails loudly there. ``PATCHED`` records the names this import added
to JAX (empty when the installed JAX needed none); ``ntga doctor`` prints it.
"""

from __future__ import annotations

import importlib
import sys
import types

import jax
import jax.core
import jax.interpreters.ad


def _patch_jax() -> tuple[str, ...]:
  """Aliases the JAX names neural-tangents 0.6.5 imports, where missing.

  Returns:
    The full names it added, e.g. ``("jax.core.Jaxpr", "jax.util")``; empty
    when the installed JAX already has them all.
  """
  from jax._src import core as src_core  # pylint: disable=g-import-not-at-top
  from jax._src import util as src_util  # pylint: disable=g-import-not-at-top

  patched = []
  for name in ("Jaxpr", "JaxprEqn", "Literal", "Primitive", "Var",
               "ShapedArray", "Value", "AbstractValue", "eval_context"):
    if not hasattr(jax.core, name):
      setattr(jax.core, name, getattr(src_core, name))
      patched.append(f"jax.core.{name}")

  if "jax.util" not in sys.modules:
    try:
      importlib.import_module("jax.util")
    except ImportError:
      util = types.ModuleType("jax.util")
      util.safe_map = src_util.safe_map
      util.safe_zip = src_util.safe_zip
      sys.modules["jax.util"] = util
      setattr(jax, "util", util)
      patched.append("jax.util")

  if not hasattr(jax.interpreters.ad, "zeros_like_p"):
    # NT only uses it as a dict key for its structure/Jacobian rules; modern
    # JAX no longer emits this primitive, so a fresh placeholder is exact.
    jax.interpreters.ad.zeros_like_p = src_core.Primitive("zeros_like")
    patched.append("jax.interpreters.ad.zeros_like_p")
  return tuple(patched)


def _block_experimental() -> None:
  """Keeps ``neural_tangents.experimental`` (TensorFlow) from being imported."""
  name = "neural_tangents.experimental"
  if name not in sys.modules:
    sys.modules[name] = types.ModuleType(
        name, "Not loaded by ntga: it imports TensorFlow.")


#: The JAX names this module added for neural-tangents (empty: none needed).
PATCHED: tuple[str, ...] = _patch_jax()
_block_experimental()

from neural_tangents import stax  # noqa: E402  pylint: disable=g-import-not-at-top
import neural_tangents  # noqa: E402  pylint: disable=g-import-not-at-top

NT_VERSION: str = neural_tangents.__version__

__all__ = ["stax", "NT_VERSION", "PATCHED"]
