"""Exit codes and the one error type every command raises for a user-facing failure.

The codes are documented in README.md ("Exit codes"); keep the two in step.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # an unexpected internal error (a bug): reported in one line, details with -v
    USAGE = 2  # bad flags, bad job spec, bad config.json, refusing to prompt without a TTY
    MODEL = 3  # model file missing, truncated, foreign, incompatible or not finite; training diverged
    STORAGE = 4  # S3 or local storage: missing bucket, access denied, unreachable endpoint, bad sha256
    CLUSTER = 5  # Kubernetes: bad kubeconfig, API server unreachable, not answering or answering garbage
    DEVICE = 6  # --device cuda (or setup --cuda) with no usable GPU
    STOPPED = 75  # stopped by SIGTERM/SIGINT after writing a checkpoint; rerun with --resume


def warn(message: str) -> None:
    """A warning for the user: one line on stderr; the command goes on."""
    import sys

    print(f"warning: {message}", file=sys.stderr)


class CliError(Exception):
    """A failure the user can act on: printed as one line on stderr, exits with `code`."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILURE):
        super().__init__(message)
        self.message = message
        self.code = ExitCode(code)


def unexpected_cluster_answer(server: str, err: Exception) -> CliError:
    """The error for cluster data our reader could not use (a field of the wrong type deep in an
    object): the API server's answer was not what a Kubernetes API server sends."""
    detail = " ".join(str(err).split())[:200]
    return CliError(
        f"API server {server} answered with data of an unexpected shape ({type(err).__name__}: {detail}); "
        "is this a Kubernetes API server?",
        ExitCode.CLUSTER,
    )
