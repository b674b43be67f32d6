"""The ``ntga`` command line: poison, demo, evaluate, separability, doctor.

Argument parsing only: every command calls into the library
(:mod:`ntga.attacks.pipeline`, :mod:`ntga.demo`, :mod:`ntga.victims.cli`'s
runners). JAX, TensorFlow and the attack/victim packages are imported only
inside the command that needs them, so ``ntga --help`` answers at once. Every
user error (``ntga.errors.NTGAError``) is printed as one line and exits with
status 2; an interrupted run (Ctrl-C or SIGTERM) exits with 130 and says
whether re-running the same command resumes it. Benchmarks run from a
checkout: ``python -m benchmarks.run``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import signal
import sys
import threading
import typing
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from ntga.distributed import add_distributed_arguments
from ntga.errors import ConfigError, NTGAError


# --------------------------------------------------------------------------
# --set key=value parsing against a frozen dataclass config.


def _parse_value(text: str, annotation: Any, key: str) -> Any:
  """Parses ``text`` as the type named by a dataclass field annotation."""
  options = typing.get_args(annotation) or (annotation,)
  if type(None) in options and text.lower() in ("none", "null"):
    return None
  for kind in options:
    if kind is type(None):
      continue
    try:
      if kind is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
          return True
        if low in ("0", "false", "no", "off"):
          return False
        raise ValueError(text)
      if kind is int:
        return int(text)
      if kind is float:
        value = float(text)
        if math.isnan(value):
          raise ValueError(text)
        return value
      if kind is str:
        return text
    except ValueError:
      continue
  names = " or ".join(getattr(k, "__name__", str(k)) for k in options)
  raise ConfigError(f"--set {key}={text}: expected {names}")


#: A comma that starts a new ``key=value`` pair inside one ``--set`` value.
_PAIR_START = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")


def split_pairs(text: str) -> list[str]:
  """Splits one ``--set`` value into its ``key=value`` pairs.

  A comma followed by ``name=`` starts a new pair; any other comma belongs
  to the value, so a value may itself be a comma-separated list.

  Args:
    text: e.g. ``"steps=3,block_size=64"``.

  Returns:
    The pairs, e.g. ``["steps=3", "block_size=64"]``.

  Example:
    >>> split_pairs("defense_aware=grayscale,jpeg,steps=3")
    ['defense_aware=grayscale,jpeg', 'steps=3']
  """
  return _PAIR_START.split(text)


def parse_number(text: str, flag: str) -> float:
  """Parses a flag's number: a decimal (``0.03``, ``3e-2``) or a fraction ``a/b``.

  Args:
    text: the flag's value, e.g. ``"8/255"``.
    flag: the flag, named in the error.

  Returns:
    The value as a float.

  Raises:
    ConfigError: anything else (one line naming the flag).

  Example:
    >>> parse_number("8/255", "--eps") == 8 / 255
    True
  """
  try:
    return float(Fraction(text.strip()))
  except (ValueError, ZeroDivisionError):
    raise ConfigError(f"{flag} expects a number or a fraction a/b (e.g. 0.03 or "
                      f"8/255), got {text!r}") from None


def parse_settings(config_cls: type, pairs: Sequence[str]) -> dict[str, Any]:
  """Turns ``["key=value", ...]`` into keyword arguments typed by the config.

  Each item may hold several pairs separated by commas (see
  :func:`split_pairs`). A key that is not a field of ``config_cls`` keeps its
  text value; the library (:func:`ntga.attacks.pipeline.build_config`)
  rejects it with the list of known keys.

  Args:
    config_cls: a dataclass whose field annotations give the values' types.
    pairs: ``key=value`` strings (or ``k1=v1,k2=v2``).

  Returns:
    A dict of key -> parsed value.

  Raises:
    ConfigError: a malformed pair or a value of the wrong type.

  Example:
    >>> parse_settings(NTGAConfig, ["steps=3,surrogate=cnn"])
    {'steps': 3, 'surrogate': 'cnn'}
  """
  hints = typing.get_type_hints(config_cls)
  out = {}
  for pair in (p for item in pairs for p in split_pairs(item)):
    key, sep, value = pair.partition("=")
    key = key.strip()
    if not sep or not key:
      raise ConfigError(f"--set expects key=value, got {pair!r}")
    value = value.strip()
    out[key] = _parse_value(value, hints[key], key) if key in hints else value
  return out


# --------------------------------------------------------------------------
# ntga poison


def _format_default(value: Any) -> str:
  return f"{value:.4g}" if isinstance(value, float) else str(value)


def attacks_help(width: int = 79) -> str:
  """The ``ntga poison --help`` epilog: each attack's presets and settings.

  Generated from the registry (:mod:`ntga.attacks.registry`): every field of
  an attack's config class with its paper default (``auto``: filled in from
  the data), its preset names, and each preset other than ``paper`` with the
  settings it changes. Imports every attack module, so it is built only when
  help is asked for.

  Args:
    width: the line width to wrap to.

  Returns:
    The text, one block per attack.

  Example:
    >>> "em (presets: paper, cpu)" in attacks_help()
    True
  """
  import textwrap  # pylint: disable=g-import-not-at-top
  from ntga import attacks  # pylint: disable=g-import-not-at-top
  indent = " " * 4

  def wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=first,
                         subsequent_indent=rest, break_on_hyphens=False)

  lines = wrap("attacks (--attack), their settings (--set KEY=VALUE; the "
               "paper's default shown, auto: chosen from the data) and "
               "presets (--preset NAME: the settings a preset changes; --set "
               "overrides them):", "", "")
  for name, atk in attacks.registry().items():
    cls = atk.config_cls
    paper = cls()
    filled = paper.resolved((32, 32, 3))
    settings = []
    for f in dataclasses.fields(cls):
      value = getattr(paper, f.name)
      shown = ("auto" if value is None and getattr(filled, f.name) is not None
               else _format_default(value))
      settings.append(f"{f.name}={shown}")
    lines.append(f"  {name} (presets: {', '.join(cls.preset_names)})")
    lines += wrap(" ".join(settings), indent, indent)
    for preset in cls.preset_names[1:]:
      config = cls.preset(preset)
      changed = [f"{f.name}={_format_default(getattr(config, f.name))}"
                 for f in dataclasses.fields(cls)
                 if getattr(config, f.name) != getattr(paper, f.name)]
      lines += wrap(f"--preset {preset}: {' '.join(changed) or 'no change'}",
                    indent, indent + "  ")
  return "\n".join(lines)


class _EpilogFormatter(argparse.HelpFormatter):
  """Argparse's formatter, but text holding line breaks is printed as is."""

  def _fill_text(self, text, width, indent):
    if "\n" in text:
      return "".join(indent + line for line in text.splitlines(keepends=True))
    return super()._fill_text(text, width, indent)


