"""`cluster-rl setup`: create the directories under CLUSTER_CODE_HOME and enable the pufferlib section.

Everything is checked (config.json, the settings it already has, the GPU for --cuda) before
anything is created or written, so a failed setup leaves the home as it was. Running it again
changes nothing: config.json is rewritten only when its content would change.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from entrypoint import config_file, home
from entrypoint.errors import CliError, ExitCode
from entrypoint.prog import prog

FORCE_HINT = "fix it in the file, or run `cluster-rl setup --force` to reset the pufferlib section"


def _cuda_summary() -> str:
    """One line naming the GPUs torch can use; DeviceError becomes exit code 6."""
    from entrypoint.gpu import DeviceError, resolve_device, torch_cuda_status

    torch_status = torch_cuda_status()
    try:
        resolve_device("cuda", torch_status=torch_status)
    except DeviceError as err:
        raise CliError(f"setup --cuda: {err}", ExitCode.DEVICE) from None
    names = ", ".join(torch_status.device_names)
    return f"torch {torch_status.torch_version} (CUDA {torch_status.cuda_version}) can use: {names}"


def merged_section(section: dict[str, Any], force: bool, path: Path) -> dict[str, Any]:
    """The section setup writes: enabled, with defaults filled in and the user's values kept.

    With `force`, modelPath and trainingConfig go back to their defaults; other keys of the
    section (the host shim's image and variant) are always kept.
    """
    model_path = str(home.default_model_path())
    training_defaults = config_file.default_training_config()
    merged = dict(section)
    merged["enabled"] = True
    if force:
        merged["modelPath"] = model_path
        merged[config_file.TRAINING_KEY] = training_defaults
        return merged
    current_model = merged.get("modelPath")
    if current_model is None:
        merged["modelPath"] = model_path
    elif not isinstance(current_model, str) or not current_model.strip():
        raise CliError(f"{path}: pufferlib.modelPath: expected a file path; {FORCE_HINT}", ExitCode.USAGE)
    training = merged.get(config_file.TRAINING_KEY)
    if training is None:
        merged[config_file.TRAINING_KEY] = training_defaults
    else:
        try:
            config_file.check_training_config(training, path)
        except CliError as err:
            raise CliError(f"{err.message}; {FORCE_HINT}", ExitCode.USAGE) from None
        training = dict(training)  # the user's keys keep their values and their order
        for key, value in training_defaults.items():
            training.setdefault(key, value)
        merged[config_file.TRAINING_KEY] = training
    return merged


def setup(
    cuda: Annotated[
        bool,
        typer.Option("--cuda", help="Also check that torch can train on an NVIDIA GPU; fail (exit 6) if it cannot."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Reset modelPath and trainingConfig in config.json to the defaults instead of keeping "
            "the values already there. Other settings in the file are never touched.",
        ),
    ] = False,
) -> int:
    """Create models/, runs/ and checkpoints/ under CLUSTER_CODE_HOME and enable cluster-rl in config.json.

    Writes the pufferlib section of config.json (enabled, modelPath, trainingConfig with the
    trainer's defaults), keeping every other key of the file and the values you already set.
    Safe to run again: a second run changes nothing.
    """
    path = home.config_path()
    config = config_file.read_config(path)
    try:
        section = config_file.pufferlib_section(config, path)
    except CliError as err:
        if not force:
            raise CliError(f"{err.message}; {FORCE_HINT}", ExitCode.USAGE) from None
        section = {}
    new_section = merged_section(section, force, path)
    cuda_line = _cuda_summary() if cuda else None

    for directory in (home.models_dir(), home.runs_dir(), home.checkpoints_dir()):
        if directory.is_dir():
            continue
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CliError(f"cannot create {directory}: {err.strerror or err}", ExitCode.STORAGE) from None
        typer.echo(f"created {directory}")

    if config.get(config_file.SECTION) == new_section and path.is_file():
        typer.echo(f"{path}: pufferlib section already set up, nothing changed")
    else:
        config_file.write_section(new_section, path)
        typer.echo(f"wrote the pufferlib section of {path} (other settings kept)")
    typer.echo(f"model file: {new_section['modelPath']}")
    if cuda_line:
        typer.echo(cuda_line)
    typer.echo(f"next: `{prog()} train`, then `{prog()} diagnose`")
    return int(ExitCode.OK)
