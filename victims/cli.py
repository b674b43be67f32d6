"""Command-line front ends for ``ntga evaluate`` and ``ntga separability``.

The ``ntga`` CLI hooks :func:`add_evaluate_arguments` / :func:`run_evaluate`
and :func:`add_separability_arguments` / :func:`run_separability` into its
sub-commands; ``python -m ntga.victims.cli {evaluate,separability} ...`` runs the
same code stand-alone.

``evaluate --out DIR`` saves the training state to ``DIR/checkpoints/`` after
every epoch; run the same command again after a crash or preemption and it
continues from the latest epoch, ending with the same metrics. A finished run
writes ``DIR/metrics.json`` and ``DIR/learning_curve.png`` and removes the
checkpoints; a folder holding metrics.json is complete and is refused, and so
is one holding anything but those outputs and ``checkpoints/``.

Example:
  python -m ntga.victims.cli evaluate --train digits --test digits --victim cnn \
      --epochs 5 --out runs/cnn
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from fractions import Fraction

from ntga import io
from ntga.errors import ConfigError, DataError, NTGAError, OutputError


def _number(text: str) -> float:
  """Parses '0.03', '8/255' or '8e-3' into a float."""
  try:
    return float(Fraction(text))
  except (ValueError, ZeroDivisionError):
    raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from None


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the ``evaluate`` flags to ``parser``."""
  from ntga.victims import _names  # no JAX import: `ntga --help` stays fast
  parser.add_argument("--train", required=True, metavar="SPEC",
                      help="training data spec (any ntga data spec, a poisoning "
                           "run's OUT directory or its train.npz)")
  parser.add_argument("--test", metavar="SPEC",
                      help="clean test data spec (its 'test' split); default: the "
                           "'test' split of --train, which must have a separate one")
  # Names are checked by config_from_args (one line naming the valid ones),
  # not by argparse `choices`, whose error comes after a full usage dump.
  parser.add_argument("--victim", required=True, metavar="NAME",
                      help=f"one of {', '.join(_names.VICTIMS)}")
  parser.add_argument("--defense", default="none", metavar="NAME",
                      help=f"one of {', '.join(_names.DEFENSES)} (default none)")
  parser.add_argument("--epochs", type=int, help="default: the victim's recipe")
  parser.add_argument("--batch-size", type=int, help="default: the victim's recipe")
  parser.add_argument("--lr", type=float, help="peak learning rate; default: recipe")
  parser.add_argument("--optimizer", metavar="NAME",
                      help=f"one of {', '.join(_names.OPTIMIZERS)}; default: recipe")
  parser.add_argument("--schedule", metavar="NAME",
                      help=f"one of {', '.join(_names.SCHEDULES)}; default: recipe")
  parser.add_argument("--weight-decay", type=float)
  parser.add_argument("--augment", default="auto", metavar="NAME",
                      help=f"standard augmentation, one of {', '.join(_names.AUGMENTS)} "
                           "(auto: crop+flip for colour images)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--limit-train", type=int, metavar="N",
                      help="use N training images (class-balanced subset)")
  parser.add_argument("--limit-test", type=int, metavar="N",
                      help="use N test images")
  parser.add_argument("--data-dir", help="tfds data directory")
  parser.add_argument("--at-eps", type=_number,
                      help="PGD radius in [0,1] units (default 8/255 L_inf, 0.5 L2)")
  parser.add_argument("--at-steps", type=int, help="PGD steps (default 10)")
  parser.add_argument("--at-step-size", type=_number,
                      help="PGD step size (default eps/4 L_inf, 2.5*eps/steps L2; "
                           "at-nfgsm: eps)")
  parser.add_argument("--at-noise", type=_number,
                      help="at-nfgsm: half-width of the uniform start, in units "
                           "of eps (default 2)")
  parser.add_argument("--jpeg-quality", type=int, help="jpeg defense (default 10)")
  parser.add_argument("--bdr-bits", type=int, help="bdr defense (default 2)")
  parser.add_argument("--cutout-size", type=int,
                      help="cutout defense (default half the image side)")
  parser.add_argument("--ortho-augment", metavar="NAME",
                      help="ortho defense: the victim's augmentation, one of "
                           f"{', '.join(_names.ORTHO_AUGMENT)} (default: its authors' "
                           "strong augmentation; victim: only --augment)")
  parser.add_argument("--ortho-linear", metavar="NAME",
                      help="ortho defense: how its linear model trains, one of "
                           f"{', '.join(_names.ORTHO_LINEAR)} (default: the authors' sgd)")
  parser.add_argument("--ortho-fit-on", metavar="NAME",
                      help="ortho defense: images the victim's input statistics "
                           f"come from, one of {', '.join(_names.ORTHO_FIT_ON)} "
                           "(default: unprojected)")
  parser.add_argument("--ortho-project-test", action="store_true", default=None,
                      help="ortho defense: also project the test images")
  parser.add_argument("--mixed-precision", action="store_true",
                      help="bfloat16 compute (off by default)")
  parser.add_argument("--robust-eps", type=_number, metavar="EPS",
                      help="after training, also report the test accuracy under "
                           "PGD-10 in the L_inf ball of this radius (e.g. 8/255)")
  parser.add_argument("--no-progress", action="store_true", help="no progress bars")
  parser.add_argument("--out", metavar="DIR",
                      help="write metrics.json and learning_curve.png here; "
                           "per-epoch checkpoints go to DIR/checkpoints/ and a "
                           "rerun of a killed run resumes from them")
  from ntga.distributed import add_distributed_arguments
  add_distributed_arguments(
      parser, "on the same data, trains on its share of each batch (data "
      "parallel over all processes' devices) and process 0 writes the output "
      "(OUT must be on a file system they share)")


