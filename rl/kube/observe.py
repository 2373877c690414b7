"""One observation of a real cluster: read everything the state needs, say what could not be read.

`read_cluster` lists nodes, pods, deployments, events, PVCs, quotas and node metrics (paginated),
fills `ClusterState`, and collects findings (evidence a human can act on) and `degraded` notes
(what could not be read). A list that fails after the retries leaves its fields at zero and says so
in `degraded`; nothing unreadable is ever reported as healthy. A 403 raises `KubePermissionError`:
an observation without permission to read is not an observation.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rl.kube import health
from rl.kube.connection import KubeApi, Request
from rl.kube.errors import KubePermissionError, KubeRequestError
from rl.state import ClusterState

MAX_POD_FINDINGS = 50


@dataclass
class Snapshot:
    """The summaries of the last observation; remediation targets are chosen from it."""

    nodes: list[health.NodeSummary] = field(default_factory=list)
    pods: list[health.PodSummary] = field(default_factory=list)
    deployments: list[health.DeploymentSummary] = field(default_factory=list)
    dns_pods: list[health.PodSummary] = field(default_factory=list)  # CoreDNS, even if kube-system isn't observed
    metrics_available: bool = False


@dataclass
class Reading:
    state: ClusterState
    findings: list[str]
    degraded: list[str]
    snapshot: Snapshot


def read_cluster(api: KubeApi, namespaces: list[str] | None, now: datetime, event_window: timedelta) -> Reading:
    state, findings, degraded, snapshot = ClusterState(), [], [], Snapshot()
    scope = namespaces or [None]

    def attempt(what: str, consequence: str, read) -> bool:
        try:
            read()
            return True
        except KubeRequestError as err:
            degraded.append(f"{what} unreadable ({err}): {consequence}")
            return False

    attempt("nodes", "node counts unknown, reported as 0", lambda: _read_nodes(api, snapshot))
    attempt("pods", "pod counts unknown, reported as 0", lambda: _read_pods(api, scope, snapshot))
    if namespaces and "kube-system" not in namespaces:
        _read_dns_pods(api, snapshot, degraded)
    else:
        snapshot.dns_pods = [p for p in snapshot.pods if p.is_dns]
    attempt(
        "deployments",
        "deployment counts unknown, reported as 0",
        lambda: _read_deployments(api, scope, snapshot),
    )
    events = _EventTally(now - event_window)
    attempt("events", "event counts unknown, reported as 0", lambda: _read_events(api, scope, events))
    pvc_problems: list[str] = []
    attempt(
        "persistentvolumeclaims",
        "PVC problems unknown",
        lambda: _read_pvcs(api, scope, events.pvc_messages, pvc_problems),
    )
    quota_problems: list[str] = []
    attempt("resourcequotas", "quota pressure unknown", lambda: _read_quotas(api, scope, quota_problems))
    usage = _read_node_metrics(api, snapshot, degraded)

    _fill_nodes(state, findings, snapshot.nodes)
    _fill_pods(state, findings, snapshot.pods)
    _fill_deployments(state, findings, snapshot.deployments)
    state.recent_events_warning = events.warning
    state.recent_events_normal = events.normal
    findings.extend(pvc_problems)
    findings.extend(quota_problems)
    state.has_pvc_issues = bool(pvc_problems) or events.pvc_trouble
    state.has_resource_pressure = (
        bool(quota_problems) or events.quota_trouble or any(n.pressure for n in snapshot.nodes)
    )
    dns_problems = [p for p in snapshot.dns_pods if p.is_dns and (p.bucket != "running" or not p.ready)]
    for pod in dns_problems:
        findings.append(f"CoreDNS pod {pod.namespace}/{pod.name} unhealthy: {pod.problem or 'not ready'}")
    findings.extend(events.network_findings)
    state.has_network_issues = (
        bool(dns_problems) or bool(events.network_findings) or any(n.network_unavailable for n in snapshot.nodes)
    )
    findings.extend(events.summary_findings())
    if usage is not None:
        state.cpu_usage_percent, state.memory_usage_percent = usage
    return Reading(state, findings, degraded, snapshot)


def pod_lister(api: KubeApi, namespace: str | None, **selectors):
    if namespace is None:
        return api.list_pages(Request("list", "pods"), api.core.list_pod_for_all_namespaces, **selectors)
    return api.list_pages(
        Request("list", "pods", namespace), api.core.list_namespaced_pod, namespace=namespace, **selectors
    )


def _read_nodes(api: KubeApi, snapshot: Snapshot) -> None:
    snapshot.nodes = [health.summarize_node(n) for n in api.list_pages(Request("list", "nodes"), api.core.list_node)]


def _read_pods(api: KubeApi, scope, snapshot: Snapshot) -> None:
    pods = []
    for namespace in scope:
        pods.extend(health.summarize_pod(p) for p in pod_lister(api, namespace))
    snapshot.pods = pods


def _read_dns_pods(api: KubeApi, snapshot: Snapshot, degraded: list[str]) -> None:
    """CoreDNS lives in kube-system; check it even when only other namespaces are observed."""
    try:
        snapshot.dns_pods = list(
            health.summarize_pod(p) for p in pod_lister(api, "kube-system", label_selector="k8s-app=kube-dns")
        )
    except (KubeRequestError, KubePermissionError) as err:
        degraded.append(f"CoreDNS health unknown ({err})")


def _read_deployments(api: KubeApi, scope, snapshot: Snapshot) -> None:
    deployments = []
    for namespace in scope:
        if namespace is None:
            items = api.list_pages(Request("list", "deployments"), api.apps.list_deployment_for_all_namespaces)
        else:
            items = api.list_pages(
                Request("list", "deployments", namespace),
                api.apps.list_namespaced_deployment,
                namespace=namespace,
            )
        deployments.extend(health.summarize_deployment(d) for d in items)
    snapshot.deployments = deployments


class _EventTally:
    """Counts events in the window and remembers the warnings worth a finding."""

    def __init__(self, since: datetime):
        self.since = since
        self.warning = 0
        self.normal = 0
        self.pvc_trouble = False
        self.quota_trouble = False
        self.network_findings: list[str] = []
        self.pvc_messages: dict[tuple[str, str], str] = {}
        self.warnings = Counter()
        self.messages: dict[tuple[str, str], str] = {}

    def add(self, event: dict) -> None:
        obj = event.get("involvedObject") or {}
        is_warning = event.get("type") == "Warning"
        message = health._one_line(event.get("message") or event.get("note") or "")
        if is_warning and obj.get("kind") == "PersistentVolumeClaim":
            self.pvc_messages[(obj.get("namespace", ""), obj.get("name", ""))] = message
        when = health.event_time(event)
        if when is None or when < self.since:
            return
        if not is_warning:
            self.normal += 1
            return
        self.warning += 1
        reason = event.get("reason", "")
        where = health.event_object(event)
        count = int(event.get("count") or 1)
        self.warnings[(reason, where)] += count
        self.messages[(reason, where)] = message
        if reason in health.PVC_EVENT_REASONS:
            self.pvc_trouble = True
        if "exceeded quota" in message:
            self.quota_trouble = True
        if health.NETWORK_EVENT_PATTERN.search(message) and len(self.network_findings) < health.MAX_EVENT_FINDINGS:
            self.network_findings.append(f"network: {where} {reason}: {message}")

    def summary_findings(self) -> list[str]:
        top = self.warnings.most_common(health.MAX_EVENT_FINDINGS)
        findings = [
            f"warning event {reason} on {where} (x{count}): {self.messages[(reason, where)]}"
            for (reason, where), count in top
        ]
        if len(self.warnings) > len(top):
            findings.append(f"... and {len(self.warnings) - len(top)} more kinds of warning events")
        return findings


def _read_events(api: KubeApi, scope, tally: _EventTally) -> None:
    for namespace in scope:
        if namespace is None:
            items = api.list_pages(Request("list", "events"), api.core.list_event_for_all_namespaces)
        else:
            items = api.list_pages(
                Request("list", "events", namespace), api.core.list_namespaced_event, namespace=namespace
            )
        for event in items:
            tally.add(event)


def _read_pvcs(api: KubeApi, scope, event_messages, problems: list[str]) -> None:
    for namespace in scope:
        if namespace is None:
            items = api.list_pages(
                Request("list", "persistentvolumeclaims"),
                api.core.list_persistent_volume_claim_for_all_namespaces,
            )
        else:
            items = api.list_pages(
                Request("list", "persistentvolumeclaims", namespace),
                api.core.list_namespaced_persistent_volume_claim,
                namespace=namespace,
            )
        for pvc in items:
            meta, phase = pvc.get("metadata", {}), (pvc.get("status") or {}).get("phase", "Unknown")
            if phase == "Bound":
                continue
            key = (meta.get("namespace", ""), meta.get("name", "?"))
            detail = event_messages.get(key)
            problems.append(f"pvc {key[0]}/{key[1]} {phase}" + (f" ({detail})" if detail else " (not bound)"))


def _read_quotas(api: KubeApi, scope, problems: list[str]) -> None:
    for namespace in scope:
        if namespace is None:
            items = api.list_pages(Request("list", "resourcequotas"), api.core.list_resource_quota_for_all_namespaces)
        else:
            items = api.list_pages(
                Request("list", "resourcequotas", namespace),
                api.core.list_namespaced_resource_quota,
                namespace=namespace,
            )
        for quota in items:
            meta, status = quota.get("metadata", {}), quota.get("status") or {}
            used = status.get("used") or {}
            for resource, hard in sorted((status.get("hard") or {}).items()):
                hard_value = health.quantity(hard)
                if resource in used and health.quantity(used[resource]) >= hard_value:
                    problems.append(
                        f"quota {meta.get('namespace')}/{meta.get('name')}: {resource} at limit "
                        f"({used[resource]} used of {hard})"
                    )


def _read_node_metrics(api: KubeApi, snapshot: Snapshot, degraded: list[str]) -> tuple[float, float] | None:
    """Cluster CPU and memory use as a percent of allocatable, from metrics.k8s.io; None (and a
    degraded note) when the metrics API is absent or failing: usage is never invented."""
    try:
        items = list(
            api.list_pages(
                Request("list", "nodes.metrics.k8s.io"),
                api.custom.list_cluster_custom_object,
                group="metrics.k8s.io",
                version="v1beta1",
                plural="nodes",
            )
        )
    except KubeRequestError as err:
        why = "API not served (is metrics-server installed?)" if err.status == 404 else str(err)
        degraded.append(f"metrics.k8s.io unavailable: {why}; cpu/memory unknown, reported as 0")
        return None
    allocatable = {n.name: n for n in snapshot.nodes}
    cpu_used = cpu_total = memory_used = memory_total = 0.0
    for item in items:
        node = allocatable.get((item.get("metadata") or {}).get("name"))
        if node is None or node.cpu_allocatable <= 0 or node.memory_allocatable <= 0:
            continue
        usage = item.get("usage") or {}
        cpu_used += health.quantity(usage.get("cpu"))
        memory_used += health.quantity(usage.get("memory"))
        cpu_total += node.cpu_allocatable
        memory_total += node.memory_allocatable
    if cpu_total <= 0 or memory_total <= 0:
        degraded.append("metrics.k8s.io returned no usable node metrics; cpu/memory unknown, reported as 0")
        return None
    missing = len(snapshot.nodes) - len(items)
    if missing > 0:
        degraded.append(f"no metrics for {missing} node(s): usage covers only the nodes that report it")
    snapshot.metrics_available = True
    return min(100.0, 100.0 * cpu_used / cpu_total), min(100.0, 100.0 * memory_used / memory_total)


def _fill_nodes(state: ClusterState, findings: list[str], nodes) -> None:
    state.num_nodes = len(nodes)
    for node in nodes:
        if node.schedulable:
            if node.ready:
                state.nodes_ready += 1
            else:
                state.nodes_not_ready += 1
        if not node.ready:
            detail = f"{node.ready_reason}: {node.ready_message}" if node.ready_message else node.ready_reason
            findings.append(f"node {node.name} NotReady ({detail})")
        if not node.schedulable:
            findings.append(f"node {node.name} cordoned (SchedulingDisabled)")
        findings.extend(f"node {node.name} {pressure}" for pressure in node.pressure)
        if node.network_unavailable:
            findings.append(f"node {node.name} NetworkUnavailable ({node.network_unavailable})")


def _fill_pods(state: ClusterState, findings: list[str], pods) -> None:
    counts = Counter(p.bucket for p in pods)
    state.pods_running = counts["running"]
    state.pods_pending = counts["pending"]
    state.pods_failed = counts["failed"]
    state.pods_unknown = counts["unknown"]
    state.num_pods = state.pods_running + state.pods_pending + state.pods_failed + state.pods_unknown
    problems = [p for p in pods if p.problem and not p.is_dns]
    for pod in problems[:MAX_POD_FINDINGS]:
        findings.append(f"pod {pod.namespace}/{pod.name} {pod.problem}")
    if len(problems) > MAX_POD_FINDINGS:
        findings.append(f"... and {len(problems) - MAX_POD_FINDINGS} more pods with problems")


def _fill_deployments(state: ClusterState, findings: list[str], deployments) -> None:
    state.num_deployments = len(deployments)
    for deployment in deployments:
        if deployment.problem:
            state.deployments_unavailable += 1
            findings.append(f"deployment {deployment.namespace}/{deployment.name} {deployment.problem}")
        else:
            state.deployments_available += 1
