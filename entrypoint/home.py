"""Where cluster-rl keeps its files: everything it writes lives under `$CLUSTER_CODE_HOME`.

The home defaults to `~/.cluster-code`, the directory cluster-code itself uses; in the images it is
`/data` (a mounted volume). Each function reads the environment when called, so a test or a job can
point the home elsewhere without re-importing anything.
"""

import os
from pathlib import Path

HOME_ENV = "CLUSTER_CODE_HOME"
DEFAULT_HOME = "~/.cluster-code"
MODEL_FILE_NAME = "cluster_agent.pt"


def cluster_code_home() -> Path:
    """The absolute home directory; an empty `CLUSTER_CODE_HOME` counts as unset."""
    return Path(os.path.abspath(os.path.expanduser(os.environ.get(HOME_ENV) or DEFAULT_HOME)))


def models_dir() -> Path:
    return cluster_code_home() / "models"


def runs_dir() -> Path:
    """TensorBoard event files, one directory per training run."""
    return cluster_code_home() / "runs"


def checkpoints_dir() -> Path:
    """Trainer checkpoints, for resuming an interrupted run."""
    return cluster_code_home() / "checkpoints"


def config_path() -> Path:
    """cluster-code's config.json, shared with cluster-code: cluster-rl owns only its `pufferlib` key."""
    return cluster_code_home() / "config.json"


def default_model_path() -> Path:
    return models_dir() / MODEL_FILE_NAME
