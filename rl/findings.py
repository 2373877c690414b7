"""Findings: the analyzers' vocabulary, which read shows each finding, and the one encoder of them.

A `Finding` is one problem on one object, as structured data (k8sgpt's shape: kind, name, reason,
parent). The real-cluster analyzers (`rl.kube.analyzers`) produce them from Kubernetes objects; the
simulator produces the same (kind, reason) keys from its faults (`rl.faults`). Nothing downstream
parses a finding's text: `kind` and `reason` are the keys.

`REASONS` is the vocabulary, declared here once: every analyzer takes its `REASONS` from it, and
the simulator can only emit what is in it. `FINDING_KEYS` is its flat, ordered form, one key per
(kind, reason); the agent sees the keys the simulator can produce (`rl.agent_input.INPUT_KEYS`),
each as how many objects showed it (`encode_count`). Warning-event findings keep the kind of the
object they are about on a real cluster; as keys they are counted under kind "Event" by reason
(`vector_key`).

Staged reads: each diagnostic action shows only the findings `kubectl` would show for it
(`SHOWN_BY`): `get nodes` the node conditions and cordons, `get pods` what the STATUS column says,
`describe` of the unhealthy pods everything about them (scheduling, probes, volumes), the workload
read (`get deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs,services,ingresses,hpa,pdb`)
the controllers and their services, `get events` what only events carry, `logs` what the failing
containers printed, `top` whether metrics can be read at all, `get resourcequotas` the quotas.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np
from numba import njit

from rl.actions import NUM_ACTIONS, ClusterAction

A = ClusterAction

CRITICAL = "critical"  # the workload or node is down or cannot start
WARNING = "warning"  # degraded, or will fail under a likely event (a drain, a restart)
INFO = "info"  # a configuration or an intent a human set, with no outage now
SEVERITIES = (CRITICAL, WARNING, INFO)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # the Kubernetes kind of the object ("Pod", "Service"), or "ClusterDNS", "Log", "Metrics"
    namespace: str  # "" for cluster-scoped objects
    name: str
    reason: str  # a short CamelCase key, one of REASONS[kind]
    message: str  # one line a human reads
    evidence: tuple[str, ...] = ()  # the status fields or events the finding rests on
    severity: str = WARNING
    parent: str = ""  # the top controller, "Deployment/cart" (k8sgpt's parentObject); "" if none
    since: str | None = None  # ISO time the problem started, when the API says so

    @property
    def ref(self) -> str:
        """`Kind/namespace/name` (or `Kind/name` when cluster-scoped): the object's identity."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    @property
    def object_name(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.namespace, self.name, self.reason)

    def __str__(self) -> str:
        return f"{self.kind} {self.object_name} {self.reason}: {self.message}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["evidence"] = list(self.evidence)
        return data


# Pod reasons in the order the pod analyzer checks them. The first group is what the STATUS column of
# `kubectl get pods` says; the second needs `kubectl describe` (conditions, events).
POD_STATUS_REASONS = (
    "CrashLoopBackOff",
    "OOMKilled",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "ImageInspectError",
    "CreateContainerConfigError",
    "CreateContainerError",
    "PreCreateHookError",
    "PreStartHookError",
    "RunContainerError",
    "ContainerExited",
    "SchedulingGated",
    "Evicted",
    "Failed",
    "PhaseUnknown",
    "TerminatingOnDeadNode",
    "TerminatingStuck",
)
POD_DESCRIBE_REASONS = (
    "FailedMount",
    "FailedAttachVolume",
    "FailedCreatePodSandBox",
    "Unschedulable",
    "UnboundVolume",
    "ReadinessProbeFailed",
    "NotReady",
)
EVENT_REASONS = ("WarningEvent", "DNSResolutionFailed", "NetworkError")

