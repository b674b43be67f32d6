"""Choice lists for the CLI, importable without JAX (keeps `ntga --help` fast).

:mod:`ntga.victims.models`, :mod:`ntga.victims.defenses` and :mod:`ntga.victims.config` use
these same tuples, so the CLI choices and the library cannot drift apart.
"""

VICTIMS: tuple[str, ...] = ("fnn", "fnn-relu", "cnn", "fast", "resnet18", "resnet34", "vgg16",
                            "densenet121", "wrn-34-10", "mobilenetv2", "vit-small")
DEFENSES: tuple[str, ...] = ("none", "cutout", "mixup", "cutmix", "at-linf", "at-l2",
                             "at-nfgsm", "jpeg", "grayscale", "bdr", "ortho")
AUGMENTS: tuple[str, ...] = ("auto", "none", "crop", "flip", "crop-flip")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "step", "triangle")
TTAS: tuple[str, ...] = ("none", "flip")
LOSSES: tuple[str, ...] = ("ce", "mse")
#: How the ortho defense trains its linear model ('sgd': its authors' code).
ORTHO_LINEAR: tuple[str, ...] = ("sgd", "adam")
#: Which images the ortho victim's input statistics come from.
ORTHO_FIT_ON: tuple[str, ...] = ("unprojected", "projected")
#: The ortho victim's augmentation ('authors': their strong augmentation).
ORTHO_AUGMENT: tuple[str, ...] = ("authors", "victim")
