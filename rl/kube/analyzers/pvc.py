"""PersistentVolumeClaim analyzer: claims Pending (with the provisioner's reason) or Lost."""

from rl.findings import CRITICAL, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, name_of, namespace_of, one_line

KIND = "PersistentVolumeClaim"
NEEDS = ("persistentvolumeclaims",)
REASONS = VOCABULARY[KIND]


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for pvc in inv.items("persistentvolumeclaims"):
        namespace, name = namespace_of(pvc), name_of(pvc)
        phase = (pvc.get("status") or {}).get("phase", "Pending")
        klass = (pvc.get("spec") or {}).get("storageClassName")
        if phase == "Pending":
            evidence = [f"status.phase {phase}"]
            latest = next((e for e in inv.events_for(KIND, namespace, name) if e.get("type") == "Warning"), None)
            if latest is not None:
                why = f"{latest.get('reason')}: {one_line(latest.get('message', ''))}"
                evidence.append(f"event {latest.get('reason')} x{latest.get('count') or 1}")
            elif klass and inv.has("storageclasses") and inv.get("storageclasses", "", klass) is None:
                why = f"storage class {klass} does not exist"
            else:
                continue  # WaitForFirstConsumer, or provisioning in progress: not a problem yet
            findings.append(
                Finding(KIND, namespace, name, "Pending", f"claim not bound: {why}", tuple(evidence), CRITICAL)
            )
        elif phase == "Lost":
            volume = (pvc.get("spec") or {}).get("volumeName", "?")
            findings.append(
                Finding(
                    KIND, namespace, name, "Lost", f"claim lost its volume {volume}", ("status.phase Lost",), CRITICAL
                )
            )
    return findings