# The vocabulary: every reason each kind of finding can have.
REASONS: dict[str, tuple[str, ...]] = {
    "Node": (
        "NotReady",
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "NetworkUnavailable",
        "NodeCondition",
        "Cordoned",
        "PlannedMaintenance",
    ),
    "Pod": POD_STATUS_REASONS + POD_DESCRIBE_REASONS,
    "ClusterDNS": ("DNSDown", "DNSDegraded"),
    "Deployment": ("ReplicasUnavailable", "ProgressDeadlineExceeded", "ReplicaFailure"),
    "ReplicaSet": ("FailedCreate",),
    "StatefulSet": ("ServiceNotFound", "StorageClassNotFound", "ReplicasUnavailable"),
    "DaemonSet": ("PodsNotReady", "Misscheduled", "ImagePullSecretNotFound"),
    "Job": ("JobFailed", "PodFailures", "Suspended"),
    "CronJob": ("Suspended", "InvalidSchedule", "NegativeStartingDeadline"),
    "Service": ("NoMatchingPods", "NoReadyEndpoints", "NotReadyEndpoints"),
    "Ingress": ("NoIngressClass", "IngressClassNotFound", "BackendServiceNotFound", "TLSSecretNotFound"),
    "PersistentVolumeClaim": ("Pending", "Lost"),
    "HorizontalPodAutoscaler": (
        "AbleToScale",
        "ScalingActive",
        "ScalingLimited",
        "ScaleTargetNotFound",
        "NoResourceRequests",
    ),
    "PodDisruptionBudget": ("DisruptionsNotAllowed",),
    "NetworkPolicy": ("SelectsAllPods", "NoMatchingPods"),
    "ResourceQuota": ("QuotaExceeded",),
    # What the logs of failing containers say (`CHECK_LOGS`), by pattern.
    "Log": ("DNSResolutionFailed", "ConnectionRefused", "Overloaded", "ConfigurationError", "Panic"),
    # metrics.k8s.io cannot be read (no metrics-server): usage is unknown, not zero.
    "Metrics": ("Unavailable",),
    # Warning events about objects that have no finding of their own (any kind, counted as "Event").
    "Event": EVENT_REASONS,
}
# Intent a person or a controller set on an object a remedy would write (`rl.kube.intent`): a
# maintenance cordon, replicas an HPA owns, a GitOps tool's object, a budget a drain would break.
# Informational (severity INFO), never a fault: a remedy that would go against one is withheld and
# the report names the next step for a human. Each kind's intent reasons follow its other reasons.
INTENT_REASONS: dict[str, tuple[str, ...]] = {
    "Node": ("PlannedMaintenance",),
    "Deployment": ("ReplicasOwnedByHPA", "ManagedByArgoCD", "ManagedByFlux"),
    "PodDisruptionBudget": ("BlocksDrain",),
}
for _kind, _reasons in INTENT_REASONS.items():
    REASONS[_kind] += tuple(r for r in _reasons if r not in REASONS[_kind])
INTENT_KEYS = frozenset((kind, reason) for kind, reasons in INTENT_REASONS.items() for reason in reasons)

# The reads that show each kind's findings; the exceptions below go by (kind, reason).
_WORKLOADS = (A.GET_DEPLOYMENTS,)
_SHOWN_BY_KIND = {
    "Node": (A.GET_NODES,),
    "Pod": (A.GET_PODS, A.DESCRIBE_UNHEALTHY),
    "ClusterDNS": (A.GET_PODS, A.DESCRIBE_UNHEALTHY),
    "Deployment": _WORKLOADS,
    "ReplicaSet": (A.GET_DEPLOYMENTS, A.GET_EVENTS),
    "StatefulSet": _WORKLOADS,
    "DaemonSet": _WORKLOADS,
    "Job": _WORKLOADS,
    "CronJob": _WORKLOADS,
    "Service": _WORKLOADS,
    "Ingress": _WORKLOADS,
    "PersistentVolumeClaim": (A.DESCRIBE_UNHEALTHY, A.GET_EVENTS),
    "HorizontalPodAutoscaler": _WORKLOADS,
    "PodDisruptionBudget": _WORKLOADS,
    "NetworkPolicy": _WORKLOADS,
    "ResourceQuota": (A.GET_RESOURCE_QUOTAS,),
    "Log": (A.CHECK_LOGS,),
    "Metrics": (A.TOP_NODES, A.TOP_PODS),
    "Event": (A.GET_EVENTS,),
}
# Pod findings that rest on the pod's events or conditions, not its STATUS column: `describe` shows
# them, and `get events` shows the events they rest on.
_SHOWN_BY_KEY = {("Pod", reason): (A.DESCRIBE_UNHEALTHY, A.GET_EVENTS) for reason in POD_DESCRIBE_REASONS}

