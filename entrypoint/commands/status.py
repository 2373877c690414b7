"""`cluster-rl status`: versions, GPU, the home directory, the config section and the models found.

Versions come from package metadata, so printing them imports nothing heavy; the CUDA check and
reading model files need torch, imported only when they run. A broken config.json or model file
is shown in the report rather than stopping it; a broken config.json still makes the exit code 2.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from entrypoint import config_file, home
from entrypoint.choices import OutputFormat
from entrypoint.errors import CliError, ExitCode
from entrypoint.prog import prog

PACKAGES = ("cluster-code-rl", "torch", "pufferlib-core", "gymnasium")


def package_versions() -> dict[str, str | None]:
    """Installed versions by distribution name (None: not installed), without importing them."""
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def config_report() -> dict[str, Any]:
    """config.json's path, whether it exists, the `pufferlib` section, and what is wrong with it."""
    path = home.config_path()
    report: dict[str, Any] = {"path": str(path), "exists": path.is_file(), "pufferlib": None, "error": None}
    try:
        section = config_file.pufferlib_section(config_file.read_config(path), path)
        report["pufferlib"] = section or None
        training = section.get(config_file.TRAINING_KEY)
        if training is not None:
            config_file.check_training_config(training, path)
    except CliError as err:
        report["error"] = err.message
    return report


def find_models(directory: Path) -> list[dict[str, Any]]:
    """Every `*.pt` file under `directory` with its size, date and training steps (or its error)."""
    files = sorted(p for p in directory.rglob("*.pt") if p.is_file()) if directory.is_dir() else []
    if not files:
        return []
    from rl.model import ModelError, read_model_file

    models = []
    for path in files:
        stat = path.stat()
        entry: dict[str, Any] = {
            "path": str(path),
            "size_bytes": stat.st_size,
            "modified": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds"),
            "created": None,
            "global_step": None,
            "error": None,
        }
        try:
            meta = read_model_file(path)["metadata"]
            entry["created"] = meta.get("created")
            entry["global_step"] = meta.get("global_step")
        except ModelError as err:
            entry["error"] = str(err).removeprefix(f"{path}: ")
        models.append(entry)
    return models


def collect_status() -> dict[str, Any]:
    from entrypoint.gpu import gpu_status_dict

    root = home.cluster_code_home()
    return {
        "versions": package_versions(),
        "gpu": gpu_status_dict(),
        "home": {
            "path": str(root),
            "exists": root.is_dir(),
            "models_dir": str(home.models_dir()),
            "runs_dir": str(home.runs_dir()),
            "checkpoints_dir": str(home.checkpoints_dir()),
        },
        "config": config_report(),
        "models": find_models(home.models_dir()),
    }


def _size(size_bytes: int) -> str:
    if size_bytes < 1024:
        return f"{size_bytes} B"
    if size_bytes < 1024**2:
        return f"{size_bytes / 1024:.1f} KiB"
    return f"{size_bytes / 1024**2:.1f} MiB"


def format_status(status: dict[str, Any]) -> str:
    from entrypoint.gpu import format_gpu_status

    versions = status["versions"]
    lines = [f"{name:<16} {version or 'not installed'}" for name, version in versions.items()]
    lines.append("")
    lines.append(format_gpu_status(status["gpu"]))
    lines.append("")
    home_info = status["home"]
    lines.append(f"CLUSTER_CODE_HOME {home_info['path']}{'' if home_info['exists'] else ' (does not exist yet)'}")
    config = status["config"]
    if config["error"]:
        lines.append(f"config.json      error: {config['error']}")
    if not config["exists"]:
        lines.append(f"config.json      {config['path']} (none: run `{prog()} setup`)")
    elif config["pufferlib"] is None:
        lines.append(f"config.json      {config['path']} (no pufferlib section: run `{prog()} setup`)")
    else:
        section = config["pufferlib"]
        state = "enabled" if section.get("enabled") else "disabled"
        lines.append(f"config.json      {config['path']} (pufferlib section {state})")
        lines.extend("  " + line for line in json.dumps(section, indent=2).splitlines())
    models = status["models"]
    if not models:
        lines.append(f"models           none in {home_info['models_dir']} (run `{prog()} train`)")
    else:
        lines.append(f"models           {len(models)} in {home_info['models_dir']}")
        for model in models:
            if model["error"]:
                lines.append(f"  {model['path']}  {_size(model['size_bytes'])}  unreadable: {model['error']}")
                continue
            steps = model["global_step"]
            steps_text = f"{steps:,} steps" if isinstance(steps, int) else "steps unknown"
            date = model["created"] or model["modified"]
            lines.append(f"  {model['path']}  {_size(model['size_bytes'])}  {date}  {steps_text}")
    return "\n".join(lines)


def status(
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="text (for people) or json (one object, for scripts).")
    ] = OutputFormat.text,
) -> int:
    """Show versions, GPUs, the CLUSTER_CODE_HOME directory, config.json's pufferlib section and the models.

    Exits with 2 when config.json cannot be used (the report is printed first).
    """
    report = collect_status()
    if output == OutputFormat.json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(format_status(report))
    if report["config"]["error"]:
        raise CliError(report["config"]["error"], ExitCode.USAGE)
    return int(ExitCode.OK)
