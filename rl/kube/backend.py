"""`KubeBackend`: the real-cluster counterpart of the simulator (`ClusterEnv(simulation_mode=False)`)."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rl.actions import REMEDIATION_ACTIONS, ClusterAction, validate_action
from rl.kube.connection import KubeApi, load_configuration
from rl.kube.diagnostics import run_diagnostic
from rl.kube.errors import KubePermissionError, KubeRequestError
from rl.kube.observe import Snapshot, read_cluster
from rl.kube.policy import WritePolicy
from rl.kube.remediation import run_remediation
from rl.state import ClusterState


@dataclass
class ClusterObservation:
    state: ClusterState  # the same schema the simulator fills
    findings: list[str] = field(default_factory=list)  # evidence a human can act on, one problem each
    degraded: list[str] = field(default_factory=list)  # what could not be read (after retries), and the effect


class KubeBackend:
    """Observe a real cluster and act on it, read-only unless writes are explicitly allowed.

    `namespaces=None` observes every namespace. Remediations are server-side dry runs unless
    `allow_writes` is set and the object's namespace is in `write_namespaces` (see `WritePolicy`).
    Raises `KubeConfigError` for a bad kubeconfig or context and `KubeUnreachableError` when the
    API server cannot be reached (checked here, with `retries`).
    """

    def __init__(
        self,
        context: str | None = None,
        namespaces: list[str] | None = None,
        kubeconfig: str | None = None,
        allow_writes: bool = False,
        write_namespaces: list[str] | None = None,
        request_timeout: float = 10.0,
        retries: int = 3,
        *,
        backoff_seconds: float = 0.2,
        page_size: int = 500,
        event_window_seconds: float = 900.0,
        wait_seconds: float = 5.0,
    ):
        if request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive, got {request_timeout}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.namespaces = list(namespaces) if namespaces else None
        self.policy = WritePolicy(allow_writes, write_namespaces, self.namespaces)
        self.event_window = timedelta(seconds=event_window_seconds)
        self.wait_seconds = wait_seconds
        configuration = load_configuration(kubeconfig, context)
        self.api = KubeApi(configuration, request_timeout, retries, backoff_seconds, page_size)
        self.server_version = self.api.server_version()
        self._snapshot: Snapshot | None = None
        self.last_observe_seconds = 0.0
        self.last_observe_pages = 0

    def observe(self) -> ClusterObservation:
        started, pages_before = time.perf_counter(), self.api.pages_read
        reading = read_cluster(self.api, self.namespaces, datetime.now(UTC), self.event_window)
        self._snapshot = reading.snapshot
        self.last_observe_seconds = time.perf_counter() - started
        self.last_observe_pages = self.api.pages_read - pages_before
        return ClusterObservation(reading.state, reading.findings, reading.degraded)

    def act(self, action: ClusterAction) -> dict:
        """Run one action. A missing permission or a failed request is reported in the result
        (`success: False`); an unreachable server or rejected credentials raise KubeError."""
        action = validate_action(action)
        if self._snapshot is None:
            self.observe()
        try:
            if action in REMEDIATION_ACTIONS:
                result = run_remediation(action, self.api, self._snapshot, self.policy)
                if any(not c["dry_run"] for c in result["data"]["changes"]):
                    self._snapshot = None  # the cluster changed: choose the next target from a fresh look
                return result
            scope = self.namespaces or [None]
            return run_diagnostic(
                action,
                self.api,
                scope,
                self._snapshot,
                datetime.now(UTC),
                self.event_window,
                self.wait_seconds,
            )
        except KubePermissionError as err:
            forbidden = {"verb": err.verb, "resource": err.resource, "namespace": err.namespace}
            return {"success": False, "message": str(err), "data": {"forbidden": forbidden}}
        except KubeRequestError as err:
            return {"success": False, "message": str(err), "data": {"status": err.status}}

    def close(self) -> None:
        self.api.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
