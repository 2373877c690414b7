"""ReplicaSet analyzer: pods the controller cannot create (ReplicaFailure, e.g. FailedCreate on a quota)."""

from rl.findings import CRITICAL, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, conditions_of, name_of, namespace_of, one_line

KIND = "ReplicaSet"
NEEDS = ("replicasets",)
REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for rs in inv.items("replicasets"):
        failure = conditions_of(rs).get("ReplicaFailure") or {}
        if failure.get("status") == "True":
            findings.append(
                Finding(
                    KIND,
                    namespace_of(rs),
                    name_of(rs),
                    "FailedCreate",
                    f"cannot create pods: {one_line(failure.get('message', ''))}",
                    (f"condition ReplicaFailure=True ({failure.get('reason', '')})",),
                    CRITICAL,
                    inv.parent(rs),
                    failure.get("lastTransitionTime"),
                )
            )
    return findings
