"""`KubeBackend`: the real-cluster counterpart of the simulator (`ClusterEnv(simulation_mode=False)`).

One run never loops on the cluster:
- an observation is read once and reused until something may have changed it (a real write); reads
  act on it instead of listing again; WAIT gives applied writes `wait_seconds` to act before its
  fresh look, and neither waits nor looks again when the run changed nothing (read-only: dry runs);
- an identical write (same verb, object and body) is sent at most once per backend, dry run or not;
- a remediation answered as a dry run, refused (RBAC, a PodDisruptionBudget) or with nothing to do
  marks that action unavailable for that target (`unavailable_actions`), and a read already made on
  the current observation is unavailable until the observation changes;
- a remediation is withheld, sending nothing (not even a dry run), when its target carries intent
  (a maintenance cordon, an HPA or a GitOps tool that owns it, a PodDisruptionBudget a drain would
  break) or nothing it would fix is wrong (`rl.kube.guard`); the intent joins the observation's
  findings (informational) for the rest of the run.

Each result says in `data["result"]` what became of the action, in the simulator's terms
(`rl.agent_input.RESULTS`): "applied" (a read answered, a write went through), "refused" (the
cluster refused it, the remedy was withheld, or it found nothing to act on), "dry_run" (writes are not allowed, or not
in that namespace) or "unavailable" (a read that could not be answered: `top` without
metrics-server, a forbidden or failed read). CHECK_LOGS adds what the logs showed (the Log
analyzer's findings) to the observation's findings, until the next CHECK_LOGS or a change.
"""

import gc
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rl.actions import REMEDIATION_ACTIONS, ClusterAction, validate_action
from rl.findings import Finding
from rl.kube import guard, targets
from rl.kube.connection import ANSWER_DEADLINE_TIMEOUTS, KubeApi, load_configuration
from rl.kube.diagnostics import run_diagnostic
from rl.kube.errors import KubeDeadlineError, KubePermissionError, KubeRequestError
from rl.kube.health import Snapshot, summarize
from rl.kube.observe import Reading, read_cluster
from rl.kube.policy import WritePolicy
from rl.kube.remediation import run_remediation
from rl.state import ClusterState

# Diagnostic actions that make reads of their own (the others answer from the observation), and what they read.
OWN_READS = {
    ClusterAction.CHECK_LOGS: "pods/log",
    ClusterAction.DESCRIBE_UNHEALTHY: "pods",
    ClusterAction.TOP_PODS: "pods.metrics.k8s.io",
}


@dataclass
class ClusterObservation:
    state: ClusterState  # the same schema the simulator fills, derived from `findings`
    findings: list[Finding] = field(default_factory=list)  # the analyzers' findings, one problem each
    degraded: list[str] = field(default_factory=list)  # what could not be read (after retries), and the effect
    node_usage: tuple[float, float] | None = None  # the nodes' CPU and memory use, %; None: no metrics
    unknown: list[str] = field(default_factory=list)  # the entries of `degraded` that do not block resolution


