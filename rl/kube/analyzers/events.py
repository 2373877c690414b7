"""Warning events analyzer: recent warnings about objects no other analyzer reports.

Runs after the others: a warning about an object that already has a finding is evidence for it, not
a second problem. Events older than the window are history, not findings, except a Service's.
"""

import re

from rl.findings import REASONS as VOCABULARY
from rl.findings import WARNING, Finding
from rl.kube.inventory import Inventory, one_line

KIND = "Event"
NEEDS = ("events",)
REASONS = VOCABULARY[KIND]
AFTER_OTHERS = True
DNS_PATTERN = re.compile(r"no such host|lookup \S+ on \S+:53|server misbehaving|SERVFAIL", re.IGNORECASE)
NETWORK_PATTERN = re.compile(
    r"i/o timeout|network is unreachable|NetworkNotReady|network plugin (?:is )?not ready|"
    r"failed to set up sandbox container .* network|\bcni\b",
    re.IGNORECASE,
)
MAX_PER_NAMESPACE = 25
# A Service's warnings (a load balancer that cannot be synced, endpoints that cannot be updated) are
# reported whatever their age, as long as the API server keeps them (an hour by default).
ANY_AGE_KINDS = ("Service",)
LISTED_KINDS = {
    "Pod": "pods",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "Job": "jobs",
    "Service": "services",
    "PersistentVolumeClaim": "persistentvolumeclaims",
}


def analyze(inv: Inventory, earlier: list[Finding]) -> list[Finding]:
    reported = {(f.kind, f.namespace, f.name) for f in earlier}
    grouped: dict[tuple, dict] = {}
    for event in inv.items("events"):
        if event.get("type") != "Warning":
            continue
        obj = event.get("involvedObject") or event.get("regarding") or {}
        if obj.get("kind") not in ANY_AGE_KINDS and not inv.recent(event):
            continue
        target = (obj.get("kind") or "Object", obj.get("namespace") or "", obj.get("name", "?"))
        message = one_line(event.get("message") or event.get("note") or "")
        if target in reported and not DNS_PATTERN.search(message):
            continue
        resource = LISTED_KINDS.get(target[0])
        if resource in inv.lists and inv.get(resource, target[1], target[2]) is None:
            continue  # about an object that no longer exists (a replaced pod): history, not a problem
        key = (*target, event.get("reason", ""))
        entry = grouped.setdefault(key, {"count": 0, "message": message, "since": event.get("firstTimestamp")})
        entry["count"] += int(event.get("count") or 1)
    findings = []
    per_namespace: dict[str, int] = {}
    for (kind, namespace, name, reason), entry in sorted(grouped.items(), key=lambda kv: -kv[1]["count"]):
        if per_namespace.get(namespace, 0) >= MAX_PER_NAMESPACE:
            continue
        per_namespace[namespace] = per_namespace.get(namespace, 0) + 1
        message = entry["message"]
        if DNS_PATTERN.search(message):
            finding_reason = "DNSResolutionFailed"
        elif NETWORK_PATTERN.search(message):
            finding_reason = "NetworkError"
        else:
            finding_reason = "WarningEvent"
        findings.append(
            Finding(
                kind,
                namespace,
                name,
                finding_reason,
                f"{reason} (x{entry['count']}): {message}",
                (f"event {reason} x{entry['count']}",),
                WARNING,
                "",
                entry["since"],
            )
        )
    return findings
