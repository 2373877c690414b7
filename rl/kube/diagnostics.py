"""Diagnostic actions: real reads whose findings go into the action result's `data`.

Lists in `data` are capped (MAX_ITEMS) with the total alongside, so a result stays readable on a
cluster of thousands of pods.
"""

import time
from collections import Counter
from datetime import datetime, timedelta

from rl.actions import ClusterAction
from rl.kube import health
from rl.kube.connection import KubeApi, Request
from rl.kube.errors import KubeRequestError
from rl.kube.observe import Snapshot

MAX_ITEMS = 25
MAX_PODS_INSPECTED = 3
LOG_TAIL_LINES = 50


def run_diagnostic(
    action: ClusterAction,
    api: KubeApi,
    scope: list[str | None],
    snapshot: Snapshot,
    now: datetime,
    event_window: timedelta,
    wait_seconds: float,
) -> dict:
    if action == ClusterAction.GET_NODES:
        return _get_nodes(api)
    if action == ClusterAction.GET_PODS:
        return _get_pods(api, scope)
    if action == ClusterAction.GET_EVENTS:
        return _get_events(api, scope, now - event_window)
    if action == ClusterAction.GET_DEPLOYMENTS:
        return _get_deployments(api, scope)
    if action == ClusterAction.CHECK_LOGS:
        return _check_logs(api, snapshot)
    if action == ClusterAction.DESCRIBE_UNHEALTHY:
        return _describe_unhealthy(api, snapshot)
    if action == ClusterAction.TOP_NODES:
        return _top_nodes(api)
    if action == ClusterAction.TOP_PODS:
        return _top_pods(api, scope)
    if action == ClusterAction.GET_RESOURCE_QUOTAS:
        return _get_quotas(api, scope)
    if action == ClusterAction.WAIT:
        time.sleep(wait_seconds)
        return _result(True, f"waited {wait_seconds:g}s", {"waited_seconds": wait_seconds})
    raise ValueError(f"{action.name} is not a diagnostic action")


def _result(success: bool, message: str, data: dict) -> dict:
    return {"success": success, "message": message, "data": data}


def _scoped(api: KubeApi, scope, resource: str, all_fn, namespaced_fn, **kwargs):
    for namespace in scope:
        if namespace is None:
            yield from api.list_pages(Request("list", resource), all_fn, **kwargs)
        else:
            yield from api.list_pages(
                Request("list", resource, namespace), namespaced_fn, namespace=namespace, **kwargs
            )


