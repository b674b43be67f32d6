"""Where benchmark records go: one JSON line per run in benchmarks/results/."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
  """A short description of the machine a record was measured on."""
  import jax  # pylint: disable=g-import-not-at-top
  return {"platform": platform.platform(), "cpus": os.cpu_count(),
          "device": str(jax.devices()[0].device_kind), "jax": jax.__version__}


def save(name: str, record: dict[str, Any]) -> None:
  """Prints ``record`` as one JSON line and appends it to results/NAME.jsonl."""
  line = json.dumps(record)
  print(line)
  RESULTS.mkdir(exist_ok=True)
  with open(RESULTS / f"{name}.jsonl", "a") as f:
    f.write(line + "\n")
