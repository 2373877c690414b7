"""Small summaries of nodes, pods and deployments, built from one observation's objects and findings.

Remediation targets (`rl.kube.targets`) and diagnostic results are chosen from these; they carry no
judgement of their own: whether a pod is failed or a deployment unavailable comes from the
analyzers' findings (`rl.kube.observe.state_from_findings`).
"""

from dataclasses import dataclass, field

from rl.findings import INTENT_KEYS, Finding
from rl.kube.analyzers.dns import is_dns_pod
from rl.kube.analyzers.node import PRESSURE
from rl.kube.intent import deployment_intent, hpas_by_target
from rl.kube.inventory import (
    Inventory,
    conditions_of,
    controller_of,
    name_of,
    namespace_of,
    quantity,
)


@dataclass(slots=True)
class NodeSummary:
    name: str
    ready: bool
    schedulable: bool
    ready_reason: str = ""
    pressure: list[str] = field(default_factory=list)  # e.g. ["MemoryPressure"]
    network_unavailable: bool = False
    cpu_allocatable: float = 0.0  # cores
    memory_allocatable: float = 0.0  # bytes
    intent: tuple[Finding, ...] = ()  # why it was taken out on purpose (PlannedMaintenance), if it was


@dataclass(slots=True)
class PodSummary:
    namespace: str
    name: str
    bucket: str  # running, pending, failed, unknown, succeeded
    problem: str | None = None  # the first finding's message
    reason: str | None = None  # the first finding's reason
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
    intent: tuple[Finding, ...] = ()  # who owns its replicas or its spec besides us (`rl.kube.intent`)

    @property
    def unavailable(self) -> int:
        return max(self.desired - self.available, 0)


@dataclass
class Snapshot:
    """The summaries of the last observation; remediation targets are chosen from it."""

    nodes: list[NodeSummary] = field(default_factory=list)
    pods: list[PodSummary] = field(default_factory=list)
    deployments: list[DeploymentSummary] = field(default_factory=list)
    dns_pods: list[PodSummary] = field(default_factory=list)


def summarize(inventory: Inventory, findings: list[Finding], buckets: dict) -> Snapshot:
    by_object: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        by_object.setdefault((f.kind, f.namespace, f.name), []).append(f)
    snapshot = Snapshot()
    for node in inventory.items("nodes"):
        name = name_of(node)
        found = by_object.get(("Node", "", name), ())
        reasons = {f.reason for f in found}
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        ready = conditions_of(node).get("Ready") or {}
        snapshot.nodes.append(
            NodeSummary(
                name=name,
                ready="NotReady" not in reasons,
                schedulable=not reasons & {"Cordoned", "PlannedMaintenance"},
                ready_reason=ready.get("reason", "no Ready condition"),
                pressure=[p for p in PRESSURE if p in reasons],
                network_unavailable="NetworkUnavailable" in reasons,
                cpu_allocatable=quantity(allocatable.get("cpu")),
                memory_allocatable=quantity(allocatable.get("memory")),
                intent=tuple(f for f in found if (f.kind, f.reason) in INTENT_KEYS),
            )
        )
    for pod in inventory.items("pods"):
        key = (namespace_of(pod), name_of(pod))
        snapshot.pods.append(_pod(pod, buckets.get(key, "unknown"), by_object.get(("Pod", *key), ())))
    if inventory.lists.get("dns_pods") is not inventory.lists.get("pods"):
        for pod in inventory.items("dns_pods"):
            key = (namespace_of(pod), name_of(pod))
            snapshot.dns_pods.append(_pod(pod, "running", by_object.get(("Pod", *key), ())))
    hpas = hpas_by_target(inventory)
    for deployment in inventory.items("deployments"):
        spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
        found = by_object.get(("Deployment", namespace_of(deployment), name_of(deployment)), ())
        snapshot.deployments.append(
            DeploymentSummary(
                namespace_of(deployment),
                name_of(deployment),
                int(spec["replicas"]) if spec.get("replicas") is not None else 1,
                int(status.get("availableReplicas") or 0),
                found[0].message if found else None,
                deployment_intent(deployment, hpas),
            )
        )
    return snapshot


def _pod(pod: dict, bucket: str, found) -> PodSummary:
    status = pod.get("status") or {}
    statuses = list(status.get("initContainerStatuses") or ()) + list(status.get("containerStatuses") or ())
    owner = controller_of(pod) or ("", "")
    unready = next((c for c in statuses if not c.get("ready") and "terminated" not in (c.get("state") or {})), None)
    restarted = max(statuses, key=lambda c: int(c.get("restartCount") or 0), default=None)
    container = (unready or restarted or {}).get("name")
    return PodSummary(
        namespace=namespace_of(pod),
        name=name_of(pod),
        bucket=bucket,
        problem=found[0].message if found else None,
        reason=found[0].reason if found else None,
        container=container,
        restarts=sum(int(c.get("restartCount") or 0) for c in statuses),
        node=(pod.get("spec") or {}).get("nodeName", ""),
        owner_kind=owner[0],
        owner_name=owner[1],
        is_dns=is_dns_pod(pod),
        ready=bool(statuses) and all(c.get("ready") for c in status.get("containerStatuses") or ()),
    )
