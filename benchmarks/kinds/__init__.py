"""The benchmark kinds, one module each, registered in :data:`MODULES`.

A config's ``kind`` names the module that runs it, renders its records on
benchmarks/RESULTS.md and checks them. A kind module defines

* ``KIND``: the config ``kind`` it runs; ``RECORD_KIND`` (optional, default
  ``KIND``): the ``kind`` of the records it writes;
* ``GROUP``: the part of the page its sections go to (:data:`GROUPS`; a
  config may name another with a ``group`` key). A section's heading is the
  first line of its config module's docstring (or the config's ``title``);
* ``run(config) -> metrics``: the measurement, recorded by
  :func:`benchmarks._harness.run_config` as one record per config; or
  ``execute(name, config, options) -> Outcome`` for a kind that records a
  config in parts (the ``table`` kind: one record per cell);
* ``render(name, config, records) -> (markdown lines, plots)``: the section
  of one config (its records, oldest first; no lines for no section);
* ``check(record)``: raises :class:`ntga.errors.DataError` where a record's
  numbers contradict each other or its config.

Adding a kind is its module here (and a line in :data:`MODULES`), its config
in ``benchmarks/configs/`` and its smoke test.

Example:
  >>> from benchmarks import kinds
  >>> kinds.get("attack_speed").GROUP
  'speed'
"""

from __future__ import annotations

from types import ModuleType

from benchmarks.kinds import (attack_speed, attacks_victims, cnn_kernel_speed,
                              cnn_tile_sweep,
                              command, evaluate_command, mlp_poison,
                              ntga_block_sweep, ntga_devices,
                              ntga_predictor_sweep, ntga_step_speed,
                              ntga_variant_speed, poison_eval,
                              poison_vs_plain, table, victim_speed)
from ntga.errors import ConfigError, DataError

MODULES: tuple[ModuleType, ...] = (
    table, poison_eval, attacks_victims, mlp_poison, evaluate_command,
    attack_speed, ntga_step_speed, ntga_variant_speed, poison_vs_plain,
    ntga_block_sweep, ntga_predictor_sweep, ntga_devices, cnn_kernel_speed,
    cnn_tile_sweep, victim_speed, command)

#: group -> (its heading on the page and the paragraph that opens it), or
#: None for sections that stand at the top level (the tables).
GROUPS: dict[str, tuple[str, str | None] | None] = {
    "tables": None,
    "speed": ("Speed and memory", None),
    "other": ("Other measurements",
              "Settings differ from the tables above and some use one seed, as "
              "each section says; where they overlap, the tables (3 seeds each) "
              "supersede them."),
}

REGISTRY: dict[str, ModuleType] = {m.KIND: m for m in MODULES}


def record_kind(module: ModuleType) -> str:
  """The ``kind`` of the records a kind module writes."""
  return getattr(module, "RECORD_KIND", module.KIND)


def get(kind: str) -> ModuleType:
  """The module of config kind ``kind``.

  Raises:
    ConfigError: no such kind.
  """
  if kind not in REGISTRY:
    raise ConfigError(f"unknown benchmark kind {kind!r}; known kinds: "
                      f"{', '.join(sorted(REGISTRY))}")
  return REGISTRY[kind]


def for_record(kind: str) -> ModuleType:
  """The module that renders records of kind ``kind``.

  Raises:
    DataError: no kind module writes such records.
  """
  for m in MODULES:
    if record_kind(m) == kind:
      return m
  raise DataError(f"kind {kind!r} has no report section; known kinds: "
                  f"{', '.join(sorted(record_kind(m) for m in MODULES))}")