class KubeBackend:
    """Observe a real cluster and act on it, read-only unless writes are explicitly allowed.

    `namespaces=None` observes every namespace. Remediations are server-side dry runs unless
    `allow_writes` is set and the object's namespace is in `write_namespaces` (see `WritePolicy`).
    Raises `KubeConfigError` for a bad kubeconfig or context and `KubeUnreachableError` when the
    API server cannot be reached (checked here, with `retries`) or its certificate is not trusted.
    `warn` is told, once each, what is unsafe about the connection (insecure-skip-tls-verify, a
    token over plain http:// off loopback); by default as a Python warning. `deadline` is a
    `time.monotonic()` instant: past it no request is made (KubeDeadlineError), and an observation
    under way ends with what it read, the rest named in `degraded`.
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
        warn: Callable[[str], None] | None = None,
        deadline: float | None = None,
    ):
        if request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive, got {request_timeout}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.namespaces = list(namespaces) if namespaces else None
        self.policy = WritePolicy(allow_writes, write_namespaces, self.namespaces)
        self.event_window = timedelta(seconds=event_window_seconds)
        self.wait_seconds = wait_seconds
        answer_deadline = request_timeout * ANSWER_DEADLINE_TIMEOUTS
        if deadline is not None:
            if time.monotonic() >= deadline:
                raise KubeDeadlineError("the deadline passed before the cluster was contacted")
            answer_deadline = min(answer_deadline, deadline - time.monotonic())
        configuration = load_configuration(kubeconfig, context, answer_deadline)
        self.api = KubeApi(configuration, request_timeout, retries, backoff_seconds, page_size, deadline)
        for warning in self.api.warnings:  # before the first request, which may be what fails
            (warn or _warn)(warning)
        self.server_version = self.api.server_version()
        self._reading: Reading | None = None
        self._snapshot: Snapshot | None = None
        self._reuse = False  # the last action changed nothing: the next observe() may reuse the reading
        self.observations = 0  # fresh reads of the cluster in this run
        self.sent_writes: set[str] = set()  # identical writes are sent once per run
        self.changed_cluster = False  # a write of this run was applied (not a dry run): WAIT lets it act
        self.blocked: dict[tuple[ClusterAction, str], str] = {}  # (remedy, target) -> why it is not retried
        self.refusals: list[dict] = []  # remedies the cluster refused, once each, with the permission needed
        self._reads_done: set[ClusterAction] = set()  # reads made on the current observation
        self.log_findings: list[Finding] = []  # what the last CHECK_LOGS on this observation found
        self.intent_findings: list[Finding] = []  # intent that withheld a remedy in this run, once each
        self.withheld: dict[tuple[ClusterAction, str], str] = {}  # (remedy, target) -> why nothing was sent
        self.last_observe_seconds = 0.0
        self.last_observe_pages = 0
        self.failed_reads: list[str] = []  # reads of diagnostic actions that failed in this run, once each

    @property
    def reading(self) -> Reading | None:
        return self._reading

    def observe(self) -> ClusterObservation:
        if self._reading is None or not self._reuse:
            started, pages_before = time.perf_counter(), self.api.pages_read
            # Decoding thousands of objects makes the cyclic GC rescan them over and over (half the
            # CPU of an observation); they hold no cycles, so collection waits until the read is done.
            collecting = gc.isenabled()
            gc.disable()
            try:
                self._reading = read_cluster(self.api, self.namespaces, datetime.now(UTC), self.event_window)
                self._snapshot = summarize(self._reading.inventory, self._reading.findings, self._reading.pod_buckets)
            finally:
                if collecting:
                    gc.enable()
            self._reads_done = set()
            self.log_findings = []
            self.observations += 1
            self.last_observe_seconds = time.perf_counter() - started
            self.last_observe_pages = self.api.pages_read - pages_before
        self._reuse = False
        reading = self._reading
        return ClusterObservation(
            reading.state,
            list(reading.findings) + self.log_findings + self.intent_findings,
            list(reading.degraded) + self.failed_reads,
            reading.node_usage,
            list(reading.unknown) + self.failed_reads,
        )

    def look_again(self) -> None:
        """Make the next `observe` read the cluster again (a new episode starts from a fresh look)."""
        self._reuse = False

    def act(self, action: ClusterAction) -> dict:
        """Run one action. A missing permission or a failed request is reported in the result
        (`success: False`); an unreachable server or rejected credentials raise KubeError."""
        action = validate_action(action)
        if self._reading is None:
            self.observe()
        # WAIT looks again only when this run changed the cluster; any other action leaves the
        # observation as it is unless its write went through (`_remedy`).
        self._reuse = action != ClusterAction.WAIT or not self.changed_cluster
        result = self._act(action)
        result.setdefault("data", {})["result"] = self._result_of(action, result)
        return result

    def _act(self, action: ClusterAction) -> dict:
        try:
            if action in REMEDIATION_ACTIONS:
                return self._remedy(action)
            self._reads_done.add(action)
            found = [] if action == ClusterAction.CHECK_LOGS else None
            result = run_diagnostic(
                action,
                self.api,
                self.namespaces or [None],
                self._reading,
                self._snapshot,
                # dry runs changed nothing to wait for; a wait never outlasts the deadline
                min(self.wait_seconds, self.api.remaining()) if self.changed_cluster else 0.0,
                found,
            )
            if found is not None and (result["success"] or not result["data"].get("failed")):
                self.log_findings = found
        except KubePermissionError as err:
            forbidden = {"verb": err.verb, "resource": err.resource, "namespace": err.namespace}
            result = {"success": False, "message": str(err), "data": {"forbidden": forbidden, "failed": True}}
        except KubeRequestError as err:
            result = {"success": False, "message": str(err), "data": {"status": err.status, "failed": True}}
        if action in OWN_READS:
            self._note_failed_read(action, result)
        return result

    def _note_failed_read(self, action: ClusterAction, result: dict) -> None:
        """A diagnostic read that failed (a 403 on pods/log, no metrics-server for TOP_PODS) goes
        into `degraded` for the rest of the run, once, as evidence that could not be shown."""
        data = result.get("data") or {}
        if not (data.get("failed") or data.get("available") is False):
            return
        note = f"{OWN_READS[action]} unreadable ({result['message']}): {action.name} could not show it"
        if note not in self.failed_reads:
            self.failed_reads.append(note)

    def _result_of(self, action: ClusterAction, result: dict) -> str:
        """What became of an action, in the simulator's terms (see the module docstring)."""
        data = result["data"]
        if action in REMEDIATION_ACTIONS:
            if not self.policy.allow_writes:
                return "dry_run"  # as on a read-only simulated cluster, whatever the target
            if any(not c["dry_run"] for c in data.get("changes", ())):
                return "applied"
            why = data.get("not_retried") or ""
            if why.startswith("answered as a dry run") or (data.get("changes") and not data.get("refused")):
                return "dry_run"  # its namespace is not in the write allowlist
            return "refused"
        if action == ClusterAction.WAIT:
            return "applied"
        if action == ClusterAction.TOP_NODES and self._reading.node_usage is None:
            return "unavailable"
        if action == ClusterAction.TOP_PODS and "cpu_percent" not in data:
            return "unavailable"
        if not result["success"] and data.get("failed"):
            return "unavailable"
        return "applied"

    def _remedy(self, action: ClusterAction) -> dict:
        target = targets.target_of(action, self._snapshot, self.policy)
        why = self.blocked.get((action, target or ""))
        if why is not None:
            return {
                "success": False,
                "message": f"not retried: {why}",
                "data": {"target": target, "changes": [], "refused": [], "skipped": [], "not_retried": why},
            }
        hold = guard.withheld(action, self._snapshot, self._reading.findings, self._reading.inventory, self.policy)
        if hold is not None:
            known = {f.key for f in self.intent_findings}
            self.intent_findings += [f for f in hold.findings if f.key not in known]
            self.blocked[(action, target or "")] = self.withheld[(action, target or "")] = hold.why
            return {
                "success": False,
                "message": hold.why,
                "data": {
                    "target": target,
                    "changes": [],
                    "refused": [],
                    "skipped": [],
                    "withheld": hold.why,
                    "intent": [f.to_dict() for f in hold.findings],
                },
            }
        result = run_remediation(action, self.api, self._snapshot, self.policy, self.sent_writes)
        data = result["data"]
        changes, refused = data["changes"], data["refused"]
        if any(not c["dry_run"] for c in changes):
            self.changed_cluster = True
            self._reuse = False  # the cluster changed: choose the next target from a fresh look
            return result
        if refused:
            why = "refused: " + refused[0]["reason"]
            for entry in refused:
                self.refusals.append({"action": action.name, "target": target, **entry})
        elif changes:
            why = "answered as a dry run (" + "; ".join(sorted({c["why_dry_run"] for c in changes})) + ")"
        else:
            why = result["message"]
        self.blocked[(action, target or "")] = why
        return result

    def unavailable_actions(self) -> dict[ClusterAction, str]:
        """Actions that cannot tell or change anything now, and why: remedies already refused,
        dry-run or with nothing to do for their current target, and reads already made on the
        current observation. WAIT is always available."""
        if self._snapshot is None:
            return {}
        unavailable = {a: "already read on this observation" for a in self._reads_done}
        for action in REMEDIATION_ACTIONS:
            target = targets.target_of(action, self._snapshot, self.policy)
            why = "nothing to act on" if target is None else self.blocked.get((action, target))
            if why is not None:
                unavailable[action] = why
        return unavailable

    def close(self) -> None:
        self.api.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)