def _get_nodes(api: KubeApi) -> dict:
    raw = list(api.list_pages(Request("list", "nodes"), api.core.list_node))
    nodes = []
    for item in raw:
        summary = health.summarize_node(item)
        nodes.append(
            {
                "name": summary.name,
                "ready": summary.ready,
                "schedulable": summary.schedulable,
                "problems": ([] if summary.ready else [f"NotReady ({summary.ready_reason})"])
                + summary.pressure
                + ([f"NetworkUnavailable ({summary.network_unavailable})"] if summary.network_unavailable else []),
                "allocatable": (item.get("status") or {}).get("allocatable", {}),
                "kubelet": ((item.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""),
            }
        )
    nodes.sort(key=lambda n: (not n["problems"] and n["ready"] and n["schedulable"], n["name"]))
    ready = sum(1 for n in nodes if n["ready"] and n["schedulable"])
    cordoned = sum(1 for n in nodes if not n["schedulable"])
    message = f"{len(nodes)} nodes: {ready} ready, {len(nodes) - ready - cordoned} not ready, {cordoned} cordoned"
    return _result(True, message, {"total": len(nodes), "nodes": nodes[:MAX_ITEMS]})


def _get_pods(api: KubeApi, scope) -> dict:
    counts: Counter = Counter()
    unhealthy = []
    for item in _scoped(api, scope, "pods", api.core.list_pod_for_all_namespaces, api.core.list_namespaced_pod):
        pod = health.summarize_pod(item)
        counts[pod.bucket] += 1
        if pod.problem:
            unhealthy.append(
                {
                    "pod": f"{pod.namespace}/{pod.name}",
                    "status": pod.bucket,
                    "problem": pod.problem,
                    "restarts": pod.restarts,
                    "node": pod.node,
                }
            )
    total = sum(counts.values())
    message = (
        f"{total} pods: {counts['running']} running, {counts['pending']} pending, {counts['failed']} failed, "
        f"{counts['unknown']} unknown, {counts['succeeded']} succeeded"
    )
    return _result(
        True,
        message,
        {"counts": dict(counts), "unhealthy_total": len(unhealthy), "unhealthy": unhealthy[:MAX_ITEMS]},
    )


def _get_events(api: KubeApi, scope, since: datetime) -> dict:
    warnings, normal = [], 0
    for event in _scoped(api, scope, "events", api.core.list_event_for_all_namespaces, api.core.list_namespaced_event):
        when = health.event_time(event)
        if when is None or when < since:
            continue
        if event.get("type") != "Warning":
            normal += 1
            continue
        warnings.append(
            {
                "reason": event.get("reason", ""),
                "object": health.event_object(event),
                "message": health._one_line(event.get("message", "")),
                "count": int(event.get("count") or 1),
                "last_seen": when.isoformat(),
            }
        )
    warnings.sort(key=lambda w: w["last_seen"], reverse=True)
    message = f"{len(warnings)} warning and {normal} normal events in the window"
    return _result(True, message, {"warning": len(warnings), "normal": normal, "warnings": warnings[:MAX_ITEMS]})


def _get_deployments(api: KubeApi, scope) -> dict:
    deployments = [
        health.summarize_deployment(d)
        for d in _scoped(
            api,
            scope,
            "deployments",
            api.apps.list_deployment_for_all_namespaces,
            api.apps.list_namespaced_deployment,
        )
    ]
    deployments.sort(key=lambda d: (d.problem is None, d.namespace, d.name))
    rows = [
        {
            "deployment": f"{d.namespace}/{d.name}",
            "desired": d.desired,
            "available": d.available,
            "unavailable": d.unavailable,
            "problem": d.problem,
        }
        for d in deployments
    ]
    bad = sum(1 for d in deployments if d.problem)
    return _result(
        True,
        f"{len(rows)} deployments, {bad} not fully available",
        {"total": len(rows), "deployments": rows[:MAX_ITEMS]},
    )


def _unhealthy_pods(snapshot: Snapshot) -> list[health.PodSummary]:
    pods = [p for p in snapshot.pods + snapshot.dns_pods if p.bucket in ("failed", "pending", "unknown") and p.problem]
    order = {"failed": 0, "unknown": 1, "pending": 2}
    pods.sort(key=lambda p: (order[p.bucket], -p.restarts, p.namespace, p.name))
    return pods[:MAX_PODS_INSPECTED]


def _check_logs(api: KubeApi, snapshot: Snapshot) -> dict:
    logs = []
    for pod in _unhealthy_pods(snapshot):
        if not pod.container:
            continue
        request = Request("get", "pods/log", pod.namespace)
        # A crashing container's own output is in the previous (terminated) instance.
        for previous in [True, False] if pod.restarts else [False]:
            try:
                response = api.call(
                    request,
                    api.core.read_namespaced_pod_log,
                    name=pod.name,
                    namespace=pod.namespace,
                    container=pod.container,
                    tail_lines=LOG_TAIL_LINES,
                    previous=previous,
                )
            except KubeRequestError as err:
                if err.status == 400 and previous:
                    continue
                logs.append({"pod": f"{pod.namespace}/{pod.name}", "container": pod.container, "error": str(err)})
                break
            text = response.data.decode("utf-8", errors="replace")
            logs.append(
                {
                    "pod": f"{pod.namespace}/{pod.name}",
                    "container": pod.container,
                    "previous": previous,
                    "problem": pod.problem,
                    "tail": text[-4000:],
                }
            )
            break
    if not logs:
        return _result(False, "no unhealthy pod with a container to read logs from", {"logs": []})
    return _result(True, f"read logs of {len(logs)} unhealthy pod(s)", {"logs": logs})


def _describe_unhealthy(api: KubeApi, snapshot: Snapshot) -> dict:
    described = []
    for pod in _unhealthy_pods(snapshot):
        try:
            item = api.call_json(
                Request("get", "pods", pod.namespace),
                api.core.read_namespaced_pod,
                name=pod.name,
                namespace=pod.namespace,
            )
        except KubeRequestError as err:
            described.append({"pod": f"{pod.namespace}/{pod.name}", "error": str(err)})
            continue
        status = item.get("status") or {}
        selector = f"involvedObject.kind=Pod,involvedObject.name={pod.name},involvedObject.namespace={pod.namespace}"
        events = api.list_pages(
            Request("list", "events", pod.namespace),
            api.core.list_namespaced_event,
            namespace=pod.namespace,
            field_selector=selector,
        )
        described.append(
            {
                "pod": f"{pod.namespace}/{pod.name}",
                "node": (item.get("spec") or {}).get("nodeName", ""),
                "phase": status.get("phase"),
                "reason": status.get("reason"),
                "problem": pod.problem,
                "conditions": [
                    {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k)}
                    for c in status.get("conditions") or ()
                ],
                "containers": [
                    {
                        "name": c.get("name"),
                        "ready": c.get("ready"),
                        "restartCount": c.get("restartCount"),
                        "state": c.get("state"),
                        "lastState": c.get("lastState"),
                    }
                    for c in status.get("containerStatuses") or ()
                ],
                "events": [
                    {
                        "type": e.get("type"),
                        "reason": e.get("reason"),
                        "count": e.get("count"),
                        "message": health._one_line(e.get("message", "")),
                    }
                    for e in events
                ][:MAX_ITEMS],
            }
        )
    if not described:
        return _result(False, "no unhealthy pods to describe", {"pods": []})
    return _result(True, f"described {len(described)} unhealthy pod(s)", {"pods": described})


