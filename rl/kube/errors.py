"""The errors the real-cluster backend raises. Every `str()` is one line a user can act on.

The CLI maps any `KubeError` to exit code 5 (`ExitCode.CLUSTER`).
"""


class KubeError(Exception):
    """Something about the cluster connection or a request to it went wrong."""


class KubeConfigError(KubeError):
    """The kubeconfig is missing or malformed, or names no usable context."""


class KubeUnreachableError(KubeError):
    """The API server could not be reached (connection refused, DNS failure, connect timeout)."""


class KubeAuthError(KubeError):
    """The API server rejected the credentials (HTTP 401)."""


class KubePermissionError(KubeError):
    """The credentials lack a permission (HTTP 403). Names the verb, resource and namespace."""

    def __init__(self, verb: str, resource: str, namespace: str | None, detail: str = ""):
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        where = f"in namespace {namespace!r}" if namespace else "at cluster scope"
        message = f"permission denied: cannot {verb} {resource} {where}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class KubeDeadlineError(KubeError):
    """The overall deadline of the command passed (diagnose's --deadline): no request is made after it."""


class KubeRequestError(KubeError):
    """A request failed after the bounded retries (5xx, timeout, or an unexpected status)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status
