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
        cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        planned = planned_maintenance(node)
        if planned:
            findings.append(
                Finding(
                    KIND,
                    "",
                    name,
                    "PlannedMaintenance",
                    f"node is {'cordoned' if cordoned else 'taken out'} on purpose ({planned}): "
                    "leave it to whoever planned it",
                    (("spec.unschedulable=true",) if cordoned else ()) + (planned,),
                    INFO,
                )
            )
        elif cordoned:
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


# Marks of a cordon someone (or a controller) intended: an annotation or label that names maintenance,
# a change ticket or window, or the reason for the cordon; and the taints the cluster autoscaler and
# Karpenter put on nodes they are removing, which count whether or not the node is cordoned (both
# taint it NoSchedule rather than set spec.unschedulable).
MAINTENANCE_WORDS = ("maintenance", "ticket", "change-request", "window", "cordon")
REMOVAL_TAINTS = {
    "ToBeDeletedByClusterAutoscaler": "the cluster autoscaler is removing it",
    "karpenter.sh/disrupted": "Karpenter is disrupting it",
    "karpenter.sh/disruption": "Karpenter is disrupting it",
}


def planned_maintenance(node: dict) -> str:
    """What says a node was taken out on purpose ("" when nothing does): a removal taint on any
    node, a maintenance mark (annotation, label or taint) on a cordoned one."""
    for taint in (node.get("spec") or {}).get("taints") or ():
        key = str(taint.get("key") or "")
        if key in REMOVAL_TAINTS:
            return f"taint {key}: {REMOVAL_TAINTS[key]}"
    if not (node.get("spec") or {}).get("unschedulable"):
        return ""
    metadata = node.get("metadata") or {}
    for where, marks in (("annotation", metadata.get("annotations")), ("label", metadata.get("labels"))):
        for key, value in sorted((marks or {}).items()):
            if any(word in str(key).lower() for word in MAINTENANCE_WORDS):
                return f"{where} {key}={one_line(str(value))}"
    for taint in (node.get("spec") or {}).get("taints") or ():
        if "maintenance" in str(taint.get("key") or "").lower():
            return f"taint {taint.get('key')}"
    return ""
