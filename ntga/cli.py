"""The ``ntga`` command line: poison, demo, evaluate, separability, bench.

JAX, TensorFlow and the attack/victim packages are imported only inside the
command that needs them, so ``ntga --help`` answers at once. Every user error
(``ntga.errors.NTGAError``) is printed as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import typing
from typing import Any, Sequence

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
  """Turns ``["key=value", ...]`` into typed keyword arguments.

  Args:
    config_cls: a dataclass whose fields name the allowed keys.
    pairs: ``key=value`` strings.

  Returns:
    A dict of field name -> parsed value.

  Raises:
    ConfigError: a malformed pair, an unknown key, or a value of the wrong type.
  """
  hints = typing.get_type_hints(config_cls)
  fields = {f.name for f in dataclasses.fields(config_cls)}
  out = {}
  for pair in pairs:
    key, sep, value = pair.partition("=")
    key = key.strip()
    if not sep or not key:
      raise ConfigError(f"--set expects key=value, got {pair!r}")
    if key not in fields:
      raise ConfigError(f"unknown setting {key!r} for {config_cls.__name__}; "
                        f"known: {', '.join(sorted(fields))}")
    out[key] = _parse_value(value.strip(), hints[key], key)
  return out


# --------------------------------------------------------------------------
# ntga poison


def _add_poison(sub) -> None:
  p = sub.add_parser("poison", help="make a dataset unlearnable",
                     description="Poison a training split and write OUT/train.npz "
                     "and OUT/manifest.json.")
  p.add_argument("--attack", default="ntga",
                 help="ntga (default), cuda, ops, em, rem or random")
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


def add_distributed_arguments(parser: argparse.ArgumentParser,
                              role: str) -> None:
  """Adds --distributed, --coordinator, --num-processes and --process-id.

  Args:
    parser: the sub-command's parser.
    role: what each process does, for the group's help text.
  """
  dist = parser.add_argument_group(
      "several processes", "--distributed runs jax.distributed.initialize(); "
      f"every process runs the same command, {role}. Unset values come from "
      "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, or JAX's "
      "cluster detection (SLURM, Open MPI, TPU, Kubernetes).")
  dist.add_argument("--distributed", action="store_true",
                    help="join a multi-process (multi-host) run")
  dist.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                    help="address of process 0's coordinator")
  dist.add_argument("--num-processes", type=int, default=None)
  dist.add_argument("--process-id", type=int, default=None)


def check_distributed_flags(args: argparse.Namespace) -> None:
  """Rejects --coordinator/--num-processes/--process-id without --distributed."""
  if args.distributed:
    return
  stray = [f"--{flag.replace('_', '-')}"
           for flag in ("coordinator", "num_processes", "process_id")
           if getattr(args, flag) is not None]
  if stray:
    raise ConfigError(f"{', '.join(stray)} needs --distributed")


def init_distributed(args: argparse.Namespace) -> None:
  """Calls ``jax.distributed.initialize`` from flags or environment."""
  import os  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top

  def pick(flag, env, kind):
    if flag is not None:
      return flag
    value = os.environ.get(env)
    if value is None:
      return None
    try:
      return kind(value)
    except ValueError:
      raise ConfigError(f"{env}={value!r} is not a valid {kind.__name__}") from None

  count = pick(args.num_processes, "JAX_NUM_PROCESSES", int)
  pid = pick(args.process_id, "JAX_PROCESS_ID", int)
  if count is not None and pid is not None and not 0 <= pid < count:
    raise ConfigError(f"--process-id must be in [0, {count}), got {pid}")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
      coordinator_address=pick(args.coordinator, "JAX_COORDINATOR_ADDRESS", str),
      num_processes=count, process_id=pid)


def build_config(attack, settings: Sequence[str], eps: float | None):
  """The attack's config from ``--set`` pairs and ``--eps`` (validated)."""
  kwargs = parse_settings(attack.config_cls, settings)
  if eps is not None:
    names = {f.name for f in dataclasses.fields(attack.config_cls)}
    if "eps" not in names:
      raise ConfigError(f"attack {attack.name!r} has no eps bound; drop --eps")
    kwargs["eps"] = eps
  return attack.config_cls(**kwargs)


