"""Diagnostic actions: what the last observation holds, plus the targeted reads it does not (logs, a
pod's full status, pod metrics). Lists already read by the observation are never listed again.

A read that fails (HTTP 4xx/5xx, a timeout) is reported as failed, with its status: `success` is
True only when at least one read succeeded, and the message counts the failures. Lists in `data`
are capped (MAX_ITEMS) with the total alongside.
"""

import time
from collections import Counter

from rl.actions import ClusterAction
from rl.kube.analyzers.log import analyze_logs
from rl.kube.connection import KubeApi, Request, resource_path
from rl.kube.errors import KubeRequestError
from rl.kube.health import Snapshot
from rl.kube.inventory import event_time, name_of, namespace_of, one_line, quantity
from rl.kube.observe import Reading

MAX_ITEMS = 25
MAX_PODS_INSPECTED = 3
MAX_LOG_WORKLOADS = 10
LOG_TAIL_LINES = 50
MAX_LOG_BYTES = 1024 * 1024  # of one log read: 50 lines of a few KiB; a log past it is cut there


def run_diagnostic(
    action: ClusterAction,
    api: KubeApi,
    scope: list[str | None],
    reading: Reading,
    snapshot: Snapshot,
    wait_seconds: float,
    found: list | None = None,
) -> dict:
    """Run one read. CHECK_LOGS appends the findings of the logs it read (`rl.kube.analyzers.log`) to
    `found`; TOP_PODS answers the pods' CPU and memory use as a percent of the nodes' allocatable."""
    if action == ClusterAction.GET_NODES:
        return _get_nodes(reading, snapshot)
    if action == ClusterAction.GET_PODS:
        return _get_pods(snapshot)
    if action == ClusterAction.GET_EVENTS:
        return _get_events(reading)
    if action == ClusterAction.GET_DEPLOYMENTS:
        return _get_deployments(snapshot)
    if action == ClusterAction.CHECK_LOGS:
        return _check_logs(api, reading, snapshot, found)
    if action == ClusterAction.DESCRIBE_UNHEALTHY:
        return _describe_unhealthy(api, reading, snapshot)
    if action == ClusterAction.TOP_NODES:
        return _top_nodes(reading, snapshot)
    if action == ClusterAction.TOP_PODS:
        return _top_pods(api, scope, snapshot)
    if action == ClusterAction.GET_RESOURCE_QUOTAS:
        return _get_quotas(reading)
    if action == ClusterAction.WAIT:
        if wait_seconds <= 0:
            return _result(
                True, "done: looking again (nothing was changed, nothing to wait for)", {"waited_seconds": 0}
            )
        time.sleep(wait_seconds)
        return _result(True, f"waited {wait_seconds:g}s", {"waited_seconds": wait_seconds})
    raise ValueError(f"{action.name} is not a diagnostic action")


def _result(success: bool, message: str, data: dict) -> dict:
    return {"success": success, "message": message, "data": data}


def _unreadable(reading: Reading, resource: str) -> dict | None:
    if resource in reading.inventory.unreadable:
        why = reading.inventory.unreadable[resource]
        return _result(False, f"{resource} unreadable: {why}", {"failed": True, "error": why})
    return None


def _get_nodes(reading: Reading, snapshot: Snapshot) -> dict:
    if (failed := _unreadable(reading, "nodes")) is not None:
        return failed
    problems = {}
    for f in reading.findings:
        if f.kind == "Node":
            problems.setdefault(f.name, []).append(f"{f.reason}: {f.message}")
    nodes = [
        {"name": n.name, "ready": n.ready, "schedulable": n.schedulable, "problems": problems.get(n.name, [])}
        for n in snapshot.nodes
    ]
    nodes.sort(key=lambda n: (not n["problems"], n["name"]))
    ready = sum(1 for n in snapshot.nodes if n.ready and n.schedulable)
    cordoned = sum(1 for n in snapshot.nodes if not n.schedulable)
    message = f"{len(nodes)} nodes: {ready} ready, {len(nodes) - ready - cordoned} not ready, {cordoned} cordoned"
    return _result(True, message, {"total": len(nodes), "nodes": nodes[:MAX_ITEMS]})


def _get_pods(snapshot: Snapshot) -> dict:
    counts = Counter(p.bucket for p in snapshot.pods)
    unhealthy = [
        {
            "pod": f"{p.namespace}/{p.name}",
            "status": p.bucket,
            "problem": p.problem,
            "restarts": p.restarts,
            "node": p.node,
        }
        for p in snapshot.pods
        if p.problem
    ]
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


