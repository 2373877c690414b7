"""`cluster-rl run FILE`: run a job spec, a TrainJob through `train` or a DiagnoseJob through `diagnose`."""

from typing import Annotated

import typer

from entrypoint.errors import CliError, ExitCode


def run(
    file: Annotated[
        str | None,
        typer.Argument(
            help="Job spec (YAML); '-' reads stdin. Default: the file named by $CLUSTER_RL_JOB "
            "(e.g. a mounted ConfigMap).",
            show_default=False,
        ),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Only validate the spec and print what it would run.")] = False,
) -> int:
    """Run the job a spec file describes (kind TrainJob or DiagnoseJob). A bad spec exits with 2."""
    from entrypoint.jobspec import SpecError, load_job

    try:
        job = load_job(file)
    except SpecError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if check:
        typer.echo(f"{job.kind} {job.metadata.name}: valid ({job.spec.mode})")
        return int(ExitCode.OK)
    if job.kind == "TrainJob":
        from entrypoint.commands.train import run_train_job

        result = run_train_job(job)
    else:
        from entrypoint.commands.diagnose import run_diagnose_job

        result = run_diagnose_job(job)
    return int(result) if isinstance(result, int) else int(ExitCode.OK)
