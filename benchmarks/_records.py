"""Benchmark records: their one format, where they live, hashing and checks.

Every measurement is one JSON record under ``benchmarks/results/``:
``<config>-<hash>.json`` for a config run as a whole, ``<config>/<hash>.json``
for one cell of a table config (see :mod:`benchmarks.kinds.table`). A record
holds

  record_version, name (the config module), kind, smoke, config (or cell),
  config_hash, seeds, versions, machine, started_utc, wall_clock_s, command,
  metrics

and, in records of measurements whose start time was not kept,
``finished_utc``. ``config_hash`` is the sha256 of the config's canonical
JSON, so a config that was already run is found again by its hash. This
module imports nothing of the benchmark kinds: they, :mod:`benchmarks.run`
and :mod:`benchmarks.report` all build on it.

Example:
  >>> from benchmarks import _records
  >>> _records.config_hash({"kind": "x", "a": 1})[:8]
  'b556f5f1'
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ntga.errors import DataError

RESULTS = Path(__file__).resolve().parent / "results"
RECORD_VERSION = 1
#: Fields every record has (``config`` or ``cell`` besides).
FIELDS = ("name", "kind", "smoke", "config_hash", "started_utc", "metrics",
          "command")


def config_hash(config: dict[str, Any]) -> str:
  """sha256 (hex) of the config's canonical JSON (sorted keys, no spaces)."""
  text = json.dumps(config, sort_keys=True, separators=(",", ":"),
                    ensure_ascii=True, allow_nan=False)
  return hashlib.sha256(text.encode()).hexdigest()


def record_path(out: Path, name: str, config: dict[str, Any]) -> Path:
  """Where the record of ``config`` (module ``name``) lives under ``out``."""
  return Path(out) / f"{name}-{config_hash(config)[:16]}.json"


def seeds_of(config: dict[str, Any]) -> list[int]:
  """The seeds a config names (``seeds``, or ``[seed]``, or none)."""
  if "seeds" in config:
    return list(config["seeds"])
  return [config["seed"]] if "seed" in config else []


def machine() -> dict[str, Any]:
  """A short description of the machine a record is measured on."""
  import jax  # pylint: disable=g-import-not-at-top
  return {"platform": platform.platform(), "cpus": os.cpu_count(),
          "device": str(jax.devices()[0].device_kind), "jax": jax.__version__}


def now_utc() -> datetime.datetime:
  """The current UTC time (a record's ``started_utc`` is its ISO form)."""
  return datetime.datetime.now(datetime.timezone.utc)


def new_record(*, name: str, kind: str, smoke: bool, config_key: str,
               config: dict[str, Any], hash_: str, seeds: list[int],
               started: datetime.datetime, wall_clock_s: float, command: str,
               metrics: dict[str, Any]) -> dict[str, Any]:
  """A record with every field, in the order of the stored records.

  Args:
    name: the config module.
    kind: the record's kind.
    smoke: whether it is a smoke run (left out of the report).
    config_key: ``"config"``, or ``"cell"`` for a table cell.
    config: what was computed (hashed as ``hash_``).
    hash_: :func:`config_hash` of what was computed.
    seeds: its seeds.
    started: when the run started.
    wall_clock_s: how long it took.
    command: the command line that makes this record again.
    metrics: the kind's measurements.
  """
  from ntga import io  # pylint: disable=g-import-not-at-top
  return {"record_version": RECORD_VERSION, "name": name, "kind": kind,
          "smoke": smoke, config_key: config, "config_hash": hash_,
          "seeds": seeds, "versions": io.library_versions(),
          "machine": machine(),
          "started_utc": started.isoformat(timespec="seconds"),
          "wall_clock_s": wall_clock_s, "command": command, "metrics": metrics}


def read(path: Path) -> dict[str, Any]:
  """One record, with the fields every record has.

  Raises:
    DataError: not JSON, or a field is missing.
  """
  try:
    rec = json.loads(Path(path).read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise DataError(f"{path}: not a JSON record ({e})") from e
  missing = [k for k in FIELDS if not isinstance(rec, dict) or k not in rec]
  if not missing and "config" not in rec and "cell" not in rec:
    missing = ["config"]
  if missing:
    raise DataError(f"{path}: not a benchmark record (missing "
                    f"{', '.join(missing)})")
  return rec


def paths(results: Path) -> list[Path]:
  """Every record file under ``results``: ``*.json`` and ``*/*.json``.

  Hidden folders (the poison cache) are skipped.
  """
  results = Path(results)
  if not results.is_dir():
    raise DataError(f"results folder {results} does not exist")
  found = sorted(results.glob("*.json"))
  for folder in sorted(p for p in results.iterdir()
                       if p.is_dir() and not p.name.startswith(".")):
    found += sorted(folder.glob("*.json"))
  return found


def when(record: dict[str, Any]) -> str:
  """The record's date for sorting: started, else finished, else ''."""
  return record.get("started_utc") or record.get("finished_utc") or ""


# --------------------------------------------------------------------------
# Statistics.


class Stopwatch:
  """Wall-clock seconds of a piece of work, summed over the sittings it took.

  Work that is killed and resumed later (a poisoning that resumes from its
  checkpoints, a table cell that keeps its finished seeds) would otherwise
  report only its last sitting. The running total is written to ``path``
  every ``every`` seconds (and at the end), and a later sitting starts from
  the total it finds there, so a killed sitting loses at most ``every``
  seconds of its count. Delete ``path`` once the work's result is kept.

  Args:
    path: the file that keeps the total between sittings.
    every: seconds between writes of the running total.

  Example:
    >>> import tempfile
    >>> with Stopwatch(Path(tempfile.mkdtemp()) / "t.json") as watch:
    ...   pass
    >>> watch.seconds() >= 0 and watch.earlier == 0.0
    True
  """

  def __init__(self, path: Path, every: float = 30.0):
    self.path, self.every = Path(path), every
    self.earlier = 0.0
    if self.path.exists():
      self.earlier = float(json.loads(self.path.read_text())["seconds"])
    self._start = self._end = None
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat, daemon=True)

  def seconds(self) -> float:
    """Earlier sittings' seconds plus this one's so far (or in all, once ended)."""
    end = time.perf_counter() if self._end is None else self._end
    return self.earlier + end - self._start

  def _write(self) -> None:
    from ntga import io  # pylint: disable=g-import-not-at-top
    io.write_json(self.path, {"seconds": self.seconds()})

  def _beat(self) -> None:
    while not self._stop.wait(self.every):
      self._write()

  def __enter__(self) -> "Stopwatch":
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._start = time.perf_counter()
    self._thread.start()
    return self

  def __exit__(self, *exc) -> None:
    self._stop.set()
    self._thread.join()
    self._end = time.perf_counter()
    self._write()


