"""HorizontalPodAutoscaler analyzer: conditions False, scaling limited, a missing scale target, no requests."""

from rl.findings import CRITICAL, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, name_of, namespace_of, one_line

KIND = "HorizontalPodAutoscaler"
NEEDS = ("horizontalpodautoscalers",)
REASONS = VOCABULARY[KIND]
TARGETS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "ReplicaSet": "replicasets"}


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for hpa in inv.items("horizontalpodautoscalers"):
        namespace, name = namespace_of(hpa), name_of(hpa)
        spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
        for condition in status.get("conditions") or ():
            kind, state = condition.get("type"), condition.get("status")
            text = one_line(condition.get("message", ""))
            evidence = (f"condition {kind}={state} ({condition.get('reason', '')})",)
            since = condition.get("lastTransitionTime")
            if kind in ("AbleToScale", "ScalingActive") and state == "False":
                findings.append(
                    Finding(KIND, namespace, name, kind, f"{kind} is False: {text}", evidence, CRITICAL, "", since)
                )
            elif kind == "ScalingLimited" and state == "True":
                at_floor = condition.get("reason") == "TooFewReplicas" and status.get("desiredReplicas") == spec.get(
                    "minReplicas", 1
                )
                if not at_floor:
                    findings.append(
                        Finding(
                            KIND,
                            namespace,
                            name,
                            "ScalingLimited",
                            f"scaling limited: {text}",
                            evidence,
                            WARNING,
                            "",
                            since,
                        )
                    )
        ref = spec.get("scaleTargetRef") or {}
        resource = TARGETS.get(ref.get("kind", ""))
        if resource is None or not inv.has(resource):
            continue
        target = inv.get(resource, namespace, ref.get("name", ""))
        if target is None:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "ScaleTargetNotFound",
                    f"scale target {ref.get('kind')}/{ref.get('name')} does not exist",
                    (f"spec.scaleTargetRef {ref.get('kind')}/{ref.get('name')}",),
                    CRITICAL,
                )
            )
            continue
        uses_resources = any(m.get("type") in ("Resource", "ContainerResource") for m in spec.get("metrics") or ()) or (
            not spec.get("metrics") and spec.get("targetCPUUtilizationPercentage") is not None
        )
        containers = (((target.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or ()
        missing = [c.get("name") for c in containers if not (c.get("resources") or {}).get("requests")]
        # Every container without requests: utilization cannot be computed at all. (One missing shows
        # as ScalingActive=False on a live HPA, which the conditions above report.)
        if uses_resources and containers and len(missing) == len(containers):
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "NoResourceRequests",
                    f"scales on resource use but {ref.get('kind')}/{ref.get('name')} containers {', '.join(missing)} set no requests",
                    tuple(f"container {c}: no resources.requests" for c in missing),
                    WARNING,
                )
            )
    return findings
