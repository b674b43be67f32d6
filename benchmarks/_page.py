"""Markdown and figures for benchmarks/RESULTS.md, shared by the kinds' renderers.

A kind renders its section from records alone with these helpers: markdown
tables, settings as text, the machine a record ran on, the command, and
figures drawn on :class:`matplotlib.figure.Figure` (no pyplot, no backend
switch: nothing global changes).

Example:
  >>> from benchmarks import _page
  >>> _page.table(["a", "b"], [["x", "1"]])
  ['| a | b |', '| --- | ---: |', '| x | 1 |']
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks import _records
from ntga.errors import OutputError

PLOTS = "plots"  # the figures' folder, beside the page


@dataclasses.dataclass(frozen=True)
class Plot:
  """A figure of the page: its file name under ``plots/`` and how to draw it.

  Attributes:
    name: file name (``<stem>.png``).
    draw: writes the PNG to the path it is given.
  """
  name: str
  draw: Callable[[Path], None]

  def link(self, alt: str) -> str:
    """The markdown that shows the figure on the page."""
    return f"![{alt}]({PLOTS}/{self.name})"


def figure(size: tuple[float, float]):
  """A new :class:`matplotlib.figure.Figure` (no pyplot state, no backend)."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  return Figure(figsize=size)


def save_figure(fig, png: Path) -> None:
  """Writes ``fig`` as a PNG, atomically, without a timestamp (same bytes each time).

  Raises:
    OutputError: the file cannot be written.
  """
  from ntga import io  # pylint: disable=g-import-not-at-top
  try:
    io.atomic_write(png, lambda f: fig.savefig(
        f, format="png", dpi=100, metadata={"Software": None}))
  except OSError as e:
    raise OutputError(f"cannot write {png}: {e.strerror}") from e


def plot_stem(record: dict[str, Any]) -> str:
  """A file stem unique to a record: ``<name>-<first 8 hex of its hash>``."""
  return f"{record['name']}-{record['config_hash'][:8]}"


def panel_plots(record: dict[str, Any], panels: Sequence[str],
                draw: Callable[[dict[str, Any], str, Path], None]
                ) -> list[Plot]:
  """One :class:`Plot` per panel, named ``<name>-<hash8>_<panel>.png``,
  drawn by ``draw(record, panel, png)``."""
  stem = plot_stem(record)
  return [Plot(f"{stem}_{panel}.png",
               lambda png, panel=panel: draw(record, panel, png))
          for panel in panels]


def finish_block_axes(fig, ax, record: dict[str, Any], png: Path, *,
                      panel: str, ylabel: str, title: str,
                      logy: bool = True) -> None:
  """Styles and saves a figure of a measure against NTGA block size.

  The x axis is log 2 with a tick at every block of ``record``'s points; the
  y axis log 10 with plain-number labels (``logy``) or linear from 0; the
  ``rss`` panel gets the config's RSS cap (``max_rss_gib``) as a dashed line.
  """
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top

  cap = record.get("config", {}).get("max_rss_gib")
  if panel == "rss" and cap:
    ax.axhline(cap * 1024, color="grey", linestyle="--", linewidth=1,
               label=f"RSS cap ({cap:g} GiB)")
  ax.set_xscale("log", base=2)
  blocks = sorted({p["block"] for p in record["metrics"]["points"]})
  ax.set_xticks(blocks)
  ax.set_xticklabels([str(b) for b in blocks])
  if logy:
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ticker.LogLocator(10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
  else:
    ax.set_ylim(bottom=0)
  ax.set_xlabel("block size (training examples)")
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize="medium")
  ax.grid(True, which="major", alpha=0.3)
  ax.legend(fontsize="small")
  fig.tight_layout()
  save_figure(fig, png)


# --------------------------------------------------------------------------
# Text.


def pct(mean: float, std: float) -> str:
  """``mean +- std`` of fractions, in %."""
  return f"{100 * mean:.2f} +- {100 * std:.2f}"


def fmt(value: Any, spec: str, scale: float = 1.0) -> str:
  """``format(value * scale, spec)`` (``d``: rounded), or '-' for a missing value."""
  if value is None:
    return "-"
  value = value * scale
  return format(round(value) if spec == "d" else value, spec)


def load_text(before: Sequence[float], after: Sequence[float]) -> str:
  """One sentence with the 1/5/15-minute load averages before and after a sweep.

  Example:
    >>> load_text([1.0, 1.2, 1.5], [1.8, 1.7, 1.6])
    'Load average (1, 5, 15 min) before the sweep: 1.0, 1.2, 1.5; after: 1.8, 1.7, 1.6.'
  """
  nums = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
  return f"Load average (1, 5, 15 min) before the sweep: {nums(before)}; after: {nums(after)}."


def esc(text: Any) -> str:
  """Text for a table cell: '|' escaped, one line."""
  return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[str]],
          right: set[int] | None = None) -> list[str]:
  """A markdown table; columns in ``right`` (default: all but the first) align right."""
  right = set(range(1, len(header))) if right is None else right
  lines = ["| " + " | ".join(esc(h) for h in header) + " |",
           "| " + " | ".join("---:" if i in right else "---"
                             for i in range(len(header))) + " |"]
  lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
  return lines


def code(commands: Sequence[str]) -> list[str]:
  """A code block of the distinct commands, in order."""
  return ["```"] + list(dict.fromkeys(commands)) + ["```"]


