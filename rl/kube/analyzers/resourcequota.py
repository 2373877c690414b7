"""ResourceQuota analyzer: resources used up to their hard limit (new pods are refused)."""

from rl.findings import REASONS as VOCABULARY
from rl.findings import WARNING, Finding
from rl.kube.inventory import Inventory, name_of, namespace_of, quantity

KIND = "ResourceQuota"
NEEDS = ("resourcequotas",)
REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for quota in inv.items("resourcequotas"):
        status = quota.get("status") or {}
        used = status.get("used") or {}
        full = [
            f"{resource} {used[resource]}/{hard}"
            for resource, hard in sorted((status.get("hard") or {}).items())
            if resource in used and quantity(hard) > 0 and quantity(used[resource]) >= quantity(hard)
        ]
        if full:
            findings.append(
                Finding(
                    KIND,
                    namespace_of(quota),
                    name_of(quota),
                    "QuotaExceeded",
                    f"at its hard limit: {', '.join(full)}; new pods in the namespace are refused",
                    tuple(f"used {f}" for f in full),
                    WARNING,
                )
            )
    return findings
