"""The fixed choices of command-line options, as Enums so Typer lists and checks them."""

from enum import Enum


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class PolicyName(str, Enum):
    model = "model"
    expert = "expert"
    random = "random"


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class Promote(str, Enum):
    """Whether a finished training run's model becomes the default (`train --promote`, job spec `promote`)."""

    always = "always"
    if_better = "if-better"  # not worse than the current default on the same clusters; the first model always
    never = "never"


DEFAULT_PROMOTE = Promote.if_better
