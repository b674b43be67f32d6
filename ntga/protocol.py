"""The one protocol every attack follows (NTGA and the poisoners of ``ntga.attacks``).

An attack is a pure function

  ``poison(key, x, y, config, context=RunContext()) -> np.ndarray``

of a PRNG key, uint8 NHWC images ``x``, integer labels ``y``, a frozen
keyword-only settings dataclass derived from :class:`AttackConfig` (defaults
from the method's paper), and a :class:`RunContext` that says how to run, not
what to compute. It returns uint8 images of ``x``'s shape in ``x``'s order.

What differs between attacks is carried by the config class, never by a test
of the attack's name:

* :meth:`AttackConfig.resolved` fills the defaults that depend on the data
  (e.g. NTGA's eps and GP time for greyscale vs colour images);
* :attr:`AttackConfig.secret_seed`: the seed is the attack's secret (CUDA's
  filters), so a manifest records only a fingerprint of it;
* :attr:`AttackConfig.multi_process`: ``poison`` shares its work among the
  processes of a ``jax.distributed`` run (NTGA's blocks).

Example:
  >>> cfg = NTGAConfig(block_size=256).resolved(x.shape[1:])
  >>> x_p = ntga.pgd.poison(key, x, y, cfg, RunContext(num_classes=10))
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Self

from ntga.errors import ConfigError

#: The paper values of the L_inf bound that several attacks default to:
#: 0.3 for greyscale images (MNIST) and 8/255 for colour ones (CIFAR-10).
GREY_EPS = 0.3
COLOUR_EPS = 8 / 255


def default_eps(image_shape: tuple[int, ...]) -> float:
  """The paper's L_inf bound for images of this shape (by channel count).

  Args:
    image_shape: ``(H, W, C)`` of one image; ``C == 1`` counts as greyscale.

  Returns:
    :data:`GREY_EPS` for one channel, :data:`COLOUR_EPS` otherwise.

  Example:
    >>> default_eps((28, 28, 1)), default_eps((32, 32, 3)) == 8 / 255
    (0.3, True)
  """
  return GREY_EPS if image_shape[-1] == 1 else COLOUR_EPS


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttackConfig:
  """Base of every attack's settings (a frozen keyword-only dataclass).

  Subclasses declare their settings as fields with the paper's defaults and
  may override the class attributes and :meth:`resolved`.

  Attributes:
    secret_seed: class attribute; True when the PRNG seed is the attack's
      secret, so its record publishes only a fingerprint of the key.
    multi_process: class attribute; True when ``poison`` divides its work
      among the processes of a ``jax.distributed`` run (the others would
      only repeat it).
    preset_names: class attribute; the names :meth:`preset` accepts
      (``"paper"`` first: the defaults).
  """

  secret_seed: ClassVar[bool] = False
  multi_process: ClassVar[bool] = False
  preset_names: ClassVar[tuple[str, ...]] = ("paper",)

  @classmethod
  def preset(cls, name: str = "paper", **overrides) -> Self:
    """The config of a named preset, with some fields overridden.

    ``"paper"`` is the class's defaults (the method's paper); a class may
    list more names in :attr:`preset_names`, each a classmethod of that name
    taking the same overrides (EM and REM have ``"cpu"``).

    Args:
      name: one of :attr:`preset_names`.
      **overrides: field values that replace the preset's.

    Returns:
      A validated config.

    Raises:
      ConfigError: an unknown preset name.

    Example:
      >>> EMConfig.preset("cpu", eps=4 / 255).eps == 4 / 255
      True
    """
    if name not in cls.preset_names:
      raise ConfigError(f"unknown preset {name!r} for {cls.__name__}; known: "
                        f"{', '.join(cls.preset_names)}")
    return cls(**overrides) if name == "paper" else getattr(cls, name)(**overrides)

  def resolved(self, image_shape: tuple[int, ...]) -> Self:
    """This config with every data-dependent default filled in.

    The base class has none and returns ``self``; an attack whose defaults
    depend on the images (``None`` fields) overrides it.

    Args:
      image_shape: ``(H, W, C)`` of one image.

    Returns:
      A config of the same class with no data-dependent ``None`` left.

    Example:
      >>> RandomConfig().resolved((8, 8, 1)).eps == 8 / 255
      True
    """
    del image_shape
    return self


@dataclasses.dataclass(frozen=True)
class RunContext:
  """How an attack runs; the same for every attack, never what it computes.

  Attributes:
    num_classes: the class count of the labels' space (default: ``max(y) +
      1``). Every attack rejects labels outside ``[0, num_classes)``; NTGA
      sizes its one-hot targets with it, while the attacks that build
      per-class tables from the labels present (CUDA, OPS, EM, REM, random
      noise) draw them for ``max(y) + 1`` classes whatever this is, so their
      output does not depend on it.
    checkpoint_dir: a folder for intermediate results so that a killed run
      resumes; only attacks that checkpoint use it (NTGA saves each finished
      block, EM and REM their state as they go), the others run in seconds
      and leave it untouched.
    progress: show a progress bar (NTGA per block, EM/REM per round or
      iteration, the latter only on a terminal); the one-pass attacks (CUDA,
      OPS, random noise) take seconds and show none.

  Example:
    >>> RunContext(num_classes=10, checkpoint_dir=Path("out/.checkpoints"))
  """

  num_classes: int | None = None
  checkpoint_dir: Path | None = None
  progress: bool = False