def mean_std(values: Iterable[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (ddof=1; 0.0 for one value)."""
  a = np.asarray(list(values), np.float64)
  return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
  """Mean and sample std (ddof=1; 0 for one seed) of final and peak accuracy.

  Args:
    per_seed: one dict per seed with at least ``final`` and ``peak``.

  Returns:
    ``final_mean``, ``final_std``, ``peak_mean``, ``peak_std``,
    ``robust_mean`` and ``robust_std`` where every seed has ``robust``, and
    ``per_seed`` itself.

  Example:
    >>> summarize([{"final": .5, "peak": .6}, {"final": .7, "peak": .8}])["final_mean"]
    0.6
  """
  out: dict[str, Any] = {}
  fields = ["final", "peak"]
  if all("robust" in r for r in per_seed):
    fields.append("robust")
  for field in fields:
    out[f"{field}_mean"], out[f"{field}_std"] = mean_std(
        r[field] for r in per_seed)
  return {**out, "per_seed": per_seed}


def seed_result(seed: int, m: dict[str, Any]) -> dict[str, Any]:
  """One seed's entry of a trained victim's results (from train_and_evaluate).

  Keeps the per-epoch test (and, where measured, training) accuracy, and the
  robust test accuracy (``robust``) when the victim set ``robust_eps``.
  """
  out = {"seed": seed, "final": m["final_test_accuracy"],
         "peak": m["peak_test_accuracy"], "peak_epoch": m["peak_epoch"],
         "test_accuracy": m["test_accuracy"], "wall_clock_s": m["wall_clock_s"]}
  if m.get("train_accuracy"):
    out["train_accuracy"] = m["train_accuracy"]
  if "robust_test_accuracy" in m:
    out["robust"] = m["robust_test_accuracy"]
  return out


# --------------------------------------------------------------------------
# Checks: what every kind's ``check(record)`` builds on.


def expect(condition: bool, message: str) -> None:
  """Raises DataError(message) unless ``condition``."""
  if not condition:
    raise DataError(message)


def close(a: float, b: float, rel: float = 1e-6) -> bool:
  """Whether ``a`` and ``b`` agree to a relative tolerance."""
  return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def positive(value: Any) -> bool:
  """A finite number above zero."""
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and value > 0)


def check_accuracies(finals: list[float], peaks: list[float | None],
                     what: str) -> None:
  """Accuracies lie in [0, 1] and no final passes its peak (where known)."""
  for f, p in zip(finals, peaks):
    expect(0.0 <= f <= 1.0, f"{what}: final accuracy {f} outside [0, 1]")
    if p is not None:
      expect(f <= p <= 1.0, f"{what}: peak {p} below final {f} or above 1")


def check_summary(m: dict[str, Any], what: str) -> None:
  """Per-seed final/peak (and robust) accuracies and their recorded means agree."""
  finals = [s["final"] for s in m["per_seed"]]
  peaks = [s.get("peak") for s in m["per_seed"]]
  check_accuracies(finals, peaks, what)
  expect(close(m["final_mean"], float(np.mean(finals))),
         f"{what}: final_mean is not the mean of the seeds")
  if len(finals) > 1:
    expect(close(m["final_std"], float(np.std(finals, ddof=1))),
           f"{what}: final_std is not the seeds' sample std")
  if "peak_mean" in m:
    expect(close(m["peak_mean"], float(np.mean(peaks))),
           f"{what}: peak_mean is not the mean of the seeds")
  robust = [s["robust"] for s in m["per_seed"] if "robust" in s]
  expect(("robust_mean" in m) == (len(robust) == len(finals) > 0),
         f"{what}: robust_mean is recorded iff every seed has a robust accuracy")
  if robust:
    expect(all(0.0 <= r <= 1.0 for r in robust),
           f"{what}: a robust accuracy outside [0, 1]")
    expect(close(m["robust_mean"], float(np.mean(robust))),
           f"{what}: robust_mean is not the mean of the seeds")
