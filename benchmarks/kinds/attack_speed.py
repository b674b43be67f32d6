"""Kind ``attack_speed``: wall clock of each attack's ``poison`` call, per dataset.

Config keys: ``datasets`` (``spec``, ``limit``), ``attacks`` (``name``,
``settings``, optional ``limit``: a smaller subset for a slow attack) and
``seed``. The timed call includes JIT compilation, as a CLI run sees it; the
data load is not timed.

Example:
  >>> from benchmarks import configs
  >>> from benchmarks.kinds import attack_speed
  >>> metrics = attack_speed.run(configs.load("attack_speed", smoke=True))  # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _page, _records, configs
from benchmarks.configs import resolve_spec

KIND = "attack_speed"
GROUP = "speed"


def run(config: dict[str, Any]) -> dict[str, Any]:
  """Times each attack's ``poison`` call on each dataset.

  Returns:
    ``results``: one entry per (dataset, attack) with ``n_images``,
    ``seconds``, ``images_per_second`` and the perturbation's PSNR / max
    delta.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ntga import attacks, data  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top
  from ntga.protocol import RunContext  # pylint: disable=g-import-not-at-top

  results = []
  for d in config["datasets"]:
    full = data.load(resolve_spec(d["spec"]), "train", limit=d["limit"])
    for a in config["attacks"]:
      attack = attacks.get(a["name"])
      cfg = pipeline.build_config(attack, a["settings"])
      ds = full
      if a.get("limit") is not None and a["limit"] < len(full):
        ds = data.load(resolve_spec(d["spec"]), "train", limit=a["limit"])
      start = time.perf_counter()
      x_p = np.asarray(attack.poison(jax.random.key(config["seed"]), ds.x, ds.y,
                                     cfg, RunContext(num_classes=ds.num_classes)))
      seconds = time.perf_counter() - start
      stats = attacks.perturbation_stats(ds.x, x_p)
      results.append({"data": d["spec"], "attack": a["name"],
                      "settings": a["settings"], "n_images": len(ds),
                      "image_shape": list(ds.x.shape[1:]), "seconds": seconds,
                      "images_per_second": len(ds) / seconds, **stats})
  return {"results": results}


def check(record: dict[str, Any]) -> None:
  """Raises DataError unless every (dataset, attack) of the config was timed.

  Results come in config order with positive times, ``images_per_second``
  is ``n_images / seconds`` and every poison changed the images.
  """
  expect = _records.expect
  c, res = record["config"], record["metrics"]["results"]
  expect([(r["data"], r["attack"]) for r in res]
         == [(d["spec"], a["name"]) for d in c["datasets"] for a in c["attacks"]],
         "attack_speed: results differ from the config's datasets x attacks")
  for r in res:
    what = f"attack_speed {r['attack']} on {r['data']}"
    expect(_records.positive(r["seconds"]) and r["n_images"] > 0,
           f"{what}: no images or no time")
    expect(_records.close(r["images_per_second"], r["n_images"] / r["seconds"]),
           f"{what}: images_per_second is not n_images / seconds")
    expect(r["max_abs_delta_levels"] > 0, f"{what}: the poison changed nothing")


def _draw(points: list[tuple[str, str, float]], png: Path) -> None:
  """Bars of images/s per attack (log scale), one colour per dataset."""
  datasets = list(dict.fromkeys(p[0] for p in points))
  attacks_ = list(dict.fromkeys(p[1] for p in points))
  value = {(d, a): v for d, a, v in points}
  width = 0.8 / max(1, len(datasets))
  fig = _page.figure((6, 3.5))
  ax = fig.subplots()
  for i, d in enumerate(datasets):
    xs = [j + i * width for j, a in enumerate(attacks_) if (d, a) in value]
    ys = [value[(d, a)] for a in attacks_ if (d, a) in value]
    ax.bar(xs, ys, width, label=d)
  ax.set_xticks([j + width * (len(datasets) - 1) / 2 for j in range(len(attacks_))])
  ax.set_xticklabels(attacks_)
  ax.set_yscale("log")
  ax.set_ylabel("images / second (log)")
  ax.set_title("Poison generation throughput")
  ax.legend(fontsize="small")
  fig.tight_layout()
  _page.save_figure(fig, png)


def _labels(results: list[dict[str, Any]]) -> list[str]:
  """Attack names, with the settings where a dataset has a name twice."""
  names = [(r["data"], r["attack"]) for r in results]
  return [r["attack"] + (f" ({_page.value(r['settings'])})"
                         if names.count((r["data"], r["attack"])) > 1
                         and r.get("settings") else "") for r in results]


def _body(r: dict[str, Any]) -> tuple[list[str], list[_page.Plot]]:
  res = r["metrics"]["results"]
  changed = any("images_changed" in x for x in res)
  rows, points = [], []
  for x, label in zip(res, _labels(res)):
    row = [x["data"], label, str(x["n_images"]), f"{x['seconds']:.2f}",
           f"{x['images_per_second']:.1f}", _page.fmt(x.get("psnr_db"), ".2f"),
           _page.fmt(x.get("max_abs_delta_levels"), "d")]
    if changed:
      row.append(_page.fmt(x.get("images_changed"), "d"))
    rows.append(row)
    points.append((Path(x["data"]).name, label, x["images_per_second"]))
  header = ["data", "attack", "images", "seconds", "images / second", "PSNR (dB)",
            "max abs delta (levels)"] + (["images changed"] if changed else [])
  lines = _page.table(header, rows, set(range(2, len(header))))
  if r["metrics"].get("load_seconds") is not None:
    lines += ["", f"Loading the data (not timed above) took "
              f"{r['metrics']['load_seconds']:.1f} s."]
  plot = _page.Plot(f"{_page.plot_stem(r)}.png",
                    lambda png, pts=points: _draw(pts, png))
  return lines + ["", plot.link("images per second per attack")], [plot]


def render(name: str, config: dict[str, Any], records: list[dict[str, Any]]
           ) -> tuple[list[str], list[_page.Plot]]:
  """The section of config ``name``: per record, a table and a bar chart."""
  del config
  return _page.record_sections(configs.doc(name), records, _body)
