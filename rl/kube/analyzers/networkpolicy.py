"""NetworkPolicy analyzer: a policy that selects every pod of its namespace, or none."""

from rl.findings import INFO, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, labels_of, name_of, namespace_of, selector_matches

KIND = "NetworkPolicy"
NEEDS = ("networkpolicies", "pods")
REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for policy in inv.items("networkpolicies"):
        namespace, name = namespace_of(policy), name_of(policy)
        selector = (policy.get("spec") or {}).get("podSelector") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            types = ",".join((policy.get("spec") or {}).get("policyTypes") or ["Ingress"])
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "SelectsAllPods",
                    f"applies to every pod in {namespace} ({types})",
                    ("spec.podSelector {}",),
                    INFO,
                )
            )
            continue
        if not any(selector_matches(selector, labels_of(p)) for p in inv.pods_in(namespace)):
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "NoMatchingPods",
                    "podSelector matches no pod: the policy protects nothing",
                    (f"spec.podSelector {selector}",),
                    WARNING,
                )
            )
    return findings