def _check_out_folder(out: str, result: str) -> None:
  """Refuses an ``--out`` that is a file or already holds ``result``."""
  if os.path.exists(out) and not os.path.isdir(out):
    raise OutputError(f"--out {out}: exists and is not a directory")
  if os.path.exists(os.path.join(out, result)):
    raise OutputError(f"--out {out}: already holds {result}; choose a new directory")


def _make_out(out: str) -> None:
  try:
    os.makedirs(out, exist_ok=True)
  except OSError as e:
    raise OutputError(f"--out {out}: cannot create it: {e.strerror}") from e


def _check_out(out: str | None) -> None:
  if out is None:
    return
  _check_out_folder(out, "metrics.json")
  # A killed run's folder holds its checkpoints (and maybe the curve written
  # just before metrics.json): a rerun resumes there. Anything else is not ours.
  foreign = sorted(set(os.listdir(out)) - {VICTIM_CHECKPOINTS, CURVE}
                   ) if os.path.isdir(out) else []
  if foreign:
    raise OutputError(f"--out {out}: not empty (holds {foreign[0]!r}); choose a new "
                      f"directory (a killed run's folder, holding only "
                      f"{VICTIM_CHECKPOINTS}/, resumes)")


#: Sub-folder of ``--out`` holding the victim's per-epoch training checkpoints
#: (not the attack's block checkpoints, ``ntga.io.ATTACK_CHECKPOINTS``).
VICTIM_CHECKPOINTS = "checkpoints"
#: The learning-curve figure ``evaluate --out`` writes before metrics.json.
CURVE = "learning_curve.png"

#: The flags that set a defense's own settings, by their flat TrainConfig name.
_DEFENSE_FLAGS = ("at_eps", "at_steps", "at_step_size", "at_noise", "jpeg_quality",
                  "bdr_bits", "cutout_size", "ortho_augment", "ortho_linear",
                  "ortho_fit_on", "ortho_project_test")


def plot_learning_curve(metrics: dict, path: str) -> None:
  """Writes a PNG of per-epoch train/test accuracy and train loss.

  Draws on a :class:`matplotlib.figure.Figure` of its own, without pyplot, so
  matplotlib's global backend is left as it is.
  """
  from matplotlib.figure import Figure
  epochs = range(1, len(metrics["test_accuracy"]) + 1)
  fig = Figure(figsize=(6, 4))
  ax = fig.add_subplot()
  ax.plot(epochs, metrics["train_accuracy"], "o-", label="train accuracy")
  ax.plot(epochs, metrics["test_accuracy"], "s-", label="clean test accuracy")
  ax.set_xlabel("epoch")
  ax.set_ylabel("accuracy")
  ax.set_ylim(0, 1)
  ax2 = ax.twinx()
  ax2.plot(epochs, metrics["train_loss"], "--", color="gray", label="train loss")
  ax2.set_ylabel("train loss")
  cfg = metrics["config"]
  ax.set_title(f"{cfg['victim']} / {cfg['defense']}")
  lines = ax.get_legend_handles_labels()
  lines2 = ax2.get_legend_handles_labels()
  ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower right")
  fig.tight_layout()
  io.atomic_write(path, lambda f: fig.savefig(f, dpi=100, format="png"))


