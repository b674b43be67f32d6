"""The ``ntga`` command line: poison, demo, evaluate, separability, doctor.

Argument parsing only: every command calls into the library
(:mod:`ntga.attacks.pipeline`, :mod:`ntga.demo`, :mod:`ntga.victims.cli`'s
runners). JAX, TensorFlow and the attack/victim packages are imported only
inside the command that needs them, so ``ntga --help`` answers at once. Every
user error (``ntga.errors.NTGAError``) is printed as one line and exits with
status 2. Benchmarks run from a checkout: ``python -m benchmarks.run``.
"""

from __future__ import annotations

import argparse
import math
import sys
import typing
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


def parse_settings(config_cls: type, pairs: Sequence[str]) -> dict[str, Any]:
  """Turns ``["key=value", ...]`` into keyword arguments typed by the config.

  A key that is not a field of ``config_cls`` keeps its text value; the
  library (:func:`ntga.attacks.pipeline.build_config`) rejects it with the
  list of known keys.

  Args:
    config_cls: a dataclass whose field annotations give the values' types.
    pairs: ``key=value`` strings.

  Returns:
    A dict of key -> parsed value.

  Raises:
    ConfigError: a malformed pair or a value of the wrong type.
  """
  hints = typing.get_type_hints(config_cls)
  out = {}
  for pair in pairs:
    key, sep, value = pair.partition("=")
    key = key.strip()
    if not sep or not key:
      raise ConfigError(f"--set expects key=value, got {pair!r}")
    value = value.strip()
    out[key] = _parse_value(value, hints[key], key) if key in hints else value
  return out


# --------------------------------------------------------------------------
# ntga poison


def _add_poison(sub) -> None:
  from ntga.attacks.registry import NAMES  # pylint: disable=g-import-not-at-top
  p = sub.add_parser("poison", help="make a dataset unlearnable",
                     description="Poison a training split and write OUT/train.npz "
                     "and OUT/manifest.json.")
  p.add_argument("--attack", default="ntga",
                 help=f"one of {', '.join(NAMES)} (default ntga)")
  p.add_argument("--data", required=True,
                 help="data spec: digits, tfds:NAME, an IDX or CIFAR folder, "
                 "an image folder or archive, or an .npz")
  p.add_argument("--out", required=True, help="output folder (must be empty)")
  p.add_argument("--split", default="train", help="split to poison (train)")
  p.add_argument("--data-dir", default=None, help="tensorflow-datasets data dir")
  p.add_argument("--limit", type=int, default=None,
                 help="use the first N examples of a fixed class-stratified order")
  p.add_argument("--eps", type=float, default=None,
                 help="perturbation bound in [0,1] pixel units "
                 "(default: the method's paper value for the data)")
  p.add_argument("--seed", type=int, default=0, help="PRNG seed (0)")
  p.add_argument("--set", dest="settings", action="append", default=[],
                 metavar="KEY=VALUE", help="an attack setting, e.g. "
                 "surrogate=cnn, t=64, steps=10, block_size=512 (repeatable)")
  p.add_argument("--ratio", type=float, default=None,
                 help="poison only this seeded random fraction of the split")
  p.add_argument("--png", action="store_true",
                 help="also write OUT/train/<class>/<index>.png")
  p.add_argument("--overwrite", action="store_true",
                 help="allow a non-empty OUT")
  add_distributed_arguments(
      p, "poisons its share of the blocks (OUT must be on a file system they "
      "share) and process 0 writes the output")
  p.set_defaults(func=run_poison)


def run_poison(args: argparse.Namespace) -> int:
  """Implements ``ntga poison``."""
  from ntga import attacks, data, io  # pylint: disable=g-import-not-at-top
  from ntga import distributed  # pylint: disable=g-import-not-at-top
  from ntga.attacks import pipeline  # pylint: disable=g-import-not-at-top

  distributed.check_distributed_flags(args)
  if args.distributed:
    distributed.init_distributed(args)
  attack = attacks.get(args.attack)
  if args.distributed and not attack.config_cls.multi_process:
    able = [a.name for a in attacks.registry().values()
            if a.config_cls.multi_process]
    raise ConfigError(f"--distributed is supported by block-wise attacks "
                      f"({', '.join(able)}), not {attack.name!r}")
  config = pipeline.build_config(
      attack, parse_settings(attack.config_cls, args.settings), args.eps)
  pipeline.check_ratio(args.ratio)
  out = io.prepare_output(args.out, overwrite=args.overwrite,
                          inputs=[args.data])
  ds = data.load(args.data, args.split, limit=args.limit,
                 data_dir=args.data_dir)
  manifest, x_out = pipeline.poison_dataset(attack, config, ds, seed=args.seed,
                                            ratio=args.ratio, out=out)
  manifest["input"] = {"spec": args.data, "split": args.split,
                       "limit": args.limit, "data_dir": args.data_dir}
  if args.distributed:
    import jax  # pylint: disable=g-import-not-at-top
    manifest["processes"] = jax.process_count()
    if jax.process_index() != 0:
      return 0  # process 0 writes the output
  io.write_run(out, x_out, ds.y, ds.index, ds.class_names, manifest,
               png=args.png)
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


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the ``ntga`` console script."""
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser(argv)
  args = parser.parse_args(argv)
  if getattr(args, "distributed", False):
    _use_cpu_collectives()
  try:
    return args.func(args)
  except NTGAError as e:
    print(f"ntga: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("ntga: interrupted", file=sys.stderr)
    return 130


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
