"""Root causes: findings that share a cause are grouped under it (beyond k8sgpt, which lists each
object apart). Each rule says which findings a cause explains:

- a NotReady node explains the findings of the pods on it, and theirs;
- cluster DNS down explains CoreDNS's own pods and DNS resolution failures anywhere;
- an unbound PVC explains the pods that mount it, and theirs;
- a ResourceQuota at its limit explains ReplicaSets (and events) refused for exceeding it, and theirs;
- node pressure explains pods evicted from that node;
- a failing pod explains what its logs showed, its controllers' findings (ReplicaSet, Deployment,
  StatefulSet, DaemonSet, Job, CronJob) and those of the Services that select it.

Rules are applied in that order; a finding is explained by the first cause that claims it, and a
finding no cause explains is a root cause of its own. Intent (`rl.findings.INTENT_KEYS`: a maintenance
cordon, an HPA or GitOps owner, a budget that blocks a drain) is never explained away: it stands on
its own, so the report shows it.
"""

from dataclasses import dataclass, field

from rl.findings import INTENT_KEYS, SEVERITIES, Finding
from rl.kube.inventory import Inventory, labels_of, name_of, namespace_of

CONTROLLER_KINDS = ("ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


@dataclass
class RootCause:
    finding: Finding
    affects: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"finding": self.finding.to_dict(), "affects": [f.to_dict() for f in self.affects]}


def group(findings: list[Finding], inventory: Inventory) -> list[RootCause]:
    by_object: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        by_object.setdefault((f.kind, f.namespace, f.name), []).append(f)
    pods = {(namespace_of(p), name_of(p)): p for p in inventory.items("pods")}
    for p in inventory.items("dns_pods"):
        pods.setdefault((namespace_of(p), name_of(p)), p)

    def pod_blast_radius(pod: dict) -> list[Finding]:
        """What its logs showed, the findings of the pod's controllers and of the Services that select it."""
        namespace = namespace_of(pod)
        found = list(by_object.get(("Log", namespace, name_of(pod)), []))
        for kind, name in inventory.owner_chain(pod):
            found += by_object.get((kind, namespace, name), [])
        labels = labels_of(pod)
        for service in inventory.items("services"):
            selector = (service.get("spec") or {}).get("selector") or {}
            if namespace_of(service) == namespace and selector and all(labels.get(k) == v for k, v in selector.items()):
                found += by_object.get(("Service", namespace, name_of(service)), [])
        return found

    def pod_and_radius(pod: dict) -> list[Finding]:
        return by_object.get(("Pod", namespace_of(pod), name_of(pod)), []) + pod_blast_radius(pod)

    rules: list[tuple[Finding, list[Finding]]] = []
    for f in findings:
        if f.kind == "Node" and f.reason == "NotReady":
            rules.append((f, [x for pod in inventory.pods_on(f.name) for x in pod_and_radius(pod)]))
    for f in findings:
        if f.kind == "ClusterDNS":
            coredns = [x for x in findings if x.kind == "Pod" and (x.namespace, x.name) in _dns_pods(inventory)]
            rules.append((f, coredns + [x for x in findings if x.reason == "DNSResolutionFailed"]))
    for f in findings:
        if f.kind == "PersistentVolumeClaim":
            mounting = [
                p for p in inventory.pods_in(f.namespace) if f.name in ((p.get("spec") or {}).get("claims") or ())
            ]
            rules.append((f, [x for pod in mounting for x in pod_and_radius(pod)]))
    for f in findings:
        if f.kind == "ResourceQuota" and f.reason == "QuotaExceeded":
            refused = [
                x
                for x in findings
                if x.namespace == f.namespace and x is not f and f"exceeded quota: {f.name}" in x.message
            ]
            owners = []
            for x in refused:
                if x.kind == "ReplicaSet" and (rs := inventory.get("replicasets", x.namespace, x.name)) is not None:
                    owners += [
                        y
                        for kind, name in inventory.owner_chain(rs)
                        for y in by_object.get((kind, x.namespace, name), [])
                    ]
            rules.append((f, refused + owners))
    for f in findings:
        if f.kind == "Node" and f.reason in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            evicted = [
                x
                for pod in inventory.pods_on(f.name)
                for x in by_object.get(("Pod", namespace_of(pod), name_of(pod)), [])
                if x.reason == "Evicted"
            ]
            rules.append((f, evicted))
    for f in findings:
        if f.kind == "Pod" and (pod := pods.get((f.namespace, f.name))) is not None:
            rules.append((f, pod_blast_radius(pod)))

    cause_of: dict[tuple, Finding] = {}
    for cause, effects in rules:
        for effect in effects:
            if (
                effect.key != cause.key
                and effect.key not in cause_of
                and (effect.kind, effect.reason) not in INTENT_KEYS
            ):
                cause_of[effect.key] = cause

    def root(f: Finding) -> Finding:
        seen = set()
        while f.key in cause_of and f.key not in seen:
            seen.add(f.key)
            f = cause_of[f.key]
        return f

    groups: dict[tuple, RootCause] = {}
    for f in findings:
        top = root(f)
        entry = groups.setdefault(top.key, RootCause(top))
        if f.key != top.key:
            entry.affects.append(f)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(
        groups.values(),
        key=lambda g: (order.get(g.finding.severity, 9), -len(g.affects), g.finding.kind, g.finding.object_name),
    )


def _dns_pods(inventory: Inventory) -> set[tuple[str, str]]:
    return {(namespace_of(p), name_of(p)) for p in inventory.items("dns_pods")}