def _get_events(reading: Reading) -> dict:
    if (failed := _unreadable(reading, "events")) is not None:
        return failed
    inventory = reading.inventory
    warnings, normal = [], 0
    for event in inventory.items("events"):
        if not inventory.recent(event):
            continue
        if event.get("type") != "Warning":
            normal += 1
            continue
        obj = event.get("involvedObject") or {}
        where = f"{obj.get('namespace')}/{obj.get('name')}" if obj.get("namespace") else obj.get("name", "?")
        warnings.append(
            {
                "reason": event.get("reason", ""),
                "object": f"{(obj.get('kind') or 'object').lower()} {where}",
                "message": one_line(event.get("message", "")),
                "count": int(event.get("count") or 1),
                "last_seen": event_time(event).isoformat(),
            }
        )
    warnings.sort(key=lambda w: w["last_seen"], reverse=True)
    message = f"{len(warnings)} warning and {normal} normal events in the window"
    return _result(True, message, {"warning": len(warnings), "normal": normal, "warnings": warnings[:MAX_ITEMS]})


def _get_deployments(snapshot: Snapshot) -> dict:
    deployments = sorted(snapshot.deployments, key=lambda d: (d.problem is None, d.namespace, d.name))
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


def _unhealthy_pods(snapshot: Snapshot) -> list:
    pods = [p for p in snapshot.pods + snapshot.dns_pods if p.problem]
    order = {"failed": 0, "unknown": 1, "pending": 2, "running": 3}
    pods.sort(key=lambda p: (order.get(p.bucket, 4), -p.restarts, p.namespace, p.name))
    return pods[:MAX_PODS_INSPECTED]


# Pods whose containers never ran or cannot be reached have no log to read.
NO_LOGS = frozenset({"Evicted", "PhaseUnknown", "TerminatingOnDeadNode", "TerminatingStuck"})


def pods_for_logs(snapshot: Snapshot) -> list:
    """The pods CHECK_LOGS reads: one per workload (its controller) whose pods fail or restarted, the
    worst of each (failing before restarted, then by restarts), at most MAX_LOG_WORKLOADS, worst first.
    Pods that never started (pending) or cannot be reached (on a dead node, evicted) are left out."""
    order = {"failed": 0, "running": 1}
    candidates = [
        p
        for p in snapshot.pods + snapshot.dns_pods
        if p.container and p.bucket in order and p.reason not in NO_LOGS and (p.problem or p.restarts)
    ]
    candidates.sort(key=lambda p: (p.problem is None, order[p.bucket], -p.restarts, p.namespace, p.name))
    chosen: dict[tuple[str, str, str], object] = {}
    for pod in candidates:
        chosen.setdefault((pod.namespace, pod.owner_kind, pod.owner_name or pod.name), pod)
    return list(chosen.values())[:MAX_LOG_WORKLOADS]


def _check_logs(api: KubeApi, reading: Reading, snapshot: Snapshot, found: list | None) -> dict:
    logs, failures, texts, parents = [], 0, {}, {}
    for pod in pods_for_logs(snapshot):
        request = Request("get", "pods/log", pod.namespace)
        # A crashing container's own output is in the previous (terminated) instance.
        for previous in [True, False] if pod.restarts else [False]:
            try:
                answer = api.call(
                    request,
                    "GET",
                    resource_path("pods", pod.namespace, pod.name, "log"),
                    {"container": pod.container, "tailLines": LOG_TAIL_LINES, "previous": previous},
                    limit=MAX_LOG_BYTES,
                )
            except KubeRequestError as err:
                if err.status == 400 and previous:
                    continue  # no previous instance: read the current one
                failures += 1
                logs.append(
                    {
                        "pod": f"{pod.namespace}/{pod.name}",
                        "container": pod.container,
                        "error": str(err),
                        "status": err.status,
                    }
                )
                break
            text = answer.body.decode("utf-8", errors="replace")
            texts[(pod.namespace, pod.name)] = text
            obj = reading.inventory.get("pods", pod.namespace, pod.name)
            parents[(pod.namespace, pod.name)] = reading.inventory.parent(obj) if obj is not None else ""
            logs.append(
                {
                    "pod": f"{pod.namespace}/{pod.name}",
                    "container": pod.container,
                    "previous": previous,
                    "problem": pod.problem,
                    "tail": text[-4000:],
                    **({"truncated_at_bytes": MAX_LOG_BYTES} if answer.truncated else {}),
                }
            )
            break
    read = len(logs) - failures
    if not logs:
        return _result(True, "no failing or restarted container to read logs from", {"logs": [], "findings": []})
    findings = analyze_logs(texts, parents)
    if found is not None:
        found.extend(findings)
    statuses = sorted({str(entry.get("status")) for entry in logs if "error" in entry})
    message = f"read logs of {read} pod(s)" + (f": {len(findings)} showed a known failure" if findings else "")
    if failures:
        message += f"; {failures} log read(s) failed (HTTP {', '.join(statuses)})"
    data = {"logs": logs, "failed": failures, "findings": [f.to_dict() for f in findings]}
    return _result(
        read > 0,
        message if read else f"could not read logs: {failures} read(s) failed (HTTP {', '.join(statuses)})",
        data,
    )


