"""StatefulSet analyzer: missing governing Service or storage class, replicas not available."""

from rl.findings import CRITICAL, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, name_of, namespace_of, one_line

KIND = "StatefulSet"
NEEDS = ("statefulsets",)
REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for sts in inv.items("statefulsets"):
        namespace, name = namespace_of(sts), name_of(sts)
        spec, status = sts.get("spec") or {}, sts.get("status") or {}
        parent = inv.parent(sts)
        service = spec.get("serviceName")
        if service and inv.has("services") and inv.get("services", namespace, service) is None:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "ServiceNotFound",
                    f"governing Service {namespace}/{service} does not exist",
                    (f"spec.serviceName {service}",),
                    WARNING,
                    parent,
                )
            )
        if inv.has("storageclasses"):
            for template in spec.get("volumeClaimTemplates") or ():
                klass = (template.get("spec") or {}).get("storageClassName")
                if klass and inv.get("storageclasses", "", klass) is None:
                    findings.append(
                        Finding(
                            KIND,
                            namespace,
                            name,
                            "StorageClassNotFound",
                            f"volumeClaimTemplate {name_of(template)} uses storage class {klass}, which does not exist",
                            (f"storageClassName {klass}",),
                            CRITICAL,
                            parent,
                        )
                    )
        desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
        available = int(status.get("availableReplicas") or status.get("readyReplicas") or 0)
        if desired > 0 and available < desired:
            evidence = [f"spec.replicas {desired}", f"status.availableReplicas {available}"]
            if inv.has("pods"):
                for i in range(desired):
                    pod = next((p for p in inv.pods_in(namespace) if name_of(p) == f"{name}-{i}"), None)
                    if pod is None:
                        evidence.append(f"pod {name}-{i} missing")
                    elif (pod.get("status") or {}).get("phase") != "Running":
                        evidence.append(f"pod {name}-{i} {(pod.get('status') or {}).get('phase')}")
            latest = next((e for e in inv.events_for(KIND, namespace, name) if e.get("type") == "Warning"), None)
            message = f"{available} of {desired} replicas available"
            if latest is not None:
                message += f" ({latest.get('reason')}: {one_line(latest.get('message', ''))})"
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "ReplicasUnavailable",
                    message,
                    tuple(evidence),
                    CRITICAL if available == 0 else WARNING,
                    parent,
                )
            )
    return findings