FINDING_KEYS: tuple[tuple[str, str], ...] = tuple(
    (kind, reason) for kind, reasons in REASONS.items() for reason in reasons
)
NUM_FINDING_KEYS = len(FINDING_KEYS)
KEY_INDEX = {key: k for k, key in enumerate(FINDING_KEYS)}
SHOWN_BY: dict[tuple[str, str], tuple[ClusterAction, ...]] = {
    key: _SHOWN_BY_KEY.get(key, _SHOWN_BY_KIND[key[0]]) for key in FINDING_KEYS
}
# SHOWS[a, k]: read a shows finding key k (the compiled simulator and the real backend read this).
SHOWS = np.zeros((NUM_ACTIONS, NUM_FINDING_KEYS), dtype=np.bool_)
for _key, _reads in SHOWN_BY.items():
    for _read in _reads:
        SHOWS[_read, KEY_INDEX[_key]] = True

# Largest count the encoding tells apart from a larger one (objects with one finding).
FINDING_SCALE = 1000.0
_INVERSE_LOG_FINDINGS = 1.0 / math.log1p(FINDING_SCALE)
FIRST_FINDING = 0.1  # one object with a finding moves its entry this far from none


@njit(cache=True, inline="always", error_model="numpy", fastmath=True)
def encode_count(count):
    """A finding count as one vector entry: 0 for none, at least 0.1 for one, 1 at FINDING_SCALE."""
    if count <= 0.0:
        return 0.0
    return min(1.0, FIRST_FINDING + (1.0 - FIRST_FINDING) * math.log1p(count) * _INVERSE_LOG_FINDINGS)


def vector_key(finding: Finding) -> tuple[str, str]:
    """The vector entry a finding is counted in: warning events by reason, the rest by kind and reason."""
    if finding.reason in EVENT_REASONS and finding.kind != "Log":
        return ("Event", finding.reason)
    return (finding.kind, finding.reason)


def count_findings(findings, index=None) -> np.ndarray:
    """How many objects showed each finding key: float64, one entry per key of `index` (a mapping of
    key to position; default every key of the vocabulary). Findings of keys `index` lacks are not
    counted; findings outside the vocabulary are a bug in an analyzer and raise KeyError."""
    index = KEY_INDEX if index is None else index
    counts = np.zeros(len(index), dtype=np.float64)
    for finding in findings:
        key = vector_key(finding)
        if key not in KEY_INDEX:
            raise KeyError(f"finding {key} is not in the findings vocabulary")
        if key in index:
            counts[index[key]] += 1.0
    return counts


# The three flags of the 18-number observation (has_pvc_issues, has_network_issues,
# has_resource_pressure) say whether a finding of these keys has been shown.
FLAG_KEYS = (
    (
        ("PersistentVolumeClaim", "Pending"),
        ("PersistentVolumeClaim", "Lost"),
        ("Pod", "FailedMount"),
        ("Pod", "FailedAttachVolume"),
        ("Pod", "UnboundVolume"),
        ("StatefulSet", "StorageClassNotFound"),
    ),
    (
        ("ClusterDNS", "DNSDown"),
        ("ClusterDNS", "DNSDegraded"),
        ("Node", "NetworkUnavailable"),
        ("Event", "DNSResolutionFailed"),
        ("Event", "NetworkError"),
        ("Log", "DNSResolutionFailed"),
    ),
    (
        ("Node", "MemoryPressure"),
        ("Node", "DiskPressure"),
        ("Node", "PIDPressure"),
        ("ResourceQuota", "QuotaExceeded"),
    ),
)


def flags_of(findings) -> tuple[bool, bool, bool]:
    """The three flags raised by a list of findings."""
    keys = {vector_key(f) for f in findings}
    return tuple(any(key in keys for key in flag_keys) for flag_keys in FLAG_KEYS)