#: flag (its args attribute) -> the tuple of ntga.victims._names holding its
#: valid values.
_NAMED_FLAGS = {"victim": "VICTIMS", "defense": "DEFENSES", "optimizer": "OPTIMIZERS",
                "schedule": "SCHEDULES", "augment": "AUGMENTS"}


def check_names(args: argparse.Namespace) -> None:
  """Checks --victim, --defense, --optimizer, --schedule and --augment.

  Raises:
    ConfigError: an unknown name; the one-line message lists the valid ones.

  Example:
    >>> check_names(argparse.Namespace(victim="resnet-18", defense="none",
    ...             optimizer=None, schedule=None, augment="auto"))
    Traceback (most recent call last):
    ntga.errors.ConfigError: unknown victim 'resnet-18'; choose one of fnn, ...
  """
  from ntga.victims import _names
  for flag, attr in _NAMED_FLAGS.items():
    value, valid = getattr(args, flag, None), getattr(_names, attr)
    if value is not None and value not in valid:
      raise ConfigError(f"unknown {flag} {value!r}; choose one of {', '.join(valid)}")


def config_from_args(args: argparse.Namespace):
  """Builds the :class:`ntga.victims.train.TrainConfig` the flags describe.

  Raises:
    ConfigError: an unknown victim, defense, optimizer, schedule or augment
      name, or a defense flag given for another defense (e.g. --jpeg-quality
      with --defense none).
  """
  check_names(args)
  from ntga.victims.train import TrainConfig
  given = {name: getattr(args, name) for name in _DEFENSE_FLAGS
           if getattr(args, name) is not None}
  return TrainConfig.from_flat(
      victim=args.victim, defense=args.defense, epochs=args.epochs,
      batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
      schedule=args.schedule, weight_decay=args.weight_decay, augment=args.augment,
      mixed_precision=args.mixed_precision, robust_eps=args.robust_eps, **given)


def run_evaluate(args: argparse.Namespace) -> int:
  """Trains the victim on --train, reports clean --test accuracy; returns 0.

  Raises:
    NTGAError: bad data, config or output directory (the CLI prints it, exit 2).
  """
  cfg = config_from_args(args).resolved()  # fail fast on bad settings
  _check_out(args.out)
  for name in ("limit_train", "limit_test"):
    if getattr(args, name) is not None and getattr(args, name) < 1:
      raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
  from ntga.distributed import check_distributed_flags, init_distributed
  check_distributed_flags(args)
  distributed = args.distributed
  if distributed:
    init_distributed(args)
  import jax
  from ntga import data
  from ntga.victims.train import train_and_evaluate
  # --limit-* take the fixed (seed 0) stratified order, the same rows as
  # `ntga poison --limit`, whatever the training --seed.
  train = data.load(args.train, "train", limit=args.limit_train,
                    data_dir=args.data_dir)
  if args.test is None:
    # --train's own test split: one that is really separate from the
    # training data, else a one-line error asking for --test.
    try:
      test = data.load(args.train, "test", limit=args.limit_test,
                       data_dir=args.data_dir, require_split=True)
    except DataError as e:
      raise DataError(f"{e}; pass --test SPEC with the clean test data") from e
  else:
    test = data.load(args.test, "test", limit=args.limit_test,
                     data_dir=args.data_dir)
  ckpt = os.path.join(args.out, VICTIM_CHECKPOINTS) if args.out else None
  metrics = train_and_evaluate(jax.random.key(args.seed), train, test, cfg,
                               progress=not args.no_progress, checkpoint_dir=ckpt)
  metrics.update(seed=args.seed, train_spec=args.train,
                 test_spec=args.test or args.train)
  if distributed:
    metrics["processes"] = jax.process_count()
    if jax.process_index() != 0:
      return 0  # process 0 reports and writes the output
  robust = ("" if cfg.robust_eps is None else
            f"robust (PGD-10, L_inf {cfg.robust_eps:.4g}) "
            f"{metrics['robust_test_accuracy']:.4f}, ")
  print(f"{cfg.victim} ({cfg.defense.name}): final clean test accuracy "
        f"{metrics['final_test_accuracy']:.4f}, peak {metrics['peak_test_accuracy']:.4f}"
        f" (epoch {metrics['peak_epoch']}/{cfg.epochs}), {robust}"
        f"{metrics['wall_clock_s']:.0f} s")
  if args.out:
    _make_out(args.out)
    plot_learning_curve(metrics, os.path.join(args.out, CURVE))
    io.write_json(os.path.join(args.out, "metrics.json"), metrics)
    shutil.rmtree(ckpt, ignore_errors=True)  # the run is complete
  return 0


