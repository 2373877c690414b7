"""Remediation actions: server-side dry runs (`dryRun=All`) unless the write policy allows the write.

Each result says what changed or would change (`changes`), what the API server refused and why
(`refused`: a PodDisruptionBudget's 429, a missing permission), and what was left alone
(`skipped`). Targets come from `rl.kube.targets`. `sent` holds every write already sent in this run
(verb, object and body): an identical write is never sent twice, dry run or not.
"""

import json

from rl.actions import ClusterAction
from rl.kube import targets
from rl.kube.connection import RETRYABLE_STATUSES, KubeApi, Request, resource_path
from rl.kube.errors import KubePermissionError, KubeRequestError
from rl.kube.health import Snapshot
from rl.kube.policy import WritePolicy

DRY_RUN = "All"


class _Outcome:
    def __init__(self, action: ClusterAction, target: str | None, sent: set[str]):
        self.action = action
        self.sent = sent
        self.data = {"target": target, "dry_run": True, "changes": [], "refused": [], "skipped": []}

    def change(self, obj: str, change: str, dry_reason: str, response: dict | None = None) -> None:
        entry = {"object": obj, "change": change, "dry_run": bool(dry_reason)}
        if dry_reason:
            entry["why_dry_run"] = dry_reason
        else:
            self.data["dry_run"] = False
        if response is not None:
            entry["server"] = response
        self.data["changes"].append(entry)

    def refuse(self, obj: str, reason: str) -> None:
        self.data["refused"].append({"object": obj, "reason": reason})

    def skip(self, obj: str, reason: str) -> None:
        self.data["skipped"].append({"object": obj, "reason": reason})

    def result(self, summary: str) -> dict:
        changes, refused = self.data["changes"], self.data["refused"]
        verb_note = summary
        reasons = sorted({c["why_dry_run"] for c in changes if c["dry_run"]})
        if reasons:
            verb_note += f" (dry run: {'; '.join(reasons)})"
        if refused:
            verb_note += f"; {len(refused)} refused: " + "; ".join(f"{r['object']}: {r['reason']}" for r in refused[:3])
        return {"success": bool(changes), "message": verb_note, "data": self.data}


def run_remediation(
    action: ClusterAction, api: KubeApi, snapshot: Snapshot, policy: WritePolicy, sent: set[str] | None = None
) -> dict:
    sent = sent if sent is not None else set()
    if action == ClusterAction.RESTART_FAILED_PODS:
        return _restart_failed_pods(api, snapshot, policy, sent)
    if action == ClusterAction.SCALE_UP_DEPLOYMENT:
        target = targets.deployment_to_scale_up(snapshot.deployments, policy.may_target)
        return _scale(api, policy, sent, action, target, +1, "no deployment has unavailable replicas")
    if action == ClusterAction.SCALE_DOWN_DEPLOYMENT:
        target = targets.deployment_to_scale_down(snapshot.deployments, policy.may_target)
        return _scale(api, policy, sent, action, target, -1, "no fully available deployment has more than one replica")
    if action == ClusterAction.DRAIN_NODE:
        return _drain(api, snapshot, policy, sent)
    if action == ClusterAction.UNCORDON_NODE:
        return _uncordon(api, snapshot, policy, sent)
    raise ValueError(f"{action.name} is not a remediation action")


def write_key(verb: str, obj: str, body) -> str:
    return f"{verb} {obj} {json.dumps(body, sort_keys=True)}"


def _attempt(outcome: _Outcome, obj: str, call, key: str) -> dict | None:
    """Run one write unless an identical one was sent already; record a refusal instead of raising
    for 403/404/429 and other API errors."""
    if key in outcome.sent:
        outcome.skip(obj, "identical write already sent in this run")
        return None
    outcome.sent.add(key)
    try:
        return call()
    except KubePermissionError as err:
        outcome.refuse(obj, str(err))
    except KubeRequestError as err:
        if err.status == 404:
            outcome.skip(obj, "no longer exists")
        elif err.status == 429:
            outcome.refuse(obj, f"eviction refused by a PodDisruptionBudget ({err})")
        else:
            outcome.refuse(obj, str(err))
    return None


def _restart_failed_pods(api: KubeApi, snapshot: Snapshot, policy: WritePolicy, sent: set[str]) -> dict:
    pods = targets.failed_pods_to_restart(snapshot.pods, policy.may_target)
    outcome = _Outcome(
        ClusterAction.RESTART_FAILED_PODS, ", ".join(f"{p.namespace}/{p.name}" for p in pods) or None, sent
    )
    if not pods:
        return outcome.result("no failed pods owned by a ReplicaSet to restart")
    for pod in pods:
        obj = f"pod {pod.namespace}/{pod.name}"
        dry = policy.why_dry(pod.namespace)
        response = _attempt(
            outcome,
            obj,
            lambda pod=pod, dry=dry: api.call_json(
                Request("delete", "pods", pod.namespace),
                "DELETE",
                resource_path("pods", pod.namespace, pod.name),
                {"dryRun": DRY_RUN if dry else None},
            ),
            write_key("delete", obj, None),
        )
        if response is not None:
            outcome.change(obj, f"delete ({pod.problem}); its ReplicaSet {pod.owner_name} starts a new pod", dry)
    done = len(outcome.data["changes"])
    return outcome.result(f"{'would delete' if _all_dry(outcome) else 'deleted'} {done} failed pod(s)")


