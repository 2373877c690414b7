"""Node analyzer: NotReady, pressure and network conditions, other conditions reported True, cordons."""

from rl.kube.findings import CRITICAL, WARNING, Finding
from rl.kube.inventory import Inventory, name_of, one_line

KIND = "Node"
NEEDS = ("nodes",)
PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure")
KNOWN = ("Ready", *PRESSURE, "NetworkUnavailable")
IGNORED = ("EtcdIsVoter",)  # k3s reports this True on healthy nodes
REASONS = ("NotReady", *PRESSURE, "NetworkUnavailable", "NodeCondition", "Cordoned")


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