def add_separability_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the ``separability`` flags to ``parser``."""
  parser.add_argument("--data", required=True, metavar="SPEC",
                      help="(poisoned) data spec, e.g. a poisoning run's OUT dir")
  parser.add_argument("--clean", metavar="SPEC",
                      help="the matching clean data: also fit the perturbations")
  parser.add_argument("--split", default="train")
  parser.add_argument("--limit", type=int, metavar="N")
  parser.add_argument("--data-dir", help="tfds data directory")
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--lr", type=float, default=1e-2)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", metavar="DIR", help="write separability.json here")


def run_separability(args: argparse.Namespace) -> int:
  """Fits linear models to the data (and perturbations); prints one line."""
  if args.epochs < 1 or args.lr <= 0:
    raise ConfigError("--epochs must be >= 1 and --lr > 0")
  if args.out:
    _check_out_folder(args.out, "separability.json")
  import jax
  from ntga import data
  from ntga.victims.separability import linear_separability
  ds = data.load(args.data, args.split, limit=args.limit, data_dir=args.data_dir)
  x_clean = None
  if args.clean:
    # The whole clean split: --data rows map to it through their index.
    clean = data.load(args.clean, args.split, data_dir=args.data_dir)
    if clean.x.shape[1:] != ds.x.shape[1:]:
      raise DataError(f"--clean images are {clean.x.shape[1:]} but --data images "
                      f"are {ds.x.shape[1:]}")
    if ds.index.max() >= len(clean.x):
      raise DataError(f"--data rows index up to {ds.index.max()} but --clean has "
                      f"{len(clean.x)} images")
    x_clean = clean.x[ds.index]
  res = linear_separability(jax.random.key(args.seed), ds.x, ds.y, ds.num_classes,
                            x_clean=x_clean, epochs=args.epochs, lr=args.lr)
  parts = [f"poisoned data {res['data_accuracy']:.4f}"]
  if x_clean is not None:
    parts += [f"perturbations {res['perturbation_accuracy']:.4f}",
              f"clean data {res['clean_accuracy']:.4f}"]
  print("linear-model training accuracy: " + ", ".join(parts))
  if args.out:
    _make_out(args.out)
    res.update(data=args.data, clean=args.clean, split=args.split, seed=args.seed,
               epochs=args.epochs, lr=args.lr, n=len(ds.x))
    io.write_json(os.path.join(args.out, "separability.json"), res)
  return 0


def main(argv: list[str] | None = None) -> int:
  """``python -m ntga.victims.cli {evaluate,separability} ...``."""
  parser = argparse.ArgumentParser(prog="python -m ntga.victims.cli")
  sub = parser.add_subparsers(dest="command", required=True)
  add_evaluate_arguments(sub.add_parser("evaluate", help="train a victim, report "
                                        "clean test accuracy"))
  add_separability_arguments(sub.add_parser("separability", help="linear "
                                            "separability of data / perturbations"))
  args = parser.parse_args(argv)
  try:
    return run_evaluate(args) if args.command == "evaluate" else run_separability(args)
  except NTGAError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  from ntga import hugepages  # an entry point: see ntga/hugepages.py
  hugepages.restart_with_hugepages()
  sys.exit(main())
