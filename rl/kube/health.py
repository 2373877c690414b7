"""Turning raw Kubernetes objects (JSON dicts) into small summaries, and summaries into findings.

Pure functions, no I/O. Pods are summarised page by page as they arrive, so a 5,000-pod cluster
is never held as full objects.

How a pod is counted (`ClusterState.pods_*`):
- phase Succeeded: not counted at all (finished Job pods are not workload health);
- phase Failed (including Evicted): failed;
- phase Unknown: unknown;
- a container waiting in CrashLoopBackOff / RunContainerError: failed, whatever the phase says,
  because the pod is not serving and restarting it is what RESTART_FAILED_PODS is for;
- a container waiting in ImagePullBackOff / ErrImagePull / InvalidImageName /
  CreateContainerConfigError, or an Unschedulable pod: pending (it never started);
- otherwise the phase: Pending is pending, Running is running (a pod running again after an
  OOMKill is running, with a finding).
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubernetes.utils import parse_quantity

CRASH_REASONS = frozenset({"CrashLoopBackOff", "RunContainerError"})
NOT_STARTED_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")
PVC_EVENT_REASONS = frozenset({"FailedMount", "FailedAttachVolume", "ProvisioningFailed", "FailedBinding"})
NETWORK_EVENT_PATTERN = re.compile(
    r"no such host|lookup \S+ on \S+:53|i/o timeout|network is unreachable|NetworkNotReady|"
    r"network plugin (?:is )?not ready|failed to set up sandbox container .* network|cni",
    re.IGNORECASE,
)
MAX_EVENT_FINDINGS = 10


@dataclass(slots=True)
class NodeSummary:
    name: str
    ready: bool
    schedulable: bool
    ready_reason: str = ""
    ready_message: str = ""
    pressure: list[str] = field(default_factory=list)  # e.g. ["MemoryPressure: kubelet has ..."]
    network_unavailable: str = ""  # the condition's reason when NetworkUnavailable is True
    cpu_allocatable: float = 0.0  # cores
    memory_allocatable: float = 0.0  # bytes


@dataclass(slots=True)
class PodSummary:
    namespace: str
    name: str
    bucket: str  # running, pending, failed, unknown, succeeded
    problem: str | None = None
    container: str | None = None  # the container the problem is about
    restarts: int = 0
    node: str = ""
    owner_kind: str = ""
    owner_name: str = ""
    is_dns: bool = False
    ready: bool = True


@dataclass(slots=True)
class DeploymentSummary:
    namespace: str
    name: str
    desired: int
    available: int
    problem: str | None = None

    @property
    def unavailable(self) -> int:
        return max(self.desired - self.available, 0)


def summarize_node(node: dict) -> NodeSummary:
    meta, spec, status = node.get("metadata", {}), node.get("spec", {}), node.get("status", {})
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    ready_condition = conditions.get("Ready", {})
    summary = NodeSummary(
        name=meta.get("name", "?"),
        ready=ready_condition.get("status") == "True",
        schedulable=not spec.get("unschedulable", False),
        ready_reason=ready_condition.get("reason", "no Ready condition"),
        ready_message=_one_line(ready_condition.get("message", "")),
    )
    for kind in PRESSURE_CONDITIONS:
        condition = conditions.get(kind)
        if condition and condition.get("status") == "True":
            summary.pressure.append(f"{kind}: {_one_line(condition.get('message', ''))}".rstrip(": "))
    network = conditions.get("NetworkUnavailable")
    if network and network.get("status") == "True":
        summary.network_unavailable = network.get("reason") or "NetworkUnavailable"
    allocatable = status.get("allocatable") or {}
    summary.cpu_allocatable = quantity(allocatable.get("cpu"))
    summary.memory_allocatable = quantity(allocatable.get("memory"))
    return summary


def summarize_pod(pod: dict) -> PodSummary:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    owner = next((o for o in meta.get("ownerReferences") or () if o.get("controller")), {})
    labels = meta.get("labels") or {}
    namespace = meta.get("namespace", "")
    summary = PodSummary(
        namespace=namespace,
        name=meta.get("name", "?"),
        bucket="unknown",
        node=spec.get("nodeName", ""),
        owner_kind=owner.get("kind", ""),
        owner_name=owner.get("name", ""),
        is_dns=namespace == "kube-system" and labels.get("k8s-app") == "kube-dns",
    )
    statuses = list(status.get("initContainerStatuses") or ()) + list(status.get("containerStatuses") or ())
    summary.restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    summary.ready = bool(statuses) and all(c.get("ready") for c in status.get("containerStatuses") or ())
    summary.bucket, summary.problem, summary.container = _classify_pod(status, statuses)
    return summary


def _classify_pod(status: dict, statuses: list[dict]) -> tuple[str, str | None, str | None]:
    phase = status.get("phase") or "Unknown"
    if phase == "Succeeded":
        return "succeeded", None, None
    if phase == "Failed":
        reason = status.get("reason") or "Failed"
        message = _one_line(status.get("message", ""))
        return "failed", f"{reason} ({message})" if message else reason, None
    if phase == "Unknown":
        return "unknown", "phase Unknown (its node stopped reporting)", None
    for container in statuses:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in CRASH_REASONS:
            last = (container.get("lastState") or {}).get("terminated") or {}
            cause = last.get("reason") or "exit code unknown"
            if last.get("reason") == "Error" and "exitCode" in last:
                cause = f"Error, exit code {last['exitCode']}"
            restarts = int(container.get("restartCount") or 0)
            return "failed", f"{reason} ({cause}, {restarts} restarts)", container.get("name")
        if reason in NOT_STARTED_REASONS:
            detail = _one_line(waiting.get("message") or container.get("image", ""))
            return "pending", f"{reason} ({detail})" if detail else reason, container.get("name")
    if phase == "Pending":
        for condition in status.get("conditions") or ():
            if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                return "pending", f"Unschedulable ({_one_line(condition.get('message', ''))})", None
        return "pending", None, None
    for container in statuses:
        last = (container.get("lastState") or {}).get("terminated") or {}
        if last.get("reason") == "OOMKilled":
            restarts = int(container.get("restartCount") or 0)
            return "running", f"running again after OOMKilled ({restarts} restarts)", container.get("name")
    return "running", None, None


def summarize_deployment(deployment: dict) -> DeploymentSummary:
    meta, spec, status = (
        deployment.get("metadata", {}),
        deployment.get("spec", {}),
        deployment.get("status", {}),
    )
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    available = int(status.get("availableReplicas") or 0)
    summary = DeploymentSummary(meta.get("namespace", ""), meta.get("name", "?"), desired, available)
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    bad = [c for c in (conditions.get("Available"), conditions.get("Progressing")) if c and c.get("status") == "False"]
    if available < desired or bad:
        detail = "; ".join(f"{c.get('reason')}: {_one_line(c.get('message', ''))}" for c in bad)
        summary.problem = f"{available}/{desired} replicas available" + (f" ({detail})" if detail else "")
    return summary


def event_time(event: dict) -> datetime | None:
    series = event.get("series") or {}
    for value in (
        event.get("lastTimestamp"),
        series.get("lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        if value:
            return parse_time(value)
    return None


def parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, AttributeError):
        return None


def quantity(value) -> float:
    """A Kubernetes quantity ("250m", "16Gi", "4") as a float; 0.0 when absent or malformed."""
    if value in (None, ""):
        return 0.0
    try:
        return float(parse_quantity(value))
    except (ValueError, TypeError):
        return 0.0


def event_object(event: dict) -> str:
    obj = event.get("involvedObject") or event.get("regarding") or {}
    kind = (obj.get("kind") or "object").lower()
    namespace = obj.get("namespace")
    name = obj.get("name", "?")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _one_line(text) -> str:
    return " ".join(str(text or "").split())
