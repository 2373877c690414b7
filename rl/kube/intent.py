"""Intent: who owns an object a remedy would write, and why it is in its state (pure, read before any remedy).

A careful SRE checks these before touching an object, and the backend does too (`KubeBackend`): a
remedy that would go against one is withheld, nothing (not even a dry run) reaches the API server,
and the report carries the intent as an informational finding (`rl.findings.INTENT_REASONS`) with
the next step for a human. What counts as intent (docs/real-clusters.md, "Intent the agent honours"):

- Node PlannedMaintenance: a cordon with a maintenance mark, or a node the cluster autoscaler or
  Karpenter is removing (`rl.kube.analyzers.node.planned_maintenance`): no uncordon, no drain.
- Deployment ReplicasOwnedByHPA: a HorizontalPodAutoscaler's scaleTargetRef names it; the HPA sets
  its replicas (a manual scale is undone at the HPA's next sync): no scale; the HPA's bounds are
  a human's call.
- Deployment ManagedByArgoCD / ManagedByFlux: a GitOps tool applies it from Git and reverts a
  change made on the cluster at its next sync: no scale; the report names the Argo CD application
  or the Flux Kustomization / HelmRelease whose Git source to change.
- PodDisruptionBudget BlocksDrain: a drain would need more evictions of a budget's pods than it
  allows now; the eviction API would refuse them one by one and leave the node half drained: no
  drain at all.

Only writes that change declared state are checked against GitOps: deleting a failed pod of a
ReplicaSet (its controller starts a fresh one) changes nothing Git holds.
"""

from rl.findings import INFO, Finding
from rl.kube.inventory import Inventory, labels_of, name_of, namespace_of, one_line, selector_matches

ARGO_INSTANCE = "argocd.argoproj.io/instance"
ARGO_TRACKING = "argocd.argoproj.io/tracking-id"
ARGO_PREFIX = "argocd.argoproj.io/"
APP_INSTANCE = "app.kubernetes.io/instance"
FLUX_OWNERS = (
    ("kustomize.toolkit.fluxcd.io", "Kustomization"),
    ("helm.toolkit.fluxcd.io", "HelmRelease"),
)


def argo_application(obj: dict) -> tuple[str, str] | None:
    """The Argo CD application that manages `obj` and the mark that says so, or None.

    `app.kubernetes.io/instance` (Argo CD's default label tracking) counts only beside another Argo
    CD mark on the object: Helm sets the same label on everything it installs."""
    metadata = obj.get("metadata") or {}
    labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
    tracking = annotations.get(ARGO_TRACKING)
    if tracking:
        app = str(tracking).split(":", 1)[0]
        # Applications outside Argo CD's own namespace are tracked as "<namespace>_<name>".
        return app.replace("_", "/", 1), f"annotation {ARGO_TRACKING}={one_line(str(tracking))}"
    if labels.get(ARGO_INSTANCE):
        return str(labels[ARGO_INSTANCE]), f"label {ARGO_INSTANCE}={labels[ARGO_INSTANCE]}"
    other_marks = [k for k in (*labels, *annotations) if str(k).startswith(ARGO_PREFIX)]
    if labels.get(APP_INSTANCE) and other_marks:
        return str(labels[APP_INSTANCE]), f"label {APP_INSTANCE}={labels[APP_INSTANCE]} beside {sorted(other_marks)[0]}"
    return None


def flux_owner(obj: dict) -> tuple[str, str] | None:
    """The Flux object that applies `obj` ("Kustomization flux-system/apps") and the label that says so, or None."""
    labels = labels_of(obj)
    for group, kind in FLUX_OWNERS:
        name = labels.get(f"{group}/name")
        if name:
            namespace = labels.get(f"{group}/namespace") or namespace_of(obj)
            return f"{kind} {namespace}/{name}", f"label {group}/name={name}"
    return None


def hpas_by_target(inventory: Inventory) -> dict[tuple[str, str], dict]:
    """The HorizontalPodAutoscaler of each Deployment that has one, by (namespace, name)."""
    found = {}
    for hpa in inventory.items("horizontalpodautoscalers"):
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind") == "Deployment":
            found.setdefault((namespace_of(hpa), str(ref.get("name"))), hpa)
    return found


