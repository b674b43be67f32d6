"""Makes neural-tangents 0.6.5 importable on JAX 0.10 through 0.12.

neural-tangents (Novak et al., "Neural Tangents: Fast and Easy Infinite Neural
Networks in Python", ICLR 2020; https://github.com/google/neural-tangents)
0.6.5, its last release, imports at module level names that JAX has since
moved or removed:

* ``jax.core.Jaxpr``, ``JaxprEqn``, ``Literal``, ``Primitive`` and ``Var``
  (public in ``jax.extend.core`` now), and ``ShapedArray``, ``Value``,
  ``AbstractValue``, ``eval_context`` (still in ``jax.core`` on JAX 0.12);
* the ``jax.util`` module, for ``safe_map`` and ``safe_zip``;
* ``jax.interpreters.ad.zeros_like_p``, a primitive that JAX no longer has.

:func:`patch_jax` adds each of these only where the installed JAX lacks it,
taking the object from where that JAX keeps it now, and :data:`PATCHED` records
what it added (``ntga doctor`` prints it). On JAX 0.10.2 and on 0.12.0.1 the
same seven names are missing (the five ``jax.core`` classes, ``jax.util`` and
``zeros_like_p``); ``tests/test_compat.py`` derives the missing set afresh on
whichever JAX is installed and checks that the record equals it, that nothing
JAX already has is replaced, and that NT fails to import without each patch.

Not patched: names NT uses only inside the functions of its empirical-kernel
module (``neural_tangents._src.empirical``: ``jax.core.get_aval``,
``lattice_join``, ``ad.reducing_transposes``...), which ntga never calls; its
analytic ``stax`` kernels (all that ntga uses) reference no missing name. NT's
package ``__init__`` also imports ``neural_tangents.experimental``, which pulls
in TensorFlow: this module keeps it from loading, then imports ``stax``.

Nothing else in ntga imports neural_tangents directly: use ``from ntga._compat
import stax``. The kernel tests in ``tests/test_kernels.py`` compare NT's
kernels with independent closed forms, so a JAX release that breaks NT in a
new way fails loudly there.

Example:

  >>> from ntga._compat import PATCHED, stax
  >>> "jax.util" in PATCHED  # on JAX 0.10-0.12
  True
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import jax
import jax.core
import jax.interpreters.ad

#: The ``jax.core`` names NT 0.6.5 imports.
CORE_NAMES: tuple[str, ...] = (
    "Jaxpr", "JaxprEqn", "Literal", "Primitive", "Var", "ShapedArray",
    "Value", "AbstractValue", "eval_context")


def _safe_map(f: Callable[..., Any], *args: Iterable[Any]) -> list[Any]:
  """``map`` over equal-length sequences, as a list (NT's ``jax.util`` use).

  Args:
    f: the function to apply.
    *args: sequences of one length.

  Returns:
    ``[f(a, b, ...) for a, b, ... in zip(*args)]``.

  Raises:
    ValueError: when the sequences differ in length.

  Example:
    >>> _safe_map(lambda a, b: a + b, [1, 2], [10, 20])
    [11, 22]
  """
  return [f(*xs) for xs in zip(*args, strict=True)]


def _safe_zip(*args: Iterable[Any]) -> list[tuple[Any, ...]]:
  """``zip`` of equal-length sequences, as a list (NT's ``jax.util`` use).

  Args:
    *args: sequences of one length.

  Returns:
    The list of tuples.

  Raises:
    ValueError: when the sequences differ in length.

  Example:
    >>> _safe_zip([1, 2], "ab")
    [(1, 'a'), (2, 'b')]
  """
  return list(zip(*args, strict=True))


def _core_source(name: str) -> Any:
  """Where this JAX keeps a ``jax.core`` name now: public, else private."""
  import jax.extend.core  # pylint: disable=g-import-not-at-top
  if hasattr(jax.extend.core, name):
    return getattr(jax.extend.core, name)
  from jax._src import core as src_core  # pylint: disable=g-import-not-at-top
  return getattr(src_core, name)


def _new_primitive(name: str) -> Any:
  """A fresh JAX primitive (``jax.extend.core.Primitive``) named ``name``."""
  return _core_source("Primitive")(name)


def _ships_jax_util(modules: MutableMapping[str, types.ModuleType]) -> bool:
  """Whether ``import jax.util`` works without the shim.

  True when ``modules`` already holds ``jax.util`` or the installed JAX
  package has a ``util`` submodule on disk.
  """
  if "jax.util" in modules:
    return True
  spec = importlib.machinery.PathFinder.find_spec("util", jax.__path__)
  return spec is not None


def patch_jax(
    core: types.ModuleType = jax.core,
    ad: types.ModuleType = jax.interpreters.ad,
    modules: MutableMapping[str, types.ModuleType] = sys.modules,
    core_source: Callable[[str], Any] = _core_source,
    new_primitive: Callable[[str], Any] = _new_primitive,
) -> tuple[str, ...]:
  """Adds the JAX names neural-tangents 0.6.5 imports, where missing.

  Runs once when this module is imported (its result is :data:`PATCHED`); the
  arguments exist so that tests can run it on stand-in modules.

  Args:
    core: the module NT reads as ``jax.core``.
    ad: the module NT reads as ``jax.interpreters.ad``.
    modules: the module table that ``import jax.util`` consults.
    core_source: returns this JAX's object for a :data:`CORE_NAMES` name.
    new_primitive: makes the stand-in ``zeros_like_p`` primitive.

  Returns:
    The full names it added, e.g. ``("jax.core.Jaxpr", "jax.util")``; empty
    when the JAX already has them all. Names that exist are never replaced.

  Example:
    >>> patch_jax()  # the import already added them: nothing is missing now
    ()
  """
  patched = []
  for name in CORE_NAMES:
    if not hasattr(core, name):
      setattr(core, name, core_source(name))
      patched.append(f"jax.core.{name}")

  if not _ships_jax_util(modules):
    util = types.ModuleType(
        "jax.util", "Added by ntga._compat for neural-tangents 0.6.5.")
    util.safe_map = _safe_map
    util.safe_zip = _safe_zip
    modules["jax.util"] = util
    parent = modules.get("jax")
    if parent is not None:
      setattr(parent, "util", util)
    patched.append("jax.util")

  if not hasattr(ad, "zeros_like_p"):
    # NT only uses it as a dict key for its structure/Jacobian rules; current
    # JAX never emits this primitive, so a fresh placeholder is exact.
    ad.zeros_like_p = new_primitive("zeros_like")
    patched.append("jax.interpreters.ad.zeros_like_p")
  return tuple(patched)


def _block_experimental() -> None:
  """Keeps ``neural_tangents.experimental`` (TensorFlow) from being imported."""
  name = "neural_tangents.experimental"
  if name not in sys.modules:
    sys.modules[name] = types.ModuleType(
        name, "Not loaded by ntga: it imports TensorFlow.")


#: The JAX names this module added for neural-tangents (empty: none needed).
PATCHED: tuple[str, ...] = patch_jax()
_block_experimental()

from neural_tangents import stax  # noqa: E402  pylint: disable=g-import-not-at-top
import neural_tangents  # noqa: E402  pylint: disable=g-import-not-at-top

NT_VERSION: str = neural_tangents.__version__

__all__ = ["stax", "NT_VERSION", "PATCHED", "CORE_NAMES", "patch_jax"]
