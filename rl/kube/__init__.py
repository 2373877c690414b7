"""The real-cluster backend: observe a Kubernetes cluster and act on it, read-only by default.

Imports the `kubernetes` client; the simulator never imports this package.
"""

from rl.kube.backend import ClusterObservation, KubeBackend
from rl.kube.errors import (
    KubeAuthError,
    KubeConfigError,
    KubeDeadlineError,
    KubeError,
    KubePermissionError,
    KubeRequestError,
    KubeUnreachableError,
)

__all__ = [
    "ClusterObservation",
    "KubeAuthError",
    "KubeBackend",
    "KubeConfigError",
    "KubeDeadlineError",
    "KubeError",
    "KubePermissionError",
    "KubeRequestError",
    "KubeUnreachableError",
]
