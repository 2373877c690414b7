"""Service analyzer: a selector that matches no pod, and endpoints that are not ready.

Endpoints come from the Service's EndpointSlices, else its core/v1 Endpoints object (snapshots and
older tooling often carry only those), else the selected pods' Ready condition.
"""

from rl.findings import CRITICAL, WARNING, Finding
from rl.findings import REASONS as VOCABULARY
from rl.kube.inventory import Inventory, conditions_of, labels_of, name_of, namespace_of

KIND = "Service"
NEEDS = ("services", "pods")
REASONS = VOCABULARY[KIND]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def selected_pods(inv: Inventory, service: dict) -> list[dict]:
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return []
    return [p for p in inv.pods_in(namespace_of(service)) if all(labels_of(p).get(k) == v for k, v in selector.items())]


def endpoints(inv: Inventory, service: dict, pods: list[dict]) -> tuple[list[str], list[str]]:
    """(ready, not ready) endpoint targets ("Pod/name" or the address) of the Service."""
    key = (namespace_of(service), name_of(service))
    slices = inv._index("slices", lambda: _by_service(inv.items("endpointslices"))).get(key, [])
    ready, not_ready = [], []
    if not slices:
        legacy = inv.get("endpoints", *key)
        if legacy is not None:
            for subset in legacy.get("subsets") or ():
                ready += [_target(a) for a in subset.get("addresses") or ()]
                not_ready += [_target(a) for a in subset.get("notReadyAddresses") or ()]
            return ready, not_ready
        for pod in pods:
            ok = (conditions_of(pod).get("Ready") or {}).get("status") == "True"
            (ready if ok else not_ready).append(f"Pod/{name_of(pod)}")
        return ready, not_ready
    for item in slices:
        for endpoint in item.get("endpoints") or ():
            ref = endpoint.get("targetRef") or {}
            target = f"{ref['kind']}/{ref['name']}" if ref.get("name") else ",".join(endpoint.get("addresses") or ())
            conditions = endpoint.get("conditions") or {}
            if conditions.get("terminating"):
                continue  # a pod on its way out (evicted, replaced) is not the Service's problem
            (ready if conditions.get("ready", True) is not False else not_ready).append(target)
    return ready, not_ready


def _target(address: dict) -> str:
    ref = address.get("targetRef") or {}
    return f"{ref.get('kind', 'Pod')}/{ref['name']}" if ref.get("name") else address.get("ip", "?")


def _by_service(slices: list[dict]) -> dict:
    index: dict = {}
    for item in slices:
        service = labels_of(item).get(SERVICE_NAME_LABEL)
        if service:
            index.setdefault((namespace_of(item), service), []).append(item)
    return index


def analyze(inv: Inventory) -> list[Finding]:
    findings = []
    for service in inv.items("services"):
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        if spec.get("type") == "ExternalName" or not selector:
            continue  # no selector: endpoints are managed by hand or by another controller
        namespace, name = namespace_of(service), name_of(service)
        wanted = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        pods = selected_pods(inv, service)
        running = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        ready, not_ready = endpoints(inv, service, running)
        if not running:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "NoMatchingPods",
                    f"selector {wanted} matches no running pod: the Service has no endpoints",
                    (f"spec.selector {wanted}", f"{len(pods)} matching pod(s), none running"),
                    CRITICAL,
                )
            )
        elif not ready:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "NoReadyEndpoints",
                    f"none of the {len(running)} selected pod(s) is a ready endpoint: traffic to it fails",
                    tuple(f"not ready: {t}" for t in not_ready[:10]) or (f"spec.selector {wanted}",),
                    CRITICAL,
                )
            )
        elif not_ready:
            findings.append(
                Finding(
                    KIND,
                    namespace,
                    name,
                    "NotReadyEndpoints",
                    f"{len(not_ready)} of {len(ready) + len(not_ready)} endpoints not ready: {', '.join(not_ready[:5])}",
                    tuple(f"not ready: {t}" for t in not_ready[:10]),
                    WARNING,
                )
            )
    return findings
