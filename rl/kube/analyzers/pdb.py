"""PodDisruptionBudget analyzer: budgets that allow no disruption (drains and evictions hang)."""

from rl.findings import REASONS as VOCABULARY
from rl.findings import WARNING, Finding
from rl.kube.inventory import Inventory, name_of, namespace_of, one_line

KIND = "PodDisruptionBudget"
NEEDS = ("poddisruptionbudgets",)
REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for pdb in inv.items("poddisruptionbudgets"):
        namespace, name, status = namespace_of(pdb), name_of(pdb), pdb.get("status") or {}
        condition = next((c for c in status.get("conditions") or () if c.get("type") == "DisruptionAllowed"), None)
        allowed = int(status.get("disruptionsAllowed") or 0)
        expected = int(status.get("expectedPods") or 0)
        blocked = condition.get("status") == "False" if condition else (expected > 0 and allowed < 1)
        if not blocked:
            continue
        selector = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        why = (condition or {}).get("reason") or "no disruption allowed"
        findings.append(
            Finding(
                KIND,
                namespace,
                name,
                "DisruptionsNotAllowed",
                f"{why}: {status.get('currentHealthy', 0)} healthy of {status.get('desiredHealthy', 0)} needed for "
                f"pods {','.join(f'{k}={v}' for k, v in sorted(selector.items())) or '(all)'}; evictions and drains will block",
                (f"status.disruptionsAllowed {allowed}",)
                + (
                    (f"message {one_line(condition.get('message'))}",) if condition and condition.get("message") else ()
                ),
                WARNING,
                "",
                (condition or {}).get("lastTransitionTime"),
            )
        )
    return findings
