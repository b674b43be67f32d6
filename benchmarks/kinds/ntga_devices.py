"""Kind ``ntga_devices``: NTGA throughput on 1, 2, 4, ... (simulated CPU) devices.

Poisons the same subset with the same settings in a fresh process per device
count (``XLA_FLAGS=--xla_force_host_platform_device_count=D``, so the blocks
are sharded over a 'data' mesh of D devices) through
:func:`ntga.attacks.pipeline.poison_dataset`, and records whether every output
is bit-identical. On one CPU the simulated devices share the same cores, so
this measures the overhead of sharding, not a speed-up.

Config keys: ``data`` (``spec``, ``limit``), ``settings`` (NTGA config
fields), ``devices`` (device counts) and ``seed``.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import ntga_devices
  >>> m = ntga_devices.run(configs.load("ntga_devices", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec
from benchmarks.kinds import command

KIND = "ntga_devices"
GROUP = "speed"
REPO = Path(__file__).resolve().parents[2]
_CHILD = ("import sys; from benchmarks.kinds.ntga_devices import child; "
          "sys.exit(child())")


def poison_here(spec: str, limit: int | None, settings: dict[str, Any],
                seed: int) -> dict[str, Any]:
  """Poisons in this process on all its devices; returns timing and output hash."""
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import attacks, data, io  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top

  ds = data.load(spec, "train", limit=limit)
  attack = attacks.get("ntga")
  start = time.perf_counter()
  _, x_p = pipeline.poison_dataset(attack, pipeline.build_config(attack, settings),
                                   ds, seed=seed, progress=False)
  seconds = time.perf_counter() - start
  return {"devices": jax.device_count(), "n_images": len(ds), "seconds": seconds,
          "images_per_second": len(ds) / seconds, "sha256_x": io.sha256(x_p)}


def child(argv: Sequence[str] | None = None) -> int:
  """A child process: ``JSON`` of :func:`poison_here`'s arguments; prints JSON."""
  args = json.loads((sys.argv[1:] if argv is None else list(argv))[0])
  print(json.dumps(poison_here(**args)))
  return 0


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Poisons once per device count, each in a fresh process.

  Returns:
    ``runs`` (per device count: ``devices``, ``n_images``, ``seconds``,
    ``images_per_second``, ``sha256_x``) and ``identical_outputs``.

  Raises:
    RuntimeError: a child process failed.
  """
  d = config["data"]
  job = {"spec": resolve_spec(d["spec"]), "limit": d["limit"],
         "settings": config["settings"], "seed": config["seed"]}
  runs = []
  for n in config["devices"]:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
    p = command.measured([sys.executable, "-c", _CHILD, json.dumps(job)],
                         env=env, cwd=REPO)
    if p["exit_code"] != 0:
      raise RuntimeError(f"ntga_devices: the {n}-device run failed "
                         f"({p['exit_code']}): {p['stderr'].strip()[-2000:]}")
    runs.append(json.loads(p["stdout"].strip().splitlines()[-1]))
  return {"runs": runs,
          "identical_outputs": len({r["sha256_x"] for r in runs}) == 1}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless each configured device count ran once, rates are
  images / seconds and ``identical_outputs`` says whether the hashes agree."""
  expect = _records.expect
  m, c = record["metrics"], record["config"]
  expect([r["devices"] for r in m["runs"]] == list(c["devices"]),
         "ntga_devices: device counts differ from the config's")
  for r in m["runs"]:
    expect(_records.positive(r["seconds"]), f"ntga_devices {r['devices']}: time")
    expect(_records.close(r["images_per_second"] * r["seconds"], r["n_images"]),
           f"ntga_devices {r['devices']}: images_per_second is not images / seconds")
  expect(m["identical_outputs"] == (len({r["sha256_x"] for r in m["runs"]}) == 1),
         "ntga_devices: identical_outputs contradicts the hashes")


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  m, c = r["metrics"], r["config"]
  rows = [[str(x["devices"]), f"{x['seconds']:.1f}", f"{x['images_per_second']:.0f}",
           f"`{x['sha256_x'][:12]}`"] for x in m["runs"]]
  lines = _page.table(["devices", "seconds", "images / s", "sha256 of the output"],
                      rows, {0, 1, 2})
  lines += ["", f"{m['runs'][0]['n_images']} images of `{c['data']['spec']}`, NTGA "
            f"settings: {_page.value(c['settings'])}, seed {c['seed']}; outputs "
            f"identical on every device count: "
            f"{str(m['identical_outputs']).lower()}."]
  return lines, []


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, one row per device count."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
