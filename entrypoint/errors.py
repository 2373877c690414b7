"""Exit codes and the one error type every command raises for a user-facing failure.

The codes are documented in README.md ("Exit codes"); keep the two in step.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # an unexpected internal error (a bug): reported in one line, details with -v
    USAGE = 2  # bad flags, bad job spec, bad config.json, refusing to prompt without a TTY
    MODEL = 3  # model file missing, truncated, foreign or incompatible
    STORAGE = 4  # S3 or local storage: missing bucket, access denied, unreachable endpoint, bad sha256
    CLUSTER = 5  # Kubernetes: bad kubeconfig, API server unreachable, permission denied
    DEVICE = 6  # --device cuda (or setup --cuda) with no usable GPU
    STOPPED = 75  # stopped by SIGTERM/SIGINT after writing a checkpoint; rerun with --resume


class CliError(Exception):
    """A failure the user can act on: printed as one line on stderr, exits with `code`."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILURE):
        super().__init__(message)
        self.message = message
        self.code = ExitCode(code)
