"""`Inventory`: every object one observation read, each list read once, and the indexes analyzers share.

Pods are trimmed as their pages arrive (`trim_pod`): a 5,000-pod cluster is held as the few fields
the analyzers use, not as full objects. A list that could not be read is named in `unreadable`, and
analyzers that need it are skipped (a missing list must never read as "no problem").
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kubernetes.utils import parse_quantity


@dataclass
class Inventory:
    now: datetime
    event_window: timedelta = timedelta(minutes=15)
    lists: dict[str, list[dict]] = field(default_factory=dict)  # resource -> items
    unreadable: dict[str, str] = field(default_factory=dict)  # resource -> why
    secrets: dict[tuple[str, str], bool | None] = field(default_factory=dict)  # (ns, name) -> exists; None unknown
    node_usage: dict[str, dict] = field(default_factory=dict)  # node name -> metrics.k8s.io usage
    _cache: dict = field(default_factory=dict, repr=False)

    def items(self, resource: str) -> list[dict]:
        return self.lists.get(resource, [])

    def has(self, *resources: str) -> bool:
        return all(r in self.lists for r in resources)

    # -- indexes (built once per observation) ----------------------------------------------------

    def _index(self, name: str, build):
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def by_name(self, resource: str) -> dict[tuple[str, str], dict]:
        return self._index(
            f"by_name:{resource}", lambda: {(namespace_of(o), name_of(o)): o for o in self.items(resource)}
        )

    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        return self.by_name(resource).get((namespace, name))

    def pods_in(self, namespace: str) -> list[dict]:
        def build():
            index = defaultdict(list)
            for pod in self.items("pods"):
                index[namespace_of(pod)].append(pod)
            return index

        return self._index("pods_in", build).get(namespace, [])

    def pods_on(self, node: str) -> list[dict]:
        def build():
            index = defaultdict(list)
            for pod in self.items("pods"):
                index[(pod.get("spec") or {}).get("nodeName", "")].append(pod)
            return index

        return self._index("pods_on", build).get(node, [])

    def events_for(self, kind: str, namespace: str, name: str) -> list[dict]:
        """Every event about the object (any age), newest first."""

        def build():
            index = defaultdict(list)
            for event in self.items("events"):
                obj = event.get("involvedObject") or event.get("regarding") or {}
                index[(obj.get("kind", ""), obj.get("namespace") or "", obj.get("name", ""))].append(event)
            for events in index.values():
                events.sort(key=lambda e: event_time(e) or datetime.min.replace(tzinfo=UTC), reverse=True)
            return index

        return self._index("events_for", build).get((kind, namespace, name), [])

    def recent(self, event: dict) -> bool:
        when = event_time(event)
        return when is not None and when >= self.now - self.event_window

    def owner_chain(self, obj: dict) -> list[tuple[str, str]]:
        """The controllers above `obj`, nearest first: [("ReplicaSet", "cart-7f9c"), ("Deployment", "cart")]."""
        chain, namespace, current, seen = [], namespace_of(obj), obj, set()
        while True:
            owner = controller_of(current)
            if owner is None or owner in seen:
                return chain
            seen.add(owner)
            chain.append(owner)
            resource = CONTROLLER_RESOURCES.get(owner[0])
            current = self.get(resource, namespace, owner[1]) if resource else None
            if current is None:
                return chain

    def parent(self, obj: dict) -> str:
        """The top controller as k8sgpt's parentObject names it ("Deployment/cart"), "" if none."""
        chain = self.owner_chain(obj)
        return f"{chain[-1][0]}/{chain[-1][1]}" if chain else ""


CONTROLLER_RESOURCES = {
    "ReplicaSet": "replicasets",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "Job": "jobs",
    "CronJob": "cronjobs",
}


def trim_pod(pod: dict) -> dict:
    """The fields of a pod the analyzers use (a full pod is 10-20 times larger)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    keep_meta = (
        "name",
        "namespace",
        "labels",
        "ownerReferences",
        "deletionTimestamp",
        "creationTimestamp",
        "finalizers",
    )
    return {
        "metadata": {k: meta[k] for k in keep_meta if k in meta},
        "spec": {
            "nodeName": spec.get("nodeName", ""),
            "containers": [_trim_container(c) for c in spec.get("containers") or ()],
            "initContainers": [_trim_container(c) for c in spec.get("initContainers") or ()],
            "schedulingGates": [g.get("name", "") for g in spec.get("schedulingGates") or ()],
            "claims": [
                v["persistentVolumeClaim"]["claimName"]
                for v in spec.get("volumes") or ()
                if (v.get("persistentVolumeClaim") or {}).get("claimName")
            ],
        },
        "status": {
            k: status[k]
            for k in ("phase", "reason", "message", "conditions", "containerStatuses", "initContainerStatuses")
            if k in status
        },
    }


def _trim_container(container: dict) -> dict:
    return {
        "name": container.get("name", ""),
        "resources": container.get("resources") or {},
        "readinessProbe": bool(container.get("readinessProbe")),
    }


def name_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "?")


def namespace_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("namespace") or ""


def labels_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def controller_of(obj: dict) -> tuple[str, str] | None:
    for owner in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if owner.get("controller"):
            return owner.get("kind", ""), owner.get("name", "")
    return None


def conditions_of(obj: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or ()}


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels. An empty selector matches all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or ()
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def event_time(event: dict) -> datetime | None:
    series = event.get("series") or {}
    for value in (
        event.get("lastTimestamp"),
        series.get("lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        if value:
            return parse_time(value)
    return None


def parse_time(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, AttributeError):
        return None


def quantity(value) -> float:
    """A Kubernetes quantity ("250m", "16Gi", "4") as a float; 0.0 when absent or malformed."""
    if value in (None, ""):
        return 0.0
    try:
        return float(parse_quantity(value))
    except (ValueError, TypeError):
        return 0.0


def one_line(text) -> str:
    return " ".join(str(text or "").split())