def run_poison(args: argparse.Namespace) -> int:
  """Implements ``ntga poison``."""
  from ntga import attacks  # pylint: disable=g-import-not-at-top
  from ntga import data, io  # pylint: disable=g-import-not-at-top

  check_distributed_flags(args)
  if args.distributed:
    init_distributed(args)
  attack = attacks.get(args.attack)
  if args.distributed and not attack.resumable:
    raise ConfigError(f"--distributed is supported by block-wise attacks "
                      f"(ntga), not {attack.name!r}")
  config = build_config(attack, args.settings, args.eps)
  if args.ratio is not None and not 0.0 <= args.ratio <= 1.0:
    raise ConfigError(f"--ratio must be in [0, 1], got {args.ratio}")
  out = io.prepare_output(args.out, overwrite=args.overwrite,
                          inputs=[args.data])
  ds = data.load(args.data, args.split, limit=args.limit,
                 data_dir=args.data_dir)
  manifest, x_out = poison_dataset(attack, config, ds, seed=args.seed,
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
  _remove_checkpoints(out)
  print(f"wrote {out}/train.npz: {len(x_out)} images, attack {attack.name}, "
        f"max |delta| {manifest['max_abs_delta_levels']}/255")
  return 0


def poison_dataset(attack, config, ds, *, seed: int, ratio: float | None,
                   out=None) -> tuple[dict[str, Any], Any]:
  """Runs an attack on a Dataset; returns (manifest fields, poisoned x)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ntga import attacks  # pylint: disable=g-import-not-at-top
  from ntga import io  # pylint: disable=g-import-not-at-top

  key = jax.random.key(seed)
  extra = {}
  if attack.resumable:
    extra = {"progress": True, "num_classes": ds.num_classes,
             "checkpoint_dir": None if out is None else out / io.CHECKPOINT_DIR}
  x_p = attack.poison(key, ds.x, ds.y, config, **extra)
  resolved = config
  if attack.name == "ntga":
    from ntga.pgd import resolve  # pylint: disable=g-import-not-at-top
    resolved = resolve(config, ds.x.shape[1:])
  manifest: dict[str, Any] = {"attack": attack.name,
                              "config": dataclasses.asdict(resolved)}
  if ratio is not None:
    x_p, mask = attacks.apply_ratio(jax.random.fold_in(key, 0x5a7), ds.x, x_p,
                                    ratio)
    manifest["ratio"] = ratio
    manifest["n_poisoned"] = int(np.sum(mask))
  if attack.secret_key:
    manifest["seed_fingerprint"] = attacks.key_fingerprint(key)
  else:
    manifest["seed"] = seed
  stats = attacks.perturbation_stats(ds.x, x_p)
  manifest.update(stats)
  manifest["versions"] = io.library_versions()
  return manifest, np.asarray(x_p, np.uint8)


def _remove_checkpoints(out) -> None:
  import shutil  # pylint: disable=g-import-not-at-top
  from ntga import io  # pylint: disable=g-import-not-at-top
  shutil.rmtree(out / io.CHECKPOINT_DIR, ignore_errors=True)


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


def _add_bench(sub) -> None:
  p = sub.add_parser("bench", add_help=False,
                     help="run a benchmark config (alias of python -m "
                     "benchmarks.run; see ntga bench --help)")
  p.add_argument("bench_args", nargs=argparse.REMAINDER)
  p.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
  """Implements ``ntga bench`` by handing over to ``benchmarks.run``."""
  from benchmarks.run import main as bench_main  # pylint: disable=g-import-not-at-top
  return bench_main(args.bench_args)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
  """The ``ntga`` argument parser (victim flags loaded if argv needs them)."""
  parser = argparse.ArgumentParser(
      prog="ntga", description="Make image datasets unlearnable (NTGA and "
      "other poisoners), and measure it.")
  sub = parser.add_subparsers(dest="command", required=True)
  _add_poison(sub)
  _add_demo(sub)
  _add_bench(sub)
  command = next((a for a in argv if not a.startswith("-")), None)
  _add_victims(sub, full=command in _VICTIM_COMMANDS)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the ``ntga`` console script."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv[:1] == ["bench"]:  # hand every flag, --help included, to the bench
    return run_bench(argparse.Namespace(bench_args=argv[1:]))
  parser = build_parser(argv)
  args = parser.parse_args(argv)
  try:
    return args.func(args)
  except NTGAError as e:
    print(f"ntga: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("ntga: interrupted", file=sys.stderr)
    return 130


#: Commands that run JAX and so restart once with huge pages (see ntga.hugepages).
_HEAVY_COMMANDS = ("poison", "demo", "evaluate", "separability", "bench")


def console_main() -> None:
  """The ``ntga`` program: :func:`main` after the huge-page restart."""
  if sys.argv[1:2] and sys.argv[1] in _HEAVY_COMMANDS:
    from ntga import hugepages  # pylint: disable=g-import-not-at-top
    hugepages.restart_with_hugepages()
  sys.exit(main())


if __name__ == "__main__":
  console_main()
