"""`cluster-rl`: train and run agents that diagnose and repair Kubernetes clusters.

Each command lives in its own module under `entrypoint.commands`; this module assembles the app
and turns `CliError` (and anything unexpected) into one line on stderr and a documented exit code.
"""

import os
import sys

import typer

from entrypoint.commands import diagnose, evaluate, remove, run, schema, setup, status, train
from entrypoint.errors import CliError, ExitCode

try:  # Typer >= 0.17 ships its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older Typer uses click itself
    from click import exceptions as click_exceptions

app = typer.Typer(
    name="cluster-rl",
    help="Train and run reinforcement-learning agents that diagnose and repair Kubernetes clusters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("status")(status.status)
app.command("setup")(setup.setup)
app.command("remove")(remove.remove)
app.command("train")(train.train)
app.command("diagnose")(diagnose.diagnose)
app.command("evaluate")(evaluate.evaluate)
app.command("run")(run.run)
app.command("schema")(schema.schema)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, map errors to exit codes, never show a traceback."""
    try:
        result = app(args=argv, prog_name="cluster-rl", standalone_mode=False)
    except CliError as err:
        print(f"cluster-rl: {err.message}", file=sys.stderr)
        return int(err.code)
    except KeyboardInterrupt:
        print("cluster-rl: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence against tracebacks
        if isinstance(err, typer.Exit):
            return err.exit_code
        if isinstance(err, click_exceptions.UsageError) and not isinstance(
            err, getattr(click_exceptions, "NoArgsIsHelpError", ())
        ):
            command = err.ctx.command_path if err.ctx is not None else "cluster-rl"
            message = " ".join(err.format_message().split())
            print(f"cluster-rl: {message} (see `{command} --help`)", file=sys.stderr)
            return err.exit_code
        if isinstance(err, click_exceptions.ClickException):
            err.show()
            return err.exit_code
        if isinstance(err, typer.Abort):
            print("cluster-rl: aborted", file=sys.stderr)
            return 1
        if os.environ.get("CLUSTER_RL_DEBUG"):
            raise
        print(
            f"cluster-rl: internal error: {type(err).__name__}: {err} (set CLUSTER_RL_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return int(ExitCode.FAILURE)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
