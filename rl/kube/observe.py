"""One observation of a real cluster: read each list once, run the analyzers, fill the state from findings.

`read_cluster` lists every resource the analyzers need (paginated, each list once), runs them
(`rl.kube.analyzers`), and derives `ClusterState` (counts and flags) from the findings, so the
agent's observation, the env's terminal condition and the report agree. A list that fails after the
retries is named in `degraded` and the analyzers that need it are skipped: nothing unreadable is
ever reported as healthy. Node metrics are the exception that leaves only numbers unknown: their
absence (no metrics-server) is in `degraded` and in `unknown`, which does not block resolution. A 403 on a core list (nodes, pods, deployments, events, PVCs, quotas,
node metrics) raises `KubePermissionError`: an observation without them is not an observation;
on the other lists it degrades the observation.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rl.findings import Finding, flags_of
from rl.kube.analyzers import analyze
from rl.kube.analyzers.daemonset import image_pull_secrets
from rl.kube.analyzers.dns import is_dns_pod
from rl.kube.analyzers.ingress import referenced_secrets
from rl.kube.connection import KubeApi, Request, resource_path
from rl.kube.errors import KubeDeadlineError, KubePermissionError, KubeRequestError
from rl.kube.inventory import Inventory, event_time, name_of, namespace_of, quantity, trim_pod
from rl.state import ClusterState


@dataclass(frozen=True)
class ListSpec:
    resource: str  # the inventory key and the plural in the API path
    group: str = ""  # "" for the core group (/api/v1), else /apis/GROUP/VERSION
    version: str = "v1"
    namespaced: bool = True
    core: bool = False  # a 403 fails the observation instead of degrading it

    @property
    def rbac(self) -> str:
        return f"{self.resource}.{self.group}" if self.group and self.group not in ("apps", "policy") else self.resource


LISTS = (
    ListSpec("nodes", namespaced=False, core=True),
    ListSpec("events", core=True),
    ListSpec("pods", core=True),
    ListSpec("deployments", "apps", core=True),
    ListSpec("replicasets", "apps"),
    ListSpec("statefulsets", "apps"),
    ListSpec("daemonsets", "apps"),
    ListSpec("jobs", "batch"),
    ListSpec("cronjobs", "batch"),
    ListSpec("services"),
    ListSpec("endpoints"),
    ListSpec("endpointslices", "discovery.k8s.io"),
    ListSpec("ingresses", "networking.k8s.io"),
    ListSpec("ingressclasses", "networking.k8s.io", namespaced=False),
    ListSpec("networkpolicies", "networking.k8s.io"),
    ListSpec("persistentvolumeclaims", core=True),
    ListSpec("storageclasses", "storage.k8s.io", namespaced=False),
    ListSpec("horizontalpodautoscalers", "autoscaling", "v2"),
    ListSpec("poddisruptionbudgets", "policy"),
    ListSpec("resourcequotas", core=True),
)
HAS_FALLBACK = {"endpointslices": "endpoints"}
DEADLINE_DEGRADED = "not read before the deadline passed"  # how `degraded` names what the deadline cut  # a list not served, and the one read in its place


# How a pod is counted in ClusterState, from its findings (the first that applies, in this order).
FAILED_REASONS = frozenset(
    {"CrashLoopBackOff", "OOMKilled", "RunContainerError", "ContainerExited", "Failed", "Evicted"}
)
UNKNOWN_REASONS = frozenset({"PhaseUnknown", "TerminatingOnDeadNode"})
PENDING_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "ImageInspectError",
        "CreateContainerConfigError",
        "CreateContainerError",
        "PreCreateHookError",
        "PreStartHookError",
        "FailedMount",
        "FailedAttachVolume",
        "FailedCreatePodSandBox",
        "Unschedulable",
        "UnboundVolume",
        "SchedulingGated",
    }
)
UNSCHEDULABLE_REASONS = frozenset({"Cordoned", "PlannedMaintenance"})


@dataclass
class Reading:
    state: ClusterState
    findings: list[Finding]
    degraded: list[str]
    inventory: Inventory
    pod_buckets: dict[tuple[str, str], str] = field(default_factory=dict)  # (ns, name) -> running/pending/...
    node_usage: tuple[float, float] | None = None  # the nodes' CPU and memory use, %; None: no metrics
    unknown: list[str] = field(default_factory=list)  # entries of `degraded` that hide no finding: numbers only


def read_cluster(api: KubeApi, namespaces: list[str] | None, now: datetime, event_window: timedelta) -> Reading:
    """One observation. When the API's overall deadline passes, reading stops there: what was read
    is analyzed, and every source not read is named in `degraded` (its analyzers skipped)."""
    inventory, degraded, unknown = Inventory(now, event_window), [], []
    try:
        usage = _read_all(api, namespaces, inventory, degraded, unknown)
    except KubeDeadlineError:
        usage = None
        unread = [
            s.resource for s in LISTS if s.resource not in inventory.lists and s.resource not in inventory.unreadable
        ]
        for resource in unread:
            inventory.unreadable[resource] = "not read: the deadline passed"
        degraded.append(f"{DEADLINE_DEGRADED}: {', '.join(unread) or 'CoreDNS, secrets, node metrics'}")
    analysis = analyze(inventory)
    degraded.extend(analysis.skipped)
    state, buckets = state_from_findings(inventory, analysis.findings)
    if usage is not None:
        state.cpu_usage_percent, state.memory_usage_percent = usage
    return Reading(state, analysis.findings, degraded, inventory, buckets, usage, unknown)


def _read_all(api: KubeApi, namespaces, inventory: Inventory, degraded: list[str], unknown: list[str]):
    scope = namespaces or [None]
    for spec in LISTS:
        try:
            inventory.lists[spec.resource] = _read_list(api, spec, scope)
        except KubeRequestError as err:
            inventory.unreadable[spec.resource] = str(err)
            if err.status == 404 and spec.resource in HAS_FALLBACK and HAS_FALLBACK[spec.resource] in inventory.lists:
                continue  # not served here; the analyzers use the fallback list
            why = "API not served" if err.status == 404 else str(err)
            degraded.append(f"{spec.resource} unreadable ({why}): what needs it is not analyzed")
        except KubePermissionError as err:
            if spec.core:
                raise
            inventory.unreadable[spec.resource] = str(err)
            degraded.append(f"{spec.resource} unreadable ({err}): what needs it is not analyzed")
    _read_dns_pods(api, namespaces, inventory, degraded)
    _read_referenced_secrets(api, inventory, degraded)
    metrics_notes = len(degraded)
    usage = _read_node_metrics(api, inventory, degraded)
    unknown.extend(degraded[metrics_notes:])  # usage unknown: reported, not a reason to call the cluster unhealthy
    return usage


def _read_list(api: KubeApi, spec: ListSpec, scope) -> list[dict]:
    keep = trim_pod if spec.resource == "pods" else None
    items: list[dict] = []
    for namespace in scope if spec.namespaced else [None]:
        path = resource_path(spec.resource, namespace, group=spec.group, version=spec.version)
        pages = api.list_pages(Request("list", spec.rbac, namespace), path)
        items.extend(map(keep, pages) if keep else pages)
    return items


def _read_dns_pods(api: KubeApi, namespaces, inventory: Inventory, degraded: list[str]) -> None:
    """CoreDNS lives in kube-system; check it even when only other namespaces are observed."""
    if not namespaces or "kube-system" in namespaces:
        if "pods" in inventory.lists:
            inventory.lists["dns_pods"] = [p for p in inventory.items("pods") if is_dns_pod(p)]
        return
    try:
        pages = api.list_pages(
            Request("list", "pods", "kube-system"),
            resource_path("pods", "kube-system"),
            labelSelector="k8s-app=kube-dns",
        )
        inventory.lists["dns_pods"] = [trim_pod(p) for p in pages]
    except (KubeRequestError, KubePermissionError) as err:
        inventory.unreadable["dns_pods"] = str(err)
        degraded.append(f"CoreDNS health unknown ({err})")


def _read_referenced_secrets(api: KubeApi, inventory: Inventory, degraded: list[str]) -> None:
    """Whether the Secrets that Ingresses (TLS) and DaemonSets (imagePullSecrets) name exist: one
    GET each (never a list of every Secret), and only existence is kept."""
    wanted = [(namespace_of(i), s) for i in inventory.items("ingresses") for s in referenced_secrets(i)]
    wanted += [(namespace_of(d), s) for d in inventory.items("daemonsets") for s in image_pull_secrets(d)]
    forbidden: list[str] = []
    for namespace, secret in wanted:
        if (namespace, secret) in inventory.secrets:
            continue
        try:
            # Only whether it exists is kept: the content is never looked at, nor kept past this call.
            api.call(Request("get", "secrets", namespace), "GET", resource_path("secrets", namespace, secret))
            inventory.secrets[(namespace, secret)] = True
        except KubeRequestError as err:
            if err.status == 404:
                inventory.secrets[(namespace, secret)] = False
            else:
                inventory.secrets[(namespace, secret)] = None
                degraded.append(f"secret {namespace}/{secret} unknown ({err})")
        except KubePermissionError:
            inventory.secrets[(namespace, secret)] = None
            forbidden.append(f"{namespace}/{secret}")
    if forbidden:
        degraded.append(
            f"secret existence not checked for {', '.join(forbidden[:5])}"
            + (f" and {len(forbidden) - 5} more" if len(forbidden) > 5 else "")
            + " (no permission to get secrets)"
        )


def _read_node_metrics(api: KubeApi, inventory: Inventory, degraded: list[str]) -> tuple[float, float] | None:
    """Cluster CPU and memory use as a percent of allocatable, from metrics.k8s.io; None (and a
    degraded note) when the metrics API is absent or failing: usage is never invented."""
    try:
        items = list(
            api.list_pages(
                Request("list", "nodes.metrics.k8s.io"),
                resource_path("nodes", group="metrics.k8s.io", version="v1beta1"),
            )
        )
    except KubeRequestError as err:
        why = "API not served (is metrics-server installed?)" if err.status == 404 else str(err)
        degraded.append(f"metrics.k8s.io unavailable: {why}; cpu/memory unknown, reported as 0")
        return None
    nodes = {name_of(n): (n.get("status") or {}).get("allocatable") or {} for n in inventory.items("nodes")}
    cpu_used = cpu_total = memory_used = memory_total = 0.0
    for item in items:
        name = name_of(item)
        inventory.node_usage[name] = item.get("usage") or {}
        allocatable = nodes.get(name)
        if not allocatable:
            continue
        cpu, memory = quantity(allocatable.get("cpu")), quantity(allocatable.get("memory"))
        if cpu <= 0 or memory <= 0:
            continue
        usage = item.get("usage") or {}
        cpu_used += quantity(usage.get("cpu"))
        memory_used += quantity(usage.get("memory"))
        cpu_total += cpu
        memory_total += memory
    if cpu_total <= 0 or memory_total <= 0:
        degraded.append("metrics.k8s.io returned no usable node metrics; cpu/memory unknown, reported as 0")
        return None
    missing = len(nodes) - len(items)
    if missing > 0:
        degraded.append(f"no metrics for {missing} node(s): usage covers only the nodes that report it")
    return min(100.0, 100.0 * cpu_used / cpu_total), min(100.0, 100.0 * memory_used / memory_total)


def pod_bucket(pod: dict, reasons: set[str]) -> str:
    """running, pending, failed, unknown or succeeded: from the pod's findings, then its phase."""
    if reasons & UNKNOWN_REASONS:
        return "unknown"
    if reasons & FAILED_REASONS:
        return "failed"
    if reasons & PENDING_REASONS:
        return "pending"
    phase = (pod.get("status") or {}).get("phase") or "Unknown"
    return {"Running": "running", "Pending": "pending", "Succeeded": "succeeded", "Failed": "failed"}.get(
        phase, "unknown"
    )


