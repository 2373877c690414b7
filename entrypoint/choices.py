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
