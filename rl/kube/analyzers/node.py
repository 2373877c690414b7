"""Node analyzer: NotReady, pressure and network conditions, other conditions reported True, cordons."""

from rl.findings import CRITICAL, INFO, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, name_of, one_line

KIND = "Node"
NEEDS = ("nodes",)
PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure")
KNOWN = ("Ready", *PRESSURE, "NetworkUnavailable")
IGNORED = ("EtcdIsVoter",)  # k3s reports this True on healthy nodes
REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for node in inv.items("nodes"):
        name = name_of(node)
        for condition in (node.get("status") or {}).get("conditions") or ():
            kind, status = condition.get("type", ""), condition.get("status")
            text = one_line(f"{condition.get('reason', '')}: {condition.get('message', '')}").strip(": ")
            evidence = (f"condition {kind}={status} ({condition.get('reason', '')})",)
            since = condition.get("lastTransitionTime")
            if kind == "Ready":
                if status != "True":
                    findings.append(
                        Finding(KIND, "", name, "NotReady", f"node is NotReady ({text})", evidence, CRITICAL, "", since)
                    )
            elif kind in IGNORED:
                continue
            elif status in ("True", "Unknown") and kind in PRESSURE + ("NetworkUnavailable",):
                if status == "Unknown":
                    continue  # a NotReady node reports every condition Unknown; NotReady says it
                severity = CRITICAL if kind == "NetworkUnavailable" else WARNING
                findings.append(
                    Finding(KIND, "", name, kind, f"node has {kind} ({text})", evidence, severity, "", since)
                )
            elif kind not in KNOWN and status == "True":
                findings.append(
                    Finding(
                        KIND,
                        "",
                        name,
                        "NodeCondition",
                        f"node has condition {kind} ({text})",
                        evidence,
                        WARNING,
                        "",
                        since,
                    )
                )
        if (node.get("spec") or {}).get("unschedulable"):
            planned = planned_maintenance(node)
            if planned:
                findings.append(
                    Finding(
                        KIND,
                        "",
                        name,
                        "PlannedMaintenance",
                        f"node is cordoned on purpose ({planned}): leave it to whoever planned it",
                        ("spec.unschedulable=true", planned),
                        INFO,
                    )
                )
            else:
                findings.append(
                    Finding(
                        KIND,
                        "",
                        name,
                        "Cordoned",
                        "node is cordoned (SchedulingDisabled)",
                        ("spec.unschedulable=true",),
                        WARNING,
                    )
                )
    return findings


# Marks of a cordon someone (or a controller) intended: a maintenance annotation, or the taints the
# cluster autoscaler and Karpenter put on nodes they are removing.
MAINTENANCE_TAINTS = ("ToBeDeletedByClusterAutoscaler", "karpenter.sh/disrupted", "karpenter.sh/disruption")


def planned_maintenance(node: dict) -> str:
    """What says a cordoned node was taken out on purpose ("" when nothing does)."""
    metadata = node.get("metadata") or {}
    for key, value in sorted((metadata.get("annotations") or {}).items()):
        if "maintenance" in str(key).lower():
            return f"annotation {key}={one_line(str(value))}"
    for taint in (node.get("spec") or {}).get("taints") or ():
        if taint.get("key") in MAINTENANCE_TAINTS:
            return f"taint {taint.get('key')}"
    return ""