def deployment_intent(deployment: dict, hpas: dict[tuple[str, str], dict]) -> tuple[Finding, ...]:
    """What keeps a scale of `deployment` from being ours to make: its HPA (`hpas_by_target`), its GitOps owner."""
    namespace, name = namespace_of(deployment), name_of(deployment)
    found = []
    hpa = hpas.get((namespace, name))
    if hpa is not None:
        spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        found.append(
            Finding(
                "Deployment",
                namespace,
                name,
                "ReplicasOwnedByHPA",
                f"its replicas are set by HorizontalPodAutoscaler {name_of(hpa)} (min {low}, max {high}, "
                f"desired {status.get('desiredReplicas', '?')}): a manual scale is undone at the HPA's next sync; "
                f"if the HPA is the problem, change its bounds (kubectl edit hpa {name_of(hpa)} -n {namespace})",
                (
                    f"HorizontalPodAutoscaler {namespace}/{name_of(hpa)} spec.scaleTargetRef Deployment/{name}",
                    f"spec.minReplicas {low}, spec.maxReplicas {high}",
                ),
                INFO,
            )
        )
    argo = argo_application(deployment)
    if argo is not None:
        app, mark = argo
        found.append(
            Finding(
                "Deployment",
                namespace,
                name,
                "ManagedByArgoCD",
                f"managed by Argo CD application {app}: a change made on the cluster is reverted at its next "
                f"sync; change it in the Git source of application {app} (argocd app get {app} shows the "
                "repository and path)",
                (mark,),
                INFO,
            )
        )
    flux = flux_owner(deployment)
    if flux is not None:
        owner, mark = flux
        kind, where = owner.split(" ", 1)
        flux_namespace, flux_name = where.split("/", 1)
        found.append(
            Finding(
                "Deployment",
                namespace,
                name,
                "ManagedByFlux",
                f"managed by Flux {owner}: a change made on the cluster is reverted at its next reconcile; change "
                f"it in the Git path that {kind} applies (flux get {kind.lower()} {flux_name} -n {flux_namespace} "
                "shows its source)",
                (mark,),
                INFO,
            )
        )
    return tuple(found)


def drain_blockers(inventory: Inventory, node: str, may_target) -> tuple[Finding, ...]:
    """The PodDisruptionBudgets a drain of `node` would break: more of their pods on it to evict
    than they allow now (`status.disruptionsAllowed`). Pods a drain leaves alone (DaemonSet, mirror,
    finished, in namespaces it may not touch) do not count."""
    evicted: dict[str, list[dict]] = {}
    for pod in inventory.pods_on(node):
        meta = pod.get("metadata") or {}
        if any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or ()):
            continue
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or not may_target(namespace_of(pod)):
            continue
        evicted.setdefault(namespace_of(pod), []).append(pod)
    found = []
    for pdb in inventory.items("poddisruptionbudgets"):
        selector = (pdb.get("spec") or {}).get("selector")
        pods = evicted.get(namespace_of(pdb), ())
        if selector is None or not pods:
            continue  # policy/v1: a null selector selects no pod
        covered = sorted(name_of(p) for p in pods if selector_matches(selector, labels_of(p)))
        allowed = int((pdb.get("status") or {}).get("disruptionsAllowed") or 0)
        if len(covered) <= allowed:
            continue
        found.append(
            Finding(
                "PodDisruptionBudget",
                namespace_of(pdb),
                name_of(pdb),
                "BlocksDrain",
                f"blocks a drain of node {node}: {len(covered)} of its pods there ({', '.join(covered[:5])}) would "
                f"be evicted and it allows {allowed} disruption(s) now; the evictions would be refused and the node "
                "left half drained",
                (f"status.disruptionsAllowed {allowed}", f"pods on node {node}: {', '.join(covered[:5])}"),
                INFO,
            )
        )
    return tuple(found)