def state_from_findings(inventory: Inventory, findings: list[Finding]) -> tuple[ClusterState, dict]:
    state = ClusterState()
    by_object: dict[tuple[str, str, str], set[str]] = {}
    for f in findings:
        by_object.setdefault((f.kind, f.namespace, f.name), set()).add(f.reason)

    nodes = inventory.items("nodes")
    state.num_nodes = len(nodes)
    for node in nodes:
        reasons = by_object.get(("Node", "", name_of(node)), set())
        if reasons & UNSCHEDULABLE_REASONS:
            continue  # cordoned, by mistake or for maintenance: neither ready for pods nor NotReady
        if "NotReady" in reasons:
            state.nodes_not_ready += 1
        else:
            state.nodes_ready += 1

    buckets = {}
    for pod in inventory.items("pods"):
        key = (namespace_of(pod), name_of(pod))
        buckets[key] = pod_bucket(pod, by_object.get(("Pod", *key), set()))
    counts = Counter(buckets.values())
    state.pods_running, state.pods_pending = counts["running"], counts["pending"]
    state.pods_failed, state.pods_unknown = counts["failed"], counts["unknown"]
    state.num_pods = state.pods_running + state.pods_pending + state.pods_failed + state.pods_unknown

    deployments = inventory.items("deployments")
    state.num_deployments = len(deployments)
    state.deployments_unavailable = sum(
        1 for d in deployments if ("Deployment", namespace_of(d), name_of(d)) in by_object
    )
    state.deployments_available = state.num_deployments - state.deployments_unavailable

    window_start = inventory.now - inventory.event_window
    for event in inventory.items("events"):
        when = event_time(event)
        if when is None or when < window_start:
            continue
        if event.get("type") == "Warning":
            state.recent_events_warning += 1
        else:
            state.recent_events_normal += 1

    state.has_pvc_issues, state.has_network_issues, state.has_resource_pressure = flags_of(findings)
    return state, buckets
