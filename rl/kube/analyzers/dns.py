"""Cluster DNS analyzer: CoreDNS (k8s-app=kube-dns in kube-system) down or degraded, as one cluster-wide finding."""

from rl.findings import CRITICAL, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, labels_of, name_of

KIND = "ClusterDNS"
NEEDS = ("dns_pods",)
REASONS = VOCABULARY[KIND]


def is_dns_pod(pod: dict) -> bool:
    return (pod.get("metadata") or {}).get("namespace") == "kube-system" and labels_of(pod).get("k8s-app") == "kube-dns"


def _serving(pod: dict) -> bool:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or ()
    return status.get("phase") == "Running" and bool(statuses) and all(c.get("ready") for c in statuses)


def analyze(inv: Inventory) -> list[Finding]:
    pods = [
        p for p in inv.items("dns_pods") if is_dns_pod(p) and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    if not pods:
        return []  # no CoreDNS/kube-dns here (another DNS provider): nothing to judge
    down = [p for p in pods if not _serving(p)]
    if not down:
        return []
    evidence = tuple(f"pod kube-system/{name_of(p)} not ready" for p in down)
    if len(down) == len(pods):
        return [
            Finding(
                KIND,
                "kube-system",
                "kube-dns",
                "DNSDown",
                f"all {len(pods)} CoreDNS pod(s) down: name resolution fails cluster-wide",
                evidence,
                CRITICAL,
            )
        ]
    return [
        Finding(
            KIND,
            "kube-system",
            "kube-dns",
            "DNSDegraded",
            f"{len(down)} of {len(pods)} CoreDNS pods down: some lookups fail or time out",
            evidence,
            WARNING,
        )
    ]
