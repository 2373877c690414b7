"""Which object each remediation action targets, chosen from the last observation (pure).

The rules (also in docs/diagnose.md, "Acting on a real cluster"):
- RESTART_FAILED_PODS: pods counted as failed (CrashLoopBackOff, Failed, Evicted) whose controller
  is a ReplicaSet, so deleting them makes the ReplicaSet start a fresh pod; at most 20 per step.
- SCALE_UP_DEPLOYMENT: the deployment with the most unavailable replicas (ties: namespace/name);
  one more replica.
- SCALE_DOWN_DEPLOYMENT: among fully available deployments with more than one replica, the one
  with the most replicas (ties: namespace/name); one fewer replica, never below one.
- DRAIN_NODE: a schedulable NotReady node, else a schedulable Ready node under Memory/Disk/PID
  pressure (ties: name); never the last schedulable Ready node.
- UNCORDON_NODE: a cordoned node that is Ready and under no pressure (ties: name).
Namespaces the caller may not touch (kube-system unless listed) are never targets. Objects that
carry intent (`rl.kube.intent`: a maintenance cordon, an HPA, a GitOps owner) come last, so that a
remedy picks one only when nothing else qualifies, and is then withheld (`rl.kube.guard`).
"""

from collections.abc import Callable

from rl.kube.health import DeploymentSummary, NodeSummary, PodSummary

MAX_RESTARTS_PER_STEP = 20

# The findings each remedy can act on (one remedy per finding); every other finding needs a human. A
# remedy whose target shows none of its findings is not sent (`rl.kube.guard`). SCALE_DOWN_DEPLOYMENT
# acts on no finding an analyzer reports (over-provisioning shows none), so it is never sent.
REMEDY_FOR: dict[tuple[str, str], str] = {
    ("Pod", "CrashLoopBackOff"): "RESTART_FAILED_PODS",
    ("Pod", "OOMKilled"): "RESTART_FAILED_PODS",
    ("Pod", "RunContainerError"): "RESTART_FAILED_PODS",
    ("Pod", "ContainerExited"): "RESTART_FAILED_PODS",
    ("Pod", "Failed"): "RESTART_FAILED_PODS",
    ("Pod", "Evicted"): "RESTART_FAILED_PODS",
    ("Deployment", "ReplicasUnavailable"): "SCALE_UP_DEPLOYMENT",
    ("Node", "NotReady"): "DRAIN_NODE",
    ("Node", "MemoryPressure"): "DRAIN_NODE",
    ("Node", "DiskPressure"): "DRAIN_NODE",
    ("Node", "PIDPressure"): "DRAIN_NODE",
    ("Node", "Cordoned"): "UNCORDON_NODE",
}


def failed_pods_to_restart(pods: list[PodSummary], may_touch: Callable[[str], bool]) -> list[PodSummary]:
    chosen = [p for p in pods if p.bucket == "failed" and p.owner_kind == "ReplicaSet" and may_touch(p.namespace)]
    chosen.sort(key=lambda p: (p.namespace, p.name))
    return chosen[:MAX_RESTARTS_PER_STEP]


def deployment_to_scale_up(
    deployments: list[DeploymentSummary], may_touch: Callable[[str], bool]
) -> DeploymentSummary | None:
    candidates = [d for d in deployments if d.unavailable > 0 and d.desired > 0 and may_touch(d.namespace)]
    return min(candidates, key=lambda d: (bool(d.intent), -d.unavailable, d.namespace, d.name), default=None)


def deployment_to_scale_down(
    deployments: list[DeploymentSummary], may_touch: Callable[[str], bool]
) -> DeploymentSummary | None:
    candidates = [d for d in deployments if d.problem is None and d.desired > 1 and may_touch(d.namespace)]
    return min(candidates, key=lambda d: (bool(d.intent), -d.desired, d.namespace, d.name), default=None)


def node_to_drain(nodes: list[NodeSummary]) -> tuple[NodeSummary | None, str]:
    """The node to drain and, when there is none, why. A node taken out on purpose is a candidate
    only after the schedulable ones (and is then withheld, not drained)."""
    candidates = [n for n in nodes if n.schedulable or n.intent]
    not_ready = sorted((n for n in candidates if not n.ready), key=_intent_last)
    if not_ready:
        return not_ready[0], ""
    pressured = sorted((n for n in candidates if n.ready and n.pressure), key=_intent_last)
    if not pressured:
        return None, "no schedulable node is NotReady or under pressure"
    ready_count = sum(1 for n in nodes if n.schedulable and n.ready)
    if ready_count <= 1 and not pressured[0].intent:
        return None, f"node {pressured[0].name} is under pressure but is the last schedulable Ready node"
    return pressured[0], ""


def node_to_uncordon(nodes: list[NodeSummary]) -> NodeSummary | None:
    candidates = [n for n in nodes if not n.schedulable and n.ready and not n.pressure]
    return min(candidates, key=_intent_last, default=None)


def _intent_last(node: NodeSummary) -> tuple[bool, str]:
    return bool(node.intent), node.name


def target_of(action, snapshot, policy) -> str | None:
    """The object a remedy would act on now ("ns/name", a node name, or the pods' names); None when
    it has nothing to act on. The backend keys "do not retry" on (action, this target)."""
    from rl.actions import ClusterAction

    if action == ClusterAction.RESTART_FAILED_PODS:
        pods = failed_pods_to_restart(snapshot.pods, policy.may_target)
        return ",".join(f"{p.namespace}/{p.name}" for p in pods) or None
    if action == ClusterAction.SCALE_UP_DEPLOYMENT:
        deployment = deployment_to_scale_up(snapshot.deployments, policy.may_target)
    elif action == ClusterAction.SCALE_DOWN_DEPLOYMENT:
        deployment = deployment_to_scale_down(snapshot.deployments, policy.may_target)
    elif action == ClusterAction.DRAIN_NODE:
        node = node_to_drain(snapshot.nodes)[0]
        return node.name if node else None
    elif action == ClusterAction.UNCORDON_NODE:
        node = node_to_uncordon(snapshot.nodes)
        return node.name if node else None
    else:
        return None
    return f"{deployment.namespace}/{deployment.name}" if deployment else None