def _describe_unhealthy(api: KubeApi, reading: Reading, snapshot: Snapshot) -> dict:
    described, failures = [], 0
    for pod in _unhealthy_pods(snapshot):
        try:
            item = api.call_json(
                Request("get", "pods", pod.namespace), "GET", resource_path("pods", pod.namespace, pod.name)
            )
        except KubeRequestError as err:
            failures += 1
            described.append({"pod": f"{pod.namespace}/{pod.name}", "error": str(err), "status": err.status})
            continue
        status = item.get("status") or {}
        events = reading.inventory.events_for("Pod", pod.namespace, pod.name)
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
                        "message": one_line(e.get("message", "")),
                    }
                    for e in events[:MAX_ITEMS]
                ],
            }
        )
    if not described:
        return _result(False, "no unhealthy pods to describe", {"pods": []})
    read = len(described) - failures
    message = f"described {read} unhealthy pod(s)" + (f"; {failures} read(s) failed" if failures else "")
    return _result(read > 0, message, {"pods": described, "failed": failures})


def _top_nodes(reading: Reading, snapshot: Snapshot) -> dict:
    usage = reading.inventory.node_usage
    if not usage:
        why = next((d for d in reading.degraded if d.startswith("metrics.k8s.io")), "no node metrics")
        return _result(False, why, {"available": False})
    nodes = {n.name: n for n in snapshot.nodes}
    rows = []
    for name, values in usage.items():
        node = nodes.get(name)
        cpu, memory = quantity(values.get("cpu")), quantity(values.get("memory"))
        row = {"node": name, "cpu_cores": round(cpu, 3), "memory_bytes": int(memory)}
        if node and node.cpu_allocatable > 0 and node.memory_allocatable > 0:
            row["cpu_percent"] = round(100 * cpu / node.cpu_allocatable, 1)
            row["memory_percent"] = round(100 * memory / node.memory_allocatable, 1)
        rows.append(row)
    rows.sort(key=lambda r: r.get("cpu_percent", 0.0), reverse=True)
    return _result(True, f"usage of {len(rows)} nodes", {"available": True, "nodes": rows[:MAX_ITEMS]})


def _top_pods(api: KubeApi, scope, snapshot: Snapshot) -> dict:
    rows = []
    try:
        for namespace in scope:
            items = api.list_pages(
                Request("list", "pods.metrics.k8s.io", namespace),
                resource_path("pods", namespace, group="metrics.k8s.io", version="v1beta1"),
            )
            for item in items:
                containers = item.get("containers") or ()
                rows.append(
                    {
                        "pod": f"{namespace_of(item)}/{name_of(item)}",
                        "cpu_cores": round(sum(quantity((c.get("usage") or {}).get("cpu")) for c in containers), 3),
                        "memory_bytes": int(sum(quantity((c.get("usage") or {}).get("memory")) for c in containers)),
                    }
                )
    except KubeRequestError as err:
        why = "API not served (is metrics-server installed?)" if err.status == 404 else str(err)
        return _result(False, f"metrics.k8s.io unavailable: {why}", {"available": False, "status": err.status})
    rows.sort(key=lambda r: (r["cpu_cores"], r["memory_bytes"]), reverse=True)
    cpu_total = sum(n.cpu_allocatable for n in snapshot.nodes)
    memory_total = sum(n.memory_allocatable for n in snapshot.nodes)
    usage = {}
    if rows and cpu_total > 0 and memory_total > 0:
        usage = {
            "cpu_percent": min(100.0, 100.0 * sum(r["cpu_cores"] for r in rows) / cpu_total),
            "memory_percent": min(100.0, 100.0 * sum(r["memory_bytes"] for r in rows) / memory_total),
        }
    return _result(
        True,
        f"usage of {len(rows)} pods (top {min(len(rows), MAX_ITEMS)} by cpu)",
        {"available": True, "total": len(rows), **usage, "pods": rows[:MAX_ITEMS]},
    )


def _get_quotas(reading: Reading) -> dict:
    if (failed := _unreadable(reading, "resourcequotas")) is not None:
        return failed
    rows = []
    for quota in reading.inventory.items("resourcequotas"):
        status = quota.get("status") or {}
        used = status.get("used") or {}
        resources = []
        for resource, hard in sorted((status.get("hard") or {}).items()):
            value = used.get(resource, "0")
            resources.append(
                {"resource": resource, "used": value, "hard": hard, "at_limit": quantity(value) >= quantity(hard)}
            )
        rows.append({"quota": f"{namespace_of(quota)}/{name_of(quota)}", "resources": resources})
    at_limit = sum(1 for q in rows for r in q["resources"] if r["at_limit"])
    return _result(
        True,
        f"{len(rows)} resource quotas, {at_limit} resource(s) at their limit",
        {"total": len(rows), "quotas": rows[:MAX_ITEMS]},
    )