class _PoisonHelp(argparse.Action):
  """``-h/--help`` of ``ntga poison``: usage, flags, and :func:`attacks_help`.

  The attack list needs every attack module (and JAX), so it is built when
  help is asked for, not when the parser is.
  """

  def __init__(self, option_strings, dest=argparse.SUPPRESS,
               default=argparse.SUPPRESS, help=None):  # pylint: disable=redefined-builtin
    super().__init__(option_strings, dest=dest, default=default, nargs=0,
                     help=help)

  def __call__(self, parser, namespace, values, option_string=None):
    parser.epilog = attacks_help()
    parser.print_help()
    parser.exit()


def _add_poison(sub) -> None:
  from ntga.attacks.registry import NAMES  # pylint: disable=g-import-not-at-top
  p = sub.add_parser("poison", help="make a dataset unlearnable",
                     description="Poison a training split and write OUT/train.npz "
                     "and OUT/manifest.json.", add_help=False,
                     formatter_class=_EpilogFormatter)
  p.add_argument("-h", "--help", action=_PoisonHelp,
                 help="show this help, with every attack's settings and presets")
  p.add_argument("--attack", default="ntga",
                 help=f"one of {', '.join(NAMES)} (default ntga)")
  p.add_argument("--preset", default=None, metavar="NAME",
                 help="start from the attack's named preset (default paper: "
                 "the paper's settings; -h lists each attack's); --set values "
                 "override it")
  p.add_argument("--data", required=True,
                 help="data spec: digits, tfds:NAME, an IDX or CIFAR folder, "
                 "an image folder or archive, or an .npz")
  p.add_argument("--out", required=True, help="output folder (must be empty)")
  p.add_argument("--split", default="train", help="split to poison (train)")
  p.add_argument("--data-dir", default=None, help="tensorflow-datasets data dir")
  p.add_argument("--limit", type=int, default=None,
                 help="use the first N examples of a fixed class-stratified order")
  p.add_argument("--eps", default=None, metavar="EPS",
                 help="perturbation bound in [0,1] pixel units, a number or a "
                 "fraction such as 8/255 (default: the method's paper value "
                 "for the data)")
  p.add_argument("--seed", type=int, default=0,
                 help="PRNG seed in [0, 2**32) (0)")
  p.add_argument("--set", dest="settings", action="append", default=[],
                 metavar="KEY=VALUE", help="attack settings, e.g. "
                 "surrogate=cnn or t=64,steps=10 (repeatable; a comma followed "
                 "by KEY= starts a new pair, any other comma is part of the "
                 "value)")
  p.add_argument("--ratio", default=None, metavar="R",
                 help="poison only this seeded random fraction of the split "
                 "(a number or a fraction a/b); the manifest lists the rows")
  p.add_argument("--png", action="store_true",
                 help="also write the images as PNGs under OUT/train/: an image "
                 "folder's own paths (automobile/0000.png), else "
                 "<class>/<index>.png")
  p.add_argument("--overwrite", action="store_true",
                 help="allow a non-empty OUT")
  add_distributed_arguments(
      p, "poisons its share of the blocks (OUT must be on a file system they "
      "share) and process 0 writes the output")
  p.set_defaults(func=run_poison)


