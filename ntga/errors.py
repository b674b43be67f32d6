"""Error types shared by every part of ntga.

Every error a user can cause (bad data spec, unreadable file, eps out of range,
non-empty output directory, unknown option) is raised as a subclass of
:class:`NTGAError` with a one-line message. The CLI prints that message and exits
with status 2; library users can catch it.
"""


class NTGAError(Exception):
  """Base class of every user-facing ntga error (one-line message)."""


class DataError(NTGAError, ValueError):
  """A dataset spec, file or split that cannot be loaded."""


class ConfigError(NTGAError, ValueError):
  """An attack, victim or CLI setting that is unknown or out of range."""


class OutputError(NTGAError, OSError):
  """An output location that cannot be written (e.g. not empty)."""
