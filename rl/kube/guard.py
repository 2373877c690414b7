"""Whether a remedy may send anything at all: the last check before a write, dry run or not.

A remedy is withheld, and nothing reaches the API server, when (checked in this order):
1. its target carries intent (`rl.kube.intent`): a maintenance cordon or a node being removed, an
   HPA or a GitOps tool that owns the deployment, a PodDisruptionBudget a drain would break; the
   intent becomes an informational finding of the report, with the next step for a human;
2. a scale's target cannot be cleared: the HorizontalPodAutoscalers could not be read;
3. the cluster shows no open finding that any remedy addresses (`rl.kube.targets.REMEDY_FOR`):
   nothing is wrong that a write could fix;
4. its target shows none of the findings this remedy addresses.
A remedy with no target at all sends nothing either (`rl.kube.remediation` says so).
"""

from dataclasses import dataclass

from rl.actions import ClusterAction
from rl.findings import Finding
from rl.kube import targets
from rl.kube.health import Snapshot
from rl.kube.intent import drain_blockers
from rl.kube.inventory import Inventory
from rl.kube.policy import WritePolicy

A = ClusterAction


@dataclass(frozen=True)
class Withheld:
    why: str  # one line: why nothing was sent, and what a human does instead
    findings: tuple[Finding, ...] = ()  # the intent found on the target, for the report


def withheld(
    action: ClusterAction, snapshot: Snapshot, findings: list[Finding], inventory: Inventory, policy: WritePolicy
) -> Withheld | None:
    """Why `action` must send nothing now, or None when it may go ahead (as a write or a dry run)."""
    objects: list[tuple[str, str, str]] = []  # (kind, namespace, name) of what it would act on
    if action == A.RESTART_FAILED_PODS:
        objects = [
            ("Pod", p.namespace, p.name) for p in targets.failed_pods_to_restart(snapshot.pods, policy.may_target)
        ]
    elif action in (A.SCALE_UP_DEPLOYMENT, A.SCALE_DOWN_DEPLOYMENT):
        pick = targets.deployment_to_scale_up if action == A.SCALE_UP_DEPLOYMENT else targets.deployment_to_scale_down
        deployment = pick(snapshot.deployments, policy.may_target)
        if deployment is not None:
            where = f"deployment {deployment.namespace}/{deployment.name}"
            if deployment.intent:
                return _intent(action, where, deployment.intent)
            if not inventory.has("horizontalpodautoscalers"):
                return Withheld(
                    f"{action.name} withheld: HorizontalPodAutoscalers could not be read, so nothing tells whether "
                    f"one owns the replicas of {where}; nothing was sent"
                )
            objects = [("Deployment", deployment.namespace, deployment.name)]
    elif action in (A.DRAIN_NODE, A.UNCORDON_NODE):
        node = targets.node_to_drain(snapshot.nodes)[0] if action == A.DRAIN_NODE else None
        if action == A.UNCORDON_NODE:
            node = targets.node_to_uncordon(snapshot.nodes)
        if node is not None:
            if node.intent:
                return _intent(action, f"node {node.name}", node.intent)
            if action == A.DRAIN_NODE:
                blockers = drain_blockers(inventory, node.name, policy.may_target)
                if blockers:
                    budgets = "; ".join(f"PodDisruptionBudget {b.object_name} {b.message}" for b in blockers)
                    return Withheld(
                        f"DRAIN_NODE withheld: node {node.name} BlocksDrain: {budgets}; nothing was sent: free the "
                        "budget (more healthy replicas elsewhere) or agree the drain with its owner",
                        blockers,
                    )
            objects = [("Node", "", node.name)]
    if not objects:
        return None  # nothing to act on: the remedy itself says so, and sends nothing
    if not any((f.kind, f.reason) in targets.REMEDY_FOR for f in findings):
        return Withheld(
            f"{action.name} withheld: the cluster shows nothing wrong that a remedy addresses; "
            "no write, not even a dry run, was sent"
        )
    addressed = {key for key, remedy in targets.REMEDY_FOR.items() if remedy == action.name}
    shown = {(f.kind, f.namespace, f.name) for f in findings if (f.kind, f.reason) in addressed}
    if not any(obj in shown for obj in objects):
        kind, namespace, name = objects[0]
        what = ", ".join(sorted(r for _, r in addressed)) or "no finding an analyzer reports"
        return Withheld(
            f"{action.name} withheld: {kind} {f'{namespace}/' if namespace else ''}{name} shows nothing it would "
            f"fix (it acts on: {what}); nothing was sent"
        )
    return None


def _intent(action: ClusterAction, where: str, intent: tuple[Finding, ...]) -> Withheld:
    return Withheld(
        f"{action.name} withheld: {where} "
        + "; ".join(f"{f.reason}: {f.message}" for f in intent)
        + "; nothing was sent",
        intent,
    )
