"""`cluster-rl schema`: print the JSON Schema of job spec files (for editors and linters)."""

import json
from typing import Annotated

import typer


def schema(
    indent: Annotated[int, typer.Option(min=0, max=8, help="Spaces per indentation level (0: one line).")] = 2,
) -> None:
    """Print the JSON Schema of job spec files (TrainJob, DiagnoseJob) to stdout."""
    from entrypoint.jobspec import job_json_schema

    text = json.dumps(job_json_schema(), indent=indent or None, sort_keys=False)
    typer.echo(text)
