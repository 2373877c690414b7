"""Pod analyzer: why a pod is not running and ready.

Reads the pod's phase, conditions and container states (init containers too), and the pod's own
events for what the status does not carry (mount and sandbox errors, probe failures).
"""

from datetime import timedelta

from rl.findings import CRITICAL, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, conditions_of, name_of, namespace_of, one_line, parse_time

KIND = "Pod"
NEEDS = ("pods",)

# Waiting reasons that mean the container cannot start (kubelet's names).
START_FAILURES = (
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
)
# Event reasons that keep a pod in ContainerCreating.
CREATE_FAILURES = ("FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox")
RECENT_OOM = timedelta(hours=1)
NOT_READY_GRACE = timedelta(minutes=2)
TERMINATING_GRACE = timedelta(minutes=5)

REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    dead_nodes = {
        name_of(n) for n in inv.items("nodes") if (conditions_of(n).get("Ready") or {}).get("status") != "True"
    }
    findings: list[Finding] = []
    for pod in inv.items("pods"):
        findings.extend(analyze_pod(pod, inv, dead_nodes))
    return findings


def analyze_pod(pod: dict, inv: Inventory, dead_nodes: set[str]) -> list[Finding]:
    namespace, name = namespace_of(pod), name_of(pod)
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName", "")
    parent = inv.parent(pod)
    phase = status.get("phase") or "Unknown"
    found: dict[str, Finding] = {}

    def add(reason, message, severity=CRITICAL, evidence=(), since=None):
        if reason not in found:
            found[reason] = Finding(
                KIND, namespace, name, reason, one_line(message), tuple(evidence), severity, parent, since
            )

    deleted = (pod.get("metadata") or {}).get("deletionTimestamp")
    if deleted and phase not in ("Succeeded", "Failed"):
        where = f" on node {node}" if node else ""
        if node in dead_nodes:
            add(
                "TerminatingOnDeadNode",
                f"pod stuck Terminating{where}, which is NotReady: the kubelet cannot confirm the deletion",
                evidence=(f"deletionTimestamp {deleted}", f"node {node} NotReady"),
                since=deleted,
            )
        elif (when := parse_time(deleted)) is not None and inv.now - when > TERMINATING_GRACE:
            finalizers = [str(f) for f in (pod.get("metadata") or {}).get("finalizers") or ()]
            why = f"finalizers {', '.join(finalizers)} not removed" if finalizers else "an unresponsive container"
            add(
                "TerminatingStuck",
                f"pod Terminating since {deleted}{where} ({why})",
                WARNING,
                evidence=(f"deletionTimestamp {deleted}",)
                + ((f"finalizers {', '.join(finalizers)}",) if finalizers else ()),
                since=deleted,
            )
        return list(found.values())
    if phase == "Succeeded":
        return []
    if phase == "Unknown":
        add(
            "PhaseUnknown",
            f"pod phase Unknown: node {node or '?'} stopped reporting its status",
            evidence=(f"node {node}",) if node else (),
        )
        return list(found.values())
    if phase == "Failed" and status.get("reason") == "Evicted":
        add("Evicted", f"evicted from node {node}: {status.get('message', '')}", WARNING, (f"node {node}",))
        return list(found.values())

    conditions = conditions_of(pod)
    scheduled = conditions.get("PodScheduled") or {}
    if phase == "Pending" and scheduled.get("status") == "False":
        reason = scheduled.get("reason")
        if reason == "Unschedulable":
            message = scheduled.get("message", "no node fits")
            # A pod waiting for its volume is a storage problem, not a lack of room.
            waits_for_volume = "persistentvolumeclaim" in message.lower()
            add(
                "UnboundVolume" if waits_for_volume else "Unschedulable",
                message,
                since=scheduled.get("lastTransitionTime"),
            )
        elif reason == "SchedulingGated":
            gates = [str(g) for g in spec.get("schedulingGates") or ()]
            named = f" {', '.join(gates)}" if gates else ""
            add(
                "SchedulingGated",
                f"pod is blocked from scheduling by scheduling gates{named}: whoever set them has not removed them",
                WARNING,
                evidence=("condition PodScheduled=False (SchedulingGated)",)
                + ((f"spec.schedulingGates{named}",) if gates else ()),
                since=scheduled.get("lastTransitionTime"),
            )

    limits = {c.get("name"): c.get("resources") or {} for c in spec.get("containers") or ()}
    limits.update({c.get("name"): c.get("resources") or {} for c in spec.get("initContainers") or ()})
    statuses = list(status.get("initContainerStatuses") or ()) + list(status.get("containerStatuses") or ())
    events = None
    for container in statuses:
        cname = container.get("name", "?")
        state = container.get("state") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        restarts = int(container.get("restartCount") or 0)
        memory_limit = ((limits.get(cname) or {}).get("limits") or {}).get("memory")
        waiting, terminated, running = state.get("waiting"), state.get("terminated"), state.get("running")
        if waiting is not None:
            reason = waiting.get("reason", "")
            if reason == "CrashLoopBackOff":
                exit_text = _exit(last)
                evidence = (
                    f"container {cname}: waiting CrashLoopBackOff, {restarts} restarts",
                    f"last state {exit_text}",
                )
                if last.get("reason") == "OOMKilled":
                    limit = f"its memory limit {memory_limit}" if memory_limit else "no memory limit (node memory)"
                    add(
                        "OOMKilled",
                        f"container {cname} is OOMKilled at {limit} (CrashLoopBackOff, {restarts} restarts)",
                        evidence=evidence + ((f"limits.memory {memory_limit}",) if memory_limit else ()),
                        since=last.get("finishedAt"),
                    )
                else:
                    add(
                        "CrashLoopBackOff",
                        f"container {cname} keeps crashing ({exit_text}, {restarts} restarts)",
                        evidence=evidence,
                        since=last.get("finishedAt"),
                    )
            elif reason in START_FAILURES:
                add(
                    reason,
                    f"container {cname} cannot start: {waiting.get('message') or reason}",
                    evidence=(f"container {cname}: waiting {reason}",),
                )
            elif reason in ("ContainerCreating", "PodInitializing") and phase == "Pending":
                events = events if events is not None else inv.events_for("Pod", namespace, name)
                latest = next((e for e in events if e.get("type") == "Warning"), None)
                if latest is not None and latest.get("reason") in CREATE_FAILURES:
                    add(
                        latest["reason"],
                        f"stuck in {reason}: {latest.get('message', '')}",
                        evidence=(f"event {latest['reason']} x{latest.get('count') or 1}",),
                        since=latest.get("firstTimestamp"),
                    )
        elif terminated is not None and int(terminated.get("exitCode") or 0) != 0:
            if terminated.get("reason") == "OOMKilled":
                limit = f"its memory limit {memory_limit}" if memory_limit else "no memory limit (node memory)"
                add(
                    "OOMKilled",
                    f"container {cname} was OOMKilled at {limit}",
                    evidence=(f"container {cname}: {_exit(terminated)}",),
                    since=terminated.get("finishedAt"),
                )
            else:
                add(
                    "ContainerExited",
                    f"container {cname} terminated: {_exit(terminated)}",
                    evidence=(f"container {cname}: {_exit(terminated)}",),
                    since=terminated.get("finishedAt"),
                )
        elif running is not None and phase == "Running":
            if last.get("reason") == "OOMKilled" and _within(inv, last.get("finishedAt"), RECENT_OOM):
                limit = f"its memory limit {memory_limit}" if memory_limit else "no memory limit"
                add(
                    "OOMKilled",
                    f"container {cname} running again after an OOMKill at {limit} ({restarts} restarts)",
                    WARNING,
                    evidence=(f"container {cname}: last state {_exit(last)}",),
                    since=last.get("finishedAt"),
                )
            if not container.get("ready"):
                events = events if events is not None else inv.events_for("Pod", namespace, name)
                probe = next((e for e in events if e.get("reason") == "Unhealthy" and e.get("type") == "Warning"), None)
                ready = conditions.get("Ready") or {}
                if probe is not None and "eadiness" in (probe.get("message") or ""):
                    add(
                        "ReadinessProbeFailed",
                        f"container {cname} is running but not ready: {probe.get('message', '')}",
                        WARNING,
                        evidence=(f"event Unhealthy x{probe.get('count') or 1}",),
                        since=ready.get("lastTransitionTime"),
                    )
                elif _older(inv, ready.get("lastTransitionTime"), NOT_READY_GRACE):
                    add(
                        "NotReady",
                        f"container {cname} is running but has not been ready since {ready.get('lastTransitionTime')}",
                        WARNING,
                        evidence=(f"condition Ready=False {ready.get('reason', '')}".strip(),),
                        since=ready.get("lastTransitionTime"),
                    )
    if phase == "Failed" and not found:
        add("Failed", f"pod failed: {status.get('reason') or 'Failed'} {status.get('message', '')}")
    return list(found.values())


def _exit(terminated: dict) -> str:
    if not terminated:
        return "exit unknown"
    reason = terminated.get("reason") or "Unknown"
    code = terminated.get("exitCode")
    return f"{reason}, exit code {code}" if code is not None else reason


def _within(inv: Inventory, stamp, span: timedelta) -> bool:
    when = parse_time(stamp) if stamp else None
    return when is not None and inv.now - when <= span


def _older(inv: Inventory, stamp, span: timedelta) -> bool:
    when = parse_time(stamp) if stamp else None
    return when is not None and inv.now - when > span