def _scale(
    api: KubeApi, policy: WritePolicy, sent: set[str], action: ClusterAction, target, step: int, none_reason: str
) -> dict:
    outcome = _Outcome(action, f"{target.namespace}/{target.name}" if target else None, sent)
    if target is None:
        return outcome.result(none_reason)
    replicas = max(1, target.desired + step)
    obj = f"deployment {target.namespace}/{target.name}"
    dry = policy.why_dry(target.namespace)
    response = _attempt(
        outcome,
        obj,
        lambda: api.call_json(
            Request("patch", "deployments/scale", target.namespace),
            "PATCH",
            resource_path("deployments", target.namespace, target.name, "scale", group="apps"),
            {"dryRun": DRY_RUN if dry else None},
            {"spec": {"replicas": replicas}},
        ),
        write_key("patch scale", obj, {"spec": {"replicas": replicas}}),
    )
    if response is not None:
        server_replicas = (response.get("spec") or {}).get("replicas")
        outcome.change(obj, f"replicas {target.desired} -> {replicas}", dry, {"replicas": server_replicas})
    verb = "would scale" if dry else "scaled"
    return outcome.result(f"{verb} {obj} from {target.desired} to {replicas} replicas")


def _all_dry(outcome: _Outcome) -> bool:
    return all(c["dry_run"] for c in outcome.data["changes"])


def _node_dry_reason(policy: WritePolicy) -> str:
    return "" if policy.allow_writes else "read-only: writes not allowed"


def _drain(api: KubeApi, snapshot: Snapshot, policy: WritePolicy, sent: set[str]) -> dict:
    node, why_none = targets.node_to_drain(snapshot.nodes)
    outcome = _Outcome(ClusterAction.DRAIN_NODE, node.name if node else None, sent)
    if node is None:
        return outcome.result(f"nothing to drain: {why_none}")
    obj = f"node {node.name}"
    node_dry = _node_dry_reason(policy)
    cordoned = _attempt(
        outcome,
        obj,
        lambda: api.call_json(
            Request("patch", "nodes"),
            "PATCH",
            resource_path("nodes", name=node.name),
            {"dryRun": DRY_RUN if node_dry else None},
            {"spec": {"unschedulable": True}},
        ),
        write_key("patch", obj, {"spec": {"unschedulable": True}}),
    )
    if cordoned is None:
        return outcome.result(f"could not cordon {obj}")
    outcome.change(obj, "cordon", node_dry)
    pods = api.list_pages(Request("list", "pods"), resource_path("pods"), fieldSelector=f"spec.nodeName={node.name}")
    for pod in pods:
        meta, phase = pod.get("metadata") or {}, (pod.get("status") or {}).get("phase")
        namespace, name = meta.get("namespace", ""), meta.get("name", "?")
        pod_obj = f"pod {namespace}/{name}"
        owners = meta.get("ownerReferences") or ()
        if any(o.get("kind") == "DaemonSet" for o in owners):
            outcome.skip(pod_obj, "DaemonSet pod (stays on the node)")
            continue
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            outcome.skip(pod_obj, "static (mirror) pod")
            continue
        if phase in ("Succeeded", "Failed"):
            continue
        if not policy.may_target(namespace):
            outcome.skip(pod_obj, "namespace kube-system is not in the write allowlist")
            continue
        dry = node_dry or policy.why_dry(namespace)
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        evicted = _attempt(
            outcome,
            pod_obj,
            lambda name=name, namespace=namespace, body=body, dry=dry: api.call_json(
                Request("create", "pods/eviction", namespace),
                "POST",
                resource_path("pods", namespace, name, "eviction"),
                {"dryRun": DRY_RUN if dry else None},
                body,
                retry_statuses=RETRYABLE_STATUSES - {429},
            ),
            write_key("create eviction", pod_obj, body),
        )
        if evicted is not None:
            outcome.change(pod_obj, "evict", dry)
    evictions = sum(1 for c in outcome.data["changes"] if c["change"] == "evict")
    verb = "would drain" if _all_dry(outcome) else "drained"
    return outcome.result(f"{verb} {obj}: cordon and evict {evictions} pod(s)")


def _uncordon(api: KubeApi, snapshot: Snapshot, policy: WritePolicy, sent: set[str]) -> dict:
    node = targets.node_to_uncordon(snapshot.nodes)
    outcome = _Outcome(ClusterAction.UNCORDON_NODE, node.name if node else None, sent)
    if node is None:
        return outcome.result("no cordoned node is Ready and free of pressure")
    obj = f"node {node.name}"
    dry = _node_dry_reason(policy)
    response = _attempt(
        outcome,
        obj,
        lambda: api.call_json(
            Request("patch", "nodes"),
            "PATCH",
            resource_path("nodes", name=node.name),
            {"dryRun": DRY_RUN if dry else None},
            {"spec": {"unschedulable": None}},
        ),
        write_key("patch", obj, {"spec": {"unschedulable": None}}),
    )
    if response is not None:
        outcome.change(obj, "uncordon", dry)
    return outcome.result(f"{'would uncordon' if dry else 'uncordoned'} {obj}")
