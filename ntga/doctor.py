"""``ntga doctor``: what this install runs on, in a form fit for a bug report.

:func:`collect` gathers the facts (Python, ntga and library versions, the
accelerator plugins installed, ``JAX_PLATFORMS``, the devices JAX sees, what
the neural-tangents shim in :mod:`ntga._compat` patched) into one JSON-ready
dict; :func:`format_report` turns it into one ``key: value`` line per fact.
When JAX sees no GPU or TPU, :func:`hints` says where to look.

Example:

  >>> from ntga import doctor
  >>> report = doctor.collect()
  >>> report["versions"]["jax"]                     # doctest: +SKIP
  '0.10.2'
  >>> print("\\n".join(doctor.format_report(report)))  # doctest: +SKIP
  ntga: 0.1.0
  ...

JAX and neural-tangents are imported inside :func:`collect`, so that a broken
install (say a jaxlib that does not match jax) is reported, not raised.
"""

from __future__ import annotations

import collections
import os
import platform
import sys
from typing import Any, Iterable, Mapping, Sequence

import ntga
from ntga import io

#: Distributions whose versions the report lists, in order: the libraries
#: ntga runs on, then JAX's CUDA 12 and TPU plugins (``None``: not installed).
PACKAGES = ("jax", "jaxlib", "neural-tangents", "flax", "optax",
            "jax-cuda12-plugin", "jax-cuda12-pjrt", "libtpu")

#: Platforms other than the CPU; seeing one of them means an accelerator.
ACCELERATORS = ("gpu", "tpu")

_JAX_INSTALL_DOCS = "https://docs.jax.dev/en/latest/installation.html"


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
  """The installed version of each distribution, ``None`` where missing.

  Reads the installed metadata only: nothing is imported.

  Args:
    names: distribution names as pip knows them, e.g. ``"neural-tangents"``.

  Returns:
    A dict name -> version string or ``None``.

  Example:
    >>> package_versions(["no-such-package"])
    {'no-such-package': None}
  """
  return io.package_versions(names)


def device_groups(devices: Iterable[Any]) -> list[dict[str, Any]]:
  """Counts devices by (platform, kind), in order of first appearance.

  Args:
    devices: JAX devices (anything with ``platform`` and ``device_kind``).

  Returns:
    A list of ``{"platform": str, "kind": str, "count": int}``.

  Example:
    >>> import jax
    >>> device_groups(jax.devices("cpu"))[0]["platform"]
    'cpu'
  """
  counts = collections.Counter((d.platform, d.device_kind) for d in devices)
  return [{"platform": p, "kind": k, "count": n} for (p, k), n in counts.items()]


def hints(platforms: Sequence[str], jax_platforms: str | None,
          versions: Mapping[str, str | None]) -> list[str]:
  """Where to look when JAX sees no accelerator, or sees mismatched plugins.

  Args:
    platforms: the platforms of the devices JAX sees (``"cpu"``, ``"gpu"``,
      ``"tpu"``); empty when JAX found none.
    jax_platforms: the ``JAX_PLATFORMS`` environment variable (``None``:
      unset).
    versions: :func:`package_versions` of :data:`PACKAGES`.

  Returns:
    One sentence per hint; empty when a GPU or TPU is in use and its plugin
    matches jaxlib.

  Example:
    >>> any("nvidia-smi" in h for h in hints(["cpu"], None, {}))
    True
    >>> hints(["gpu"], None, {})
    []
  """
  out = []
  jaxlib = versions.get("jaxlib")
  plugin = versions.get("jax-cuda12-plugin")
  if plugin and jaxlib and plugin != jaxlib:
    out.append(f"jax-cuda12-plugin {plugin} does not match jaxlib {jaxlib}: "
               "pip install 'ntga[cuda12]' installs a matching pair")
  if any(p in ACCELERATORS for p in platforms):
    return out
  out.append("no GPU or TPU found" +
             (": JAX runs on the CPU" if "cpu" in platforms else ""))
  if jax_platforms:
    out.append(f"JAX_PLATFORMS={jax_platforms}: JAX tries only these "
               "backends; unset it to let JAX pick any it finds")
  if plugin:
    out.append(f"jax-cuda12-plugin {plugin} is installed but JAX sees no GPU: "
               "check that `nvidia-smi` lists the GPU and that its driver "
               "supports CUDA 12")
  else:
    out.append("NVIDIA GPU: pip install 'ntga[cuda12]' (in a checkout: "
               "pip install -e '.[cuda12]'), then check that `nvidia-smi` "
               "lists the GPU")
  if versions.get("libtpu"):
    out.append(f"libtpu {versions['libtpu']} is installed but JAX sees no "
               "TPU: run on a Cloud TPU VM, and check that no other process "
               "holds the TPU")
  else:
    out.append("TPU (Cloud TPU VM): pip install 'ntga[tpu]'")
  out.append(f"JAX's install guide: {_JAX_INSTALL_DOCS}")
  return out


