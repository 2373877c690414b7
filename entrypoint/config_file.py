"""Reading and writing `$CLUSTER_CODE_HOME/config.json`, the file cluster-rl shares with cluster-code.

cluster-rl owns only the `pufferlib` key (`enabled`, `modelPath`, `trainingConfig`, and the host
shim's `image` and `variant`); every other key is cluster-code's and survives each write unchanged.
Problems with the file are the user's to fix, so they surface as `CliError(..., ExitCode.USAGE)`
naming the file. Functions that check training settings import `rl.train` (and so torch) lazily.
"""

import json
import os
import stat
from pathlib import Path
from typing import Any

from entrypoint import home
from entrypoint.errors import CliError, ExitCode

SECTION = "pufferlib"
TRAINING_KEY = "trainingConfig"
# Keys cluster-code itself keeps in `trainingConfig` (its own setup writes them, and so does the host
# shim). They are cluster-code's settings, not trainer settings: kept in the file, not validated here.
CLUSTER_CODE_TRAINING_KEYS = ("episodes", "simulation")
NEW_FILE_MODE = 0o600  # cluster-code may keep credentials in this file
MAX_BYTES = 16 * 1024 * 1024


def read_text(path: Path) -> str | None:
    """The file's text (None when it does not exist), refusing anything but a bounded regular file.

    Opened non-blocking and checked with fstat, so a FIFO or a device at the path is refused
    instead of blocking every command.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}", ExitCode.USAGE) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CliError(f"{path}: not a regular file; config.json must be a plain JSON file", ExitCode.USAGE)
        if info.st_size > MAX_BYTES:
            raise CliError(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB; not a config file", ExitCode.USAGE)
        with os.fdopen(fd, "rb") as fh:
            fd = None
            data = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}", ExitCode.USAGE) from None
    finally:
        if fd is not None:
            os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path}: not valid JSON: the file is not UTF-8 text", ExitCode.USAGE) from None


def parse_config(text: str, path: Path) -> dict[str, Any]:
    """config.json's text as a dict; anything that is not a bounded, valid JSON object is a usage error."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"{path}: not valid JSON: {err}", ExitCode.USAGE) from None
    except RecursionError:
        raise CliError(f"{path}: not usable JSON: nested too deeply", ExitCode.USAGE) from None
    if not isinstance(config, dict):
        raise CliError(f"{path}: expected a JSON object at the top level", ExitCode.USAGE)
    return config


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The whole file as a dict: {} when it does not exist; anything unreadable is a usage error."""
    path = path or home.config_path()
    text = read_text(path)
    return {} if text is None else parse_config(text, path)


def pufferlib_section(config: dict[str, Any], path: Path | None = None) -> dict[str, Any]:
    """The `pufferlib` section ({} when absent); `path` only names the file in the error."""
    section = config.get(SECTION)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise CliError(f"{path or home.config_path()}: {SECTION}: expected a JSON object", ExitCode.USAGE)
    return section


def default_training_config() -> dict[str, Any]:
    """The trainer's defaults under cluster-code's camelCase `trainingConfig` names."""
    from rl.train_config import TRAINING_CONFIG_KEYS, TrainConfig

    defaults = TrainConfig()
    return {camel: getattr(defaults, snake) for camel, snake in TRAINING_CONFIG_KEYS.items()}


def check_training_config(training: Any, path: Path | None = None) -> dict[str, Any]:
    """The trainer settings of a `trainingConfig` value, checked by applying them to the defaults.

    Returns the camelCase keys the trainer understands (cluster-code's own keys left out); an
    unknown key or a bad value raises CliError naming the file and the key.
    """
    from rl.train_config import TrainConfig

    path = path or home.config_path()
    prefix = f"{path}: {SECTION}.{TRAINING_KEY}"
    if not isinstance(training, dict):
        raise CliError(f"{prefix}: expected a JSON object", ExitCode.USAGE)
    overrides = {k: v for k, v in training.items() if k not in CLUSTER_CODE_TRAINING_KEYS}
    try:
        TrainConfig().with_training_config(overrides)
    except (ValueError, TypeError) as err:
        raise CliError(f"{prefix}.{err}", ExitCode.USAGE) from None
    return overrides


def training_config_overrides(home_dir: Path | None = None) -> dict[str, Any]:
    """The checked camelCase trainer settings of config.json ({} when there are none).

    For `train`: pass the result to `TrainConfig.with_training_config`. Reads
    `<home_dir>/config.json`, by default the one under `$CLUSTER_CODE_HOME`.
    """
    path = (home_dir / "config.json") if home_dir is not None else home.config_path()
    section = pufferlib_section(read_config(path), path)
    if section.get(TRAINING_KEY) is None:
        return {}
    return check_training_config(section[TRAINING_KEY], path)


def _atomic_write(path: Path, data: bytes) -> Path:
    from rl.files import NotARegularFile, atomic_write  # importing `rl` loads the simulator: only when writing

    try:
        Path(os.path.realpath(path)).parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, data, mode=NEW_FILE_MODE, follow_symlinks=True)
    except NotARegularFile as err:
        raise CliError(f"cannot write {path}: {err}", ExitCode.USAGE) from None
    except OSError as err:
        raise CliError(f"cannot write {path}: {err.strerror or err}", ExitCode.STORAGE) from None


def write_section(section: dict[str, Any], path: Path | None = None) -> Path:
    """Set the `pufferlib` key of config.json to `section` and write the file atomically.

    Only the text of the `pufferlib` value changes: every other key keeps its exact bytes, so
    values Python would re-spell (1e400, escapes, key order, formatting) reach cluster-code as
    they were. The section itself is written as strict JSON (no NaN or Infinity). An existing
    file keeps its permission bits, a new one is private; a symlinked config.json is written
    through to its target.
    """
    path = path or home.config_path()
    try:
        value = json.dumps(section, indent=2, ensure_ascii=False, allow_nan=False)
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it as the \ud800 escape it was read from
        value = json.dumps(section, indent=2, ensure_ascii=True, allow_nan=False)
    except ValueError as err:
        raise CliError(f"{path}: {SECTION}: cannot be written as strict JSON ({err})", ExitCode.USAGE) from None
    value = value.replace("\n", "\n  ")
    text = read_text(path)
    if text is None or not text.strip():
        new_text = f'{{\n  "{SECTION}": {value}\n}}\n'
    else:
        parse_config(text, path)  # the file is still a JSON object
        new_text = _splice_top_level(text, SECTION, value)
    return _atomic_write(path, new_text.encode("utf-8"))


def _splice_top_level(text: str, key: str, value: str) -> str:
    """`text` (a JSON object) with the value of top-level `key` replaced by `value`, or the key
    added at the end; the rest of the text is left byte for byte."""
    decoder = json.JSONDecoder()
    ws = json.decoder.WHITESPACE
    index = ws.match(text, 0).end()
    if text[index : index + 1] != "{":
        raise ValueError("not a JSON object")
    index = ws.match(text, index + 1).end()
    last_value_end = None
    span = None
    while text[index : index + 1] != "}":
        if text[index : index + 1] == ",":
            index = ws.match(text, index + 1).end()
        name, index = json.decoder.scanstring(text, index + 1)
        index = ws.match(text, index).end() + 1  # past ":"
        index = ws.match(text, index).end()
        _, end = decoder.raw_decode(text, index)
        if name == key:
            span = (index, end)  # a duplicate key: JSON.parse and Python both use the last one
        last_value_end = end
        index = ws.match(text, end).end()
    if span is not None:
        return text[: span[0]] + value + text[span[1] :]
    if last_value_end is None:  # "{}": index is at the closing brace
        return text[:index] + f'\n  "{key}": {value}\n' + text[index:]
    return text[:last_value_end] + f',\n  "{key}": {value}' + text[last_value_end:]


def write_config(config: dict[str, Any], path: Path | None = None) -> Path:
    """Replace the whole file with `config` as strict JSON, atomically (see `write_section`)."""
    path = path or home.config_path()
    try:
        text = json.dumps(config, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        data = text.encode("utf-8")
    except (ValueError, UnicodeEncodeError) as err:
        raise CliError(f"{path}: cannot be written as strict JSON ({err})", ExitCode.USAGE) from None
    return _atomic_write(path, data)
