"""Deployment analyzer: replicas not ready, a rollout past its progress deadline, replica failures."""

from rl.findings import CRITICAL, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, conditions_of, name_of, namespace_of, one_line

KIND = "Deployment"
NEEDS = ("deployments",)
REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for deployment in inv.items("deployments"):
        namespace, name = namespace_of(deployment), name_of(deployment)
        spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
        desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
        ready = int(status.get("readyReplicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        parent = inv.parent(deployment)
        conditions = conditions_of(deployment)
        progressing = conditions.get("Progressing") or {}
        if progressing.get("status") == "False":
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "ProgressDeadlineExceeded",
                    f"rollout stalled: {one_line(progressing.get('message', ''))}",
                    (f"condition Progressing=False ({progressing.get('reason', '')})",),
                    CRITICAL,
                    parent,
                    progressing.get("lastTransitionTime"),
                )
            )
        failure = conditions.get("ReplicaFailure") or {}
        if failure.get("status") == "True":
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "ReplicaFailure",
                    f"cannot create pods: {one_line(failure.get('message', ''))}",
                    (f"condition ReplicaFailure=True ({failure.get('reason', '')})",),
                    CRITICAL,
                    parent,
                    failure.get("lastTransitionTime"),
                )
            )
        if desired > 0 and (ready < desired or available < desired):
            available_condition = conditions.get("Available") or {}
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "ReplicasUnavailable",
                    f"{min(ready, available)} of {desired} replicas ready and available",
                    (
                        f"spec.replicas {desired}",
                        f"status.readyReplicas {ready}",
                        f"status.availableReplicas {available}",
                    ),
                    CRITICAL if available == 0 else WARNING,
                    parent,
                    available_condition.get("lastTransitionTime")
                    if available_condition.get("status") == "False"
                    else None,
                )
            )
    return findings
