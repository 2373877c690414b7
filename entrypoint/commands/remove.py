"""`cluster-rl remove`: disable the pufferlib section and delete training runs and checkpoints.

Models stay unless --purge. It asks first; without a terminal to ask on (a container, a CI job)
it refuses unless --yes is given, since deleting is not something to do by default.
"""

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from entrypoint import config_file, home
from entrypoint.errors import CliError, ExitCode


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _delete(path: Path) -> None:
    """Delete a directory tree; a symlink is removed itself, never followed out of the home."""
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    except OSError as err:
        raise CliError(f"cannot delete {path}: {err.strerror or err}", ExitCode.STORAGE) from None


def remove(
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the trained models in $CLUSTER_CODE_HOME/models.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Do not ask for confirmation (needed when stdin is not a terminal)."),
    ] = False,
) -> int:
    """Disable cluster-rl in config.json and delete training runs and checkpoints.

    Other settings in config.json are kept, and so are the models unless --purge. Asks before
    deleting anything; without a terminal it refuses (exit 2) unless --yes is given.
    """
    path = home.config_path()
    config = config_file.read_config(path)  # a broken file stops us before anything is deleted
    section = config_file.pufferlib_section(config, path)
    disable = config_file.SECTION in config and section.get("enabled") is not False
    doomed = [home.runs_dir(), home.checkpoints_dir()] + ([home.models_dir()] if purge else [])
    doomed = [d for d in doomed if d.exists() or d.is_symlink()]

    plan = ([f"disable the pufferlib section of {path}"] if disable else []) + [f"delete {d}" for d in doomed]
    if not plan:
        typer.echo("nothing to remove")
    else:
        if not yes:
            if not stdin_is_terminal():
                raise CliError(
                    f"remove: refusing to {' and '.join(plan)} without confirmation: stdin is not a "
                    "terminal; pass --yes to go ahead",
                    ExitCode.USAGE,
                )
            typer.echo("This will:\n" + "\n".join(f"  {step}" for step in plan))
            if not typer.confirm("Go ahead?", default=False):
                typer.echo("nothing removed")
                return int(ExitCode.OK)
        if disable:
            config_file.write_section({**section, "enabled": False}, path)
            typer.echo(f"disabled the pufferlib section of {path} (other settings kept)")
        for directory in doomed:
            _delete(directory)
            typer.echo(f"deleted {directory}")
    models = home.models_dir()
    if not purge and models.is_dir() and any(models.iterdir()):
        typer.echo(f"kept the models in {models} (--purge deletes them)")
    return int(ExitCode.OK)