def _has_checkpoints(out: Path) -> bool:
  from ntga import io  # pylint: disable=g-import-not-at-top
  ckpt = Path(out) / io.ATTACK_CHECKPOINTS
  return ckpt.is_dir() and any(ckpt.iterdir())


def run_poison(args: argparse.Namespace) -> int:
  """Implements ``ntga poison``.

  A run that fails or is interrupted before anything worth keeping was
  written removes the output folder it created; one interrupted after some
  checkpoints says how to resume.
  """
  from ntga import attacks, data, io  # pylint: disable=g-import-not-at-top
  from ntga import distributed  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top

  distributed.check_distributed_flags(args)
  attack = attacks.get(args.attack)
  if args.distributed and not attack.config_cls.multi_process:
    able = [a.name for a in attacks.registry().values()
            if a.config_cls.multi_process]
    raise ConfigError(f"--distributed is supported by block-wise attacks "
                      f"({', '.join(able)}), not {attack.name!r}")
  eps = None if args.eps is None else parse_number(args.eps, "--eps")
  ratio = None if args.ratio is None else parse_number(args.ratio, "--ratio")
  preset = args.preset or "paper"
  config = pipeline.build_config(
      attack, parse_settings(attack.config_cls, args.settings), eps,
      preset=preset)
  pipeline.check_ratio(ratio)
  pipeline.check_seed(args.seed)
  if args.distributed:
    distributed.init_distributed(args)
  created = not os.path.exists(args.out)
  out = io.prepare_output(args.out, overwrite=args.overwrite,
                          inputs=[data.resolve_spec(args.data, args.data_dir)])
  try:
    ds = data.load(args.data, args.split, limit=args.limit,
                   data_dir=args.data_dir)
    manifest, x_out = pipeline.poison_dataset(
        attack, config, ds, seed=args.seed, ratio=ratio, out=out,
        preset=preset)
  except BaseException as e:
    if created:
      io.remove_if_empty(out)
    if isinstance(e, KeyboardInterrupt):
      hint = ("the progress is kept in OUT/.checkpoints; re-run the same "
              "command to resume" if _has_checkpoints(out) else
              "nothing was kept; re-run the same command to start again")
      print(f"ntga: interrupted; {hint}", file=sys.stderr)
      return 130
    raise
  manifest["input"] = pipeline.input_record(
      ds, args.data, split=args.split, limit=args.limit,
      data_dir=args.data_dir)
  if args.distributed:
    import jax  # pylint: disable=g-import-not-at-top
    manifest["processes"] = jax.process_count()
    if jax.process_index() != 0:
      return 0  # process 0 writes the output
  io.write_run(out, x_out, ds.y, ds.index, ds.class_names, manifest,
               png=args.png, paths=ds.paths)
  pipeline.remove_checkpoints(out)
  print(f"wrote {out}/train.npz: {len(x_out)} images, attack {attack.name}, "
        f"max |delta| {manifest['max_abs_delta_levels']}/255")
  return 0


# --------------------------------------------------------------------------
# ntga demo


def _add_demo(sub) -> None:
  p = sub.add_parser("demo", help="poison the embedded digits set and show "
                     "that a victim fails to learn from it")
  p.add_argument("--out", default="ntga-demo",
                 help="output folder (default ./ntga-demo)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--overwrite", action="store_true")
  p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
  from ntga import demo  # pylint: disable=g-import-not-at-top
  return demo.main(out=args.out, seed=args.seed, overwrite=args.overwrite)


# --------------------------------------------------------------------------
# ntga doctor