def value(v: Any) -> str:
  """A setting as text: floats with %g, None as '-', lists comma-joined."""
  if v is None:
    return "-"
  if isinstance(v, bool):
    return str(v).lower()
  if isinstance(v, float):
    return f"{v:g}"
  if isinstance(v, (list, tuple)):
    return ", ".join(value(x) for x in v)
  if isinstance(v, dict):
    return ", ".join(f"{k}={value(x)}" for k, x in v.items()) or "-"
  return str(v)


def doc_markdown(doc: str | None, drop_usage: bool = False) -> list[str]:
  """A docstring as markdown: indented paragraphs become code blocks.

  A paragraph whose first line starts with ``* `` is a bullet list: each
  ``* `` line starts an item, the lines after it continue that item.

  Args:
    doc: the docstring (reST roles such as :mod:`x` and ``x`` become `x`).
    drop_usage: leave out indented paragraphs (the section lists the exact
      commands itself).
  """
  if not doc:
    return []
  doc = re.sub(r":[a-z]+:`([^`]+)`", r"`\1`", doc).replace("``", "`")
  lines: list[str] = []
  for para in doc.strip().split("\n\n"):
    rows = para.split("\n")
    if all(r.startswith("  ") or not r.strip() for r in rows):
      if not drop_usage:
        lines += ["```"] + [r[2:] for r in rows] + ["```", ""]
    elif rows[0].startswith("* "):
      lines += _bullets(rows) + [""]
    else:
      lines += [" ".join(r.strip() for r in rows), ""]
  return lines


def _bullets(rows: list[str]) -> list[str]:
  """A bulleted paragraph as one markdown line per item."""
  items: list[str] = []
  for r in rows:
    if r.startswith("* "):
      items.append(r.strip())
    else:
      items[-1] += " " + r.strip()
  return items


def doc_title(doc: str | None) -> str | None:
  """A docstring's first line as a heading (markdown code, no final period)."""
  if not doc:
    return None
  line = doc.strip().split("\n", 1)[0].rstrip(".")
  return re.sub(r":[a-z]+:`([^`]+)`", r"`\1`", line).replace("``", "`")


def strip_title(doc: str | None) -> str | None:
  """A docstring without its first line (the section heading says it)."""
  if not doc:
    return doc
  parts = doc.strip().split("\n", 1)
  return parts[1] if len(parts) > 1 else ""


def machine_text(machine: Any, versions: Any) -> str:
  """The machine and library versions of a record, in one line."""
  if isinstance(machine, dict):
    text = f"{machine.get('cpus', '?')} CPUs"
    if machine.get("memory"):
      text += f", {machine['memory']} RAM"
    text += f", device {machine.get('device', '?')}"
    if machine.get("platform"):
      text += f" ({machine['platform']})"
    if machine.get("load"):
      text += f", {machine['load']}"
  else:
    text = "machine not recorded"
  if isinstance(versions, dict) and versions:
    text += "; " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
  return text


def when_text(records: Sequence[dict[str, Any]]) -> str:
  """``started A`` / ``started A to B`` / ``finished ...`` / ``date not recorded``."""
  for field, verb in (("started_utc", "started"), ("finished_utc", "finished")):
    dates = sorted(r[field] for r in records if r.get(field))
    if dates:
      return (f"{verb} {dates[0]}" if len(dates) == 1
              else f"{verb} {dates[0]} to {dates[-1]}")
  return "date not recorded"


def footer(records: Sequence[dict[str, Any]]) -> list[str]:
  """Machine, versions, dates and wall clock of a group of records."""
  by_machine: dict[str, list[dict[str, Any]]] = {}
  for r in records:
    by_machine.setdefault(machine_text(r.get("machine"), r.get("versions")),
                          []).append(r)
  lines = []
  for text, group in by_machine.items():
    walls = [r["wall_clock_s"] for r in group if r.get("wall_clock_s") is not None]
    wall = f"; {sum(walls):.0f} s wall clock in all" if walls else ""
    n = f"{len(group)} run{'s' if len(group) > 1 else ''}"
    lines.append(f"- {n} on {text}; {when_text(group)}{wall}.")
  return ["Measured on:", ""] + lines


def command_lines(command: str | None) -> list[str]:
  """The ``Command:`` block of a record (or the one note that it is missing)."""
  if not command:
    return ["Command not recorded.", ""]
  return ["Command:", ""] + code(command.split("\n")) + [""]


Body = Callable[[dict[str, Any]], tuple[list[str], list[Plot]]]


def record_sections(doc: str | None, records: Sequence[dict[str, Any]],
                    body: Body) -> tuple[list[str], list[Plot]]:
  """A section of one config's records, each with its command and machine.

  Args:
    doc: the config module's docstring (its first line is the heading's).
    records: the records to show, oldest first; none gives no section.
    body: renders one record's measurements: ``(lines, plots)``.

  Returns:
    ``(lines, plots)``; ``([], [])`` for no records.
  """
  if not records:
    return [], []
  lines = doc_markdown(strip_title(doc), drop_usage=True)
  plots: list[Plot] = []
  for i, r in enumerate(records, 1):
    if len(records) > 1:
      lines += [f"#### Run {i} of {len(records)}: {when_text([r])}", ""]
    b, p = body(r)
    lines += b + [""]
    plots += p
    lines += command_lines(r.get("command"))
    lines += footer([r]) + [""]
  return lines, plots


def newest_per_config(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """The newest record of each config hash, oldest first (ties by command)."""
  newest: dict[str, dict[str, Any]] = {}
  for r in records:
    old = newest.get(r["config_hash"])
    if old is None or _records.when(r) > _records.when(old):
      newest[r["config_hash"]] = r
  return sorted(newest.values(), key=lambda r: (_records.when(r),
                                                r.get("command") or "",
                                                r["config_hash"]))