def _metrics_unavailable(err: KubeRequestError) -> dict:
    why = "API not served (is metrics-server installed?)" if err.status == 404 else str(err)
    return _result(False, f"metrics.k8s.io unavailable: {why}", {"available": False})


def _top_nodes(api: KubeApi) -> dict:
    try:
        metrics = list(
            api.list_pages(
                Request("list", "nodes.metrics.k8s.io"),
                api.custom.list_cluster_custom_object,
                group="metrics.k8s.io",
                version="v1beta1",
                plural="nodes",
            )
        )
    except KubeRequestError as err:
        return _metrics_unavailable(err)
    nodes = {
        n.name: n for n in map(health.summarize_node, api.list_pages(Request("list", "nodes"), api.core.list_node))
    }
    rows = []
    for item in metrics:
        name = (item.get("metadata") or {}).get("name")
        node, usage = nodes.get(name), item.get("usage") or {}
        cpu, memory = health.quantity(usage.get("cpu")), health.quantity(usage.get("memory"))
        row = {"node": name, "cpu_cores": round(cpu, 3), "memory_bytes": int(memory)}
        if node and node.cpu_allocatable > 0 and node.memory_allocatable > 0:
            row["cpu_percent"] = round(100 * cpu / node.cpu_allocatable, 1)
            row["memory_percent"] = round(100 * memory / node.memory_allocatable, 1)
        rows.append(row)
    rows.sort(key=lambda r: r.get("cpu_percent", 0.0), reverse=True)
    return _result(True, f"usage of {len(rows)} nodes", {"available": True, "nodes": rows[:MAX_ITEMS]})


def _top_pods(api: KubeApi, scope) -> dict:
    rows = []
    try:
        for namespace in scope:
            if namespace is None:
                items = api.list_pages(
                    Request("list", "pods.metrics.k8s.io"),
                    api.custom.list_cluster_custom_object,
                    group="metrics.k8s.io",
                    version="v1beta1",
                    plural="pods",
                )
            else:
                items = api.list_pages(
                    Request("list", "pods.metrics.k8s.io", namespace),
                    api.custom.list_namespaced_custom_object,
                    group="metrics.k8s.io",
                    version="v1beta1",
                    namespace=namespace,
                    plural="pods",
                )
            for item in items:
                meta = item.get("metadata") or {}
                containers = item.get("containers") or ()
                rows.append(
                    {
                        "pod": f"{meta.get('namespace')}/{meta.get('name')}",
                        "cpu_cores": round(
                            sum(health.quantity((c.get("usage") or {}).get("cpu")) for c in containers), 3
                        ),
                        "memory_bytes": int(
                            sum(health.quantity((c.get("usage") or {}).get("memory")) for c in containers)
                        ),
                    }
                )
    except KubeRequestError as err:
        return _metrics_unavailable(err)
    rows.sort(key=lambda r: (r["cpu_cores"], r["memory_bytes"]), reverse=True)
    return _result(
        True,
        f"usage of {len(rows)} pods (top {min(len(rows), MAX_ITEMS)} by cpu)",
        {"available": True, "total": len(rows), "pods": rows[:MAX_ITEMS]},
    )


def _get_quotas(api: KubeApi, scope) -> dict:
    rows = []
    for quota in _scoped(
        api,
        scope,
        "resourcequotas",
        api.core.list_resource_quota_for_all_namespaces,
        api.core.list_namespaced_resource_quota,
    ):
        meta, status = quota.get("metadata") or {}, quota.get("status") or {}
        used = status.get("used") or {}
        resources = []
        for resource, hard in sorted((status.get("hard") or {}).items()):
            value = used.get(resource, "0")
            resources.append(
                {
                    "resource": resource,
                    "used": value,
                    "hard": hard,
                    "at_limit": health.quantity(value) >= health.quantity(hard),
                }
            )
        rows.append({"quota": f"{meta.get('namespace')}/{meta.get('name')}", "resources": resources})
    at_limit = sum(1 for q in rows for r in q["resources"] if r["at_limit"])
    return _result(
        True,
        f"{len(rows)} resource quotas, {at_limit} resource(s) at their limit",
        {"total": len(rows), "quotas": rows[:MAX_ITEMS]},
    )