def _add_doctor(sub) -> None:
  p = sub.add_parser("doctor", help="print the versions, the devices JAX sees "
                     "and where to look if no GPU/TPU is found",
                     description="Print the Python, ntga, JAX, jaxlib, "
                     "neural-tangents, flax and optax versions, the devices "
                     "JAX sees, what the neural-tangents shim patched, and "
                     "hints when no accelerator is found. Exits 1 when JAX or "
                     "neural-tangents cannot run.")
  p.add_argument("--json", action="store_true",
                 help="print the report as one JSON object")
  p.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
  """Implements ``ntga doctor``."""
  import json  # pylint: disable=g-import-not-at-top
  from ntga import doctor  # pylint: disable=g-import-not-at-top
  report = doctor.collect()
  if args.json:
    print(json.dumps(report, indent=2))
  else:
    print("\n".join(doctor.format_report(report)))
  return 1 if report["errors"] else 0


# --------------------------------------------------------------------------
# ntga evaluate / separability (implemented in victims.cli)


_VICTIM_COMMANDS = {
    "evaluate": "train a victim on (poisoned) data and report its clean test "
                "accuracy",
    "separability": "how linearly separable the perturbations and the "
                    "poisoned data are",
}


def _add_victims(sub, full: bool) -> None:
  """Adds evaluate/separability; their flags only when one of them runs.

  ``victims`` imports JAX and Flax, so the flag definitions are loaded only
  for those commands and ``ntga --help`` stays instant.
  """
  if not full:
    for name, text in _VICTIM_COMMANDS.items():
      sub.add_parser(name, help=text)
    return
  from ntga.victims import cli as vcli  # pylint: disable=g-import-not-at-top
  p = sub.add_parser("evaluate", help=_VICTIM_COMMANDS["evaluate"])
  vcli.add_evaluate_arguments(p)
  p.set_defaults(func=vcli.run_evaluate)
  p = sub.add_parser("separability", help=_VICTIM_COMMANDS["separability"])
  vcli.add_separability_arguments(p)
  p.set_defaults(func=vcli.run_separability)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
  """The ``ntga`` argument parser (victim flags loaded if argv needs them)."""
  parser = argparse.ArgumentParser(
      prog="ntga", description="Make image datasets unlearnable (NTGA and "
      "other poisoners), and measure it.")
  sub = parser.add_subparsers(dest="command", required=True)
  _add_poison(sub)
  _add_demo(sub)
  command = next((a for a in argv if not a.startswith("-")), None)
  _add_victims(sub, full=command in _VICTIM_COMMANDS)
  _add_doctor(sub)
  return parser


def _use_cpu_collectives() -> None:
  """Selects gloo for cross-process collectives on CPU (a JAX-global setting).

  Set here, in the entry point, before ``jax.distributed.initialize``; it is
  JAX's default in the versions ntga supports, set so that a multi-process
  CPU run keeps working whatever a user's JAX configuration says.
  """
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_cpu_collectives_implementation", "gloo")


def _terminated(signum, frame) -> None:
  """SIGTERM handler: stop the way Ctrl-C does, so the run can say how to resume."""
  del signum, frame
  raise KeyboardInterrupt


def _interrupted_hint(args: argparse.Namespace) -> str:
  """What an interrupted command tells its user (poison says its own)."""
  if args.command == "evaluate" and getattr(args, "out", None):
    return ("; the epochs done are kept in --out; re-run the same command to "
            "resume")
  return "; re-run the same command to start again"


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the ``ntga`` console script.

  While a command runs, SIGTERM (``kill PID``, a scheduler's preemption)
  interrupts it like Ctrl-C: it stops, cleans up, and says whether re-running
  the same command resumes.
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser(argv)
  args = parser.parse_args(argv)
  if getattr(args, "distributed", False):
    _use_cpu_collectives()
  on_main = threading.current_thread() is threading.main_thread()
  previous = signal.signal(signal.SIGTERM, _terminated) if on_main else None
  try:
    return args.func(args)
  except NTGAError as e:
    print(f"ntga: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f"ntga: interrupted{_interrupted_hint(args)}", file=sys.stderr)
    return 130
  finally:
    if on_main and previous is not None:
      signal.signal(signal.SIGTERM, previous)


#: Commands that run JAX and so restart once with huge pages (see ntga.hugepages).
_HEAVY_COMMANDS = ("poison", "demo", "evaluate", "separability")


def console_main() -> None:
  """The ``ntga`` program: :func:`main` after the huge-page restart."""
  if sys.argv[1:2] and sys.argv[1] in _HEAVY_COMMANDS:
    from ntga import hugepages  # pylint: disable=g-import-not-at-top
    hugepages.restart_with_hugepages()
  sys.exit(main())


if __name__ == "__main__":
  console_main()