def _devices(errors: list[str]) -> tuple[str | None, list[Any]]:
  """The default backend and the devices of every backend JAX can start."""
  try:
    import jax  # pylint: disable=g-import-not-at-top
  except (ImportError, RuntimeError) as e:
    errors.append(f"import jax failed: {type(e).__name__}: {e}")
    return None, []
  try:
    devices = list(jax.devices())
    default = jax.default_backend()
  except (RuntimeError, AssertionError) as e:
    # JAX 0.10 fails an assert, with no message, when JAX_PLATFORMS names
    # only backends whose hardware is absent (JAX_PLATFORMS=cuda, no GPU).
    errors.append(f"JAX found no devices: {str(e) or type(e).__name__}")
    return None, []
  for other in ("cpu", *ACCELERATORS):
    if other == default:
      continue
    try:
      devices += jax.devices(other)
    except RuntimeError:
      pass  # that backend is absent or disabled (JAX_PLATFORMS)
  return default, devices


def _shim(errors: list[str]) -> dict[str, Any] | None:
  """What :mod:`ntga._compat` patched to import neural-tangents."""
  try:
    from ntga import _compat  # pylint: disable=g-import-not-at-top
  except (ImportError, AttributeError, RuntimeError) as e:
    errors.append(f"import neural_tangents failed: {type(e).__name__}: {e}")
    return None
  return {"needed": bool(_compat.PATCHED), "patched": list(_compat.PATCHED)}


def collect() -> dict[str, Any]:
  """Gathers the report: versions, devices, shim record, hints and errors.

  Returns:
    A JSON-ready dict with keys ``ntga``, ``python``, ``executable``,
    ``versions`` (:func:`package_versions`), ``jax_platforms``,
    ``default_backend``, ``devices`` (:func:`device_groups`),
    ``accelerator`` (the first GPU/TPU platform seen, or ``None``), ``shim``
    (``{"needed": bool, "patched": [names]}``, or ``None`` when
    neural-tangents does not import), ``hints`` (:func:`hints`) and
    ``errors`` (what makes this install unusable; empty when healthy).

  Example:
    >>> collect()["devices"]  # doctest: +SKIP
    [{'platform': 'cpu', 'kind': 'cpu', 'count': 1}]
  """
  errors: list[str] = []
  versions = package_versions()
  jax_platforms = os.environ.get("JAX_PLATFORMS") or None
  default, devices = _devices(errors)
  shim = _shim(errors) if "jax" in sys.modules else None
  groups = device_groups(devices)
  platforms = [g["platform"] for g in groups]
  return {
      "ntga": ntga.__version__,
      "python": platform.python_version(),
      "executable": sys.executable,
      "versions": versions,
      "jax_platforms": jax_platforms,
      "default_backend": default,
      "devices": groups,
      "accelerator": next((p for p in platforms if p in ACCELERATORS), None),
      "shim": shim,
      "hints": hints(platforms, jax_platforms, versions),
      "errors": errors,
  }


def format_report(report: Mapping[str, Any]) -> list[str]:
  """One ``key: value`` line per fact of a :func:`collect` report.

  Args:
    report: the dict :func:`collect` returns.

  Returns:
    The lines, without newlines.

  Example:
    >>> format_report(collect())[0]  # doctest: +SKIP
    'ntga: 0.1.0'
  """
  lines = [f"ntga: {report['ntga']}",
           f"python: {report['python']} ({report['executable']})"]
  lines += [f"{name}: {version or 'not installed'}"
            for name, version in report["versions"].items()]
  lines.append(f"JAX_PLATFORMS: {report['jax_platforms'] or '(unset)'}")
  lines.append(f"default backend: {report['default_backend'] or 'none'}")
  lines += [f"devices: {g['platform']}, {g['count']} x {g['kind']}"
            for g in report["devices"]]
  lines.append(f"accelerator: {report['accelerator'] or 'none'}")
  shim = report["shim"]
  if shim is None:
    lines.append("neural-tangents shim: not run (neural-tangents did not import)")
  elif shim["needed"]:
    lines.append(f"neural-tangents shim: needed, patched {', '.join(shim['patched'])}")
  else:
    lines.append("neural-tangents shim: not needed (this JAX has every name)")
  lines += [f"hint: {h}" for h in report["hints"]]
  lines += [f"error: {e}" for e in report["errors"]]
  return lines
