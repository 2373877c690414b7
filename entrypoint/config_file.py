"""Reading and writing `$CLUSTER_CODE_HOME/config.json`, the file cluster-rl shares with cluster-code.

cluster-rl owns only the `pufferlib` key (`enabled`, `modelPath`, `trainingConfig`, and the host
shim's `image` and `variant`); every other key is cluster-code's and survives each write unchanged.
Problems with the file are the user's to fix, so they surface as `CliError(..., ExitCode.USAGE)`
naming the file. Functions that check training settings import `rl.train` (and so torch) lazily.
"""

import json
import os
import tempfile
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


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The whole file as a dict: {} when it does not exist; anything unreadable is a usage error."""
    path = path or home.config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}", ExitCode.USAGE) from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not valid JSON: the file is not UTF-8 text", ExitCode.USAGE) from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"{path}: not valid JSON: {err}", ExitCode.USAGE) from None
    if not isinstance(config, dict):
        raise CliError(f"{path}: expected a JSON object at the top level", ExitCode.USAGE)
    return config


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
    from rl.train import TRAINING_CONFIG_KEYS, TrainConfig

    defaults = TrainConfig()
    return {camel: getattr(defaults, snake) for camel, snake in TRAINING_CONFIG_KEYS.items()}


def check_training_config(training: Any, path: Path | None = None) -> dict[str, Any]:
    """The trainer settings of a `trainingConfig` value, checked by applying them to the defaults.

    Returns the camelCase keys the trainer understands (cluster-code's own keys left out); an
    unknown key or a bad value raises CliError naming the file and the key.
    """
    from rl.train import TrainConfig

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


def write_config(config: dict[str, Any], path: Path | None = None) -> Path:
    """Replace the file atomically: a temp file in the same directory, fsync, then rename.

    An existing file keeps its permission bits; a new one is private to the user. A symlinked
    config.json is written through to its target.
    """
    path = Path(os.path.realpath(path or home.config_path()))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = NEW_FILE_MODE
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise CliError(f"cannot write {path}: {err.strerror or err}", ExitCode.STORAGE) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise CliError(f"cannot write {path}: {err.strerror or err}", ExitCode.STORAGE) from None
        raise
    return path
