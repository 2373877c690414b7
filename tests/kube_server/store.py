"""The fake API server's object store: objects by resource, selectors, pagination, patches."""

import base64
import copy
import json
import re
import threading

# (group, version, plural) -> (kind, namespaced, field selectors the real API server accepts)
RESOURCES = {
    ("", "v1", "nodes"): ("Node", False, {"metadata.name", "spec.unschedulable"}),
    ("", "v1", "pods"): (
        "Pod",
        True,
        {
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        },
    ),
    ("", "v1", "events"): (
        "Event",
        True,
        {
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        },
    ),
    ("", "v1", "persistentvolumeclaims"): (
        "PersistentVolumeClaim",
        True,
        {"metadata.name", "metadata.namespace"},
    ),
    ("", "v1", "resourcequotas"): ("ResourceQuota", True, {"metadata.name", "metadata.namespace"}),
    ("", "v1", "namespaces"): ("Namespace", False, {"metadata.name", "status.phase"}),
    ("apps", "v1", "deployments"): ("Deployment", True, {"metadata.name", "metadata.namespace"}),
    ("apps", "v1", "replicasets"): ("ReplicaSet", True, {"metadata.name", "metadata.namespace"}),
    ("apps", "v1", "daemonsets"): ("DaemonSet", True, {"metadata.name", "metadata.namespace"}),
    ("apps", "v1", "statefulsets"): ("StatefulSet", True, {"metadata.name", "metadata.namespace"}),
    ("batch", "v1", "jobs"): ("Job", True, {"metadata.name", "metadata.namespace", "status.successful"}),
    ("batch", "v1", "cronjobs"): ("CronJob", True, {"metadata.name", "metadata.namespace"}),
    ("", "v1", "endpoints"): ("Endpoints", True, {"metadata.name", "metadata.namespace"}),
    ("", "v1", "services"): ("Service", True, {"metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"}),
    ("", "v1", "secrets"): ("Secret", True, {"metadata.name", "metadata.namespace", "type"}),
    ("discovery.k8s.io", "v1", "endpointslices"): (
        "EndpointSlice",
        True,
        {"metadata.name", "metadata.namespace", "addressType"},
    ),
    ("networking.k8s.io", "v1", "ingresses"): ("Ingress", True, {"metadata.name", "metadata.namespace"}),
    ("networking.k8s.io", "v1", "ingressclasses"): ("IngressClass", False, {"metadata.name"}),
    ("networking.k8s.io", "v1", "networkpolicies"): ("NetworkPolicy", True, {"metadata.name", "metadata.namespace"}),
    ("storage.k8s.io", "v1", "storageclasses"): ("StorageClass", False, {"metadata.name"}),
    ("autoscaling", "v2", "horizontalpodautoscalers"): (
        "HorizontalPodAutoscaler",
        True,
        {"metadata.name", "metadata.namespace"},
    ),
    ("policy", "v1", "poddisruptionbudgets"): (
        "PodDisruptionBudget",
        True,
        {"metadata.name", "metadata.namespace"},
    ),
    ("metrics.k8s.io", "v1beta1", "nodes"): ("NodeMetrics", False, {"metadata.name"}),
    ("metrics.k8s.io", "v1beta1", "pods"): ("PodMetrics", True, {"metadata.name", "metadata.namespace"}),
}
KIND_TO_RESOURCE = {kind: key for key, (kind, _, _) in RESOURCES.items()}


class SelectorError(ValueError):
    """A selector the real API server would reject with 400."""


class Store:
    """Thread-safe objects keyed by resource, then (namespace, name), kept in list order."""

    def __init__(self):
        self.lock = threading.RLock()
        self.objects: dict[tuple, dict[tuple[str, str], dict]] = {key: {} for key in RESOURCES}
        self.logs: dict[tuple[str, str, str, bool], str] = {}  # (ns, pod, container, previous) -> text
        self.resource_version = 1000
        self.encoded: dict[int, bytes] = {}  # id(object) -> its JSON, as the API server's cache keeps it

    def put(self, obj: dict, copy_object: bool = True) -> None:
        """Add or replace an object (kubectl-shaped dict with apiVersion and kind); with
        `copy_object=False` the store keeps `obj` itself (the caller hands it over)."""
        key = KIND_TO_RESOURCE.get(obj.get("kind"))
        if key is None:
            raise ValueError(f"fake server does not serve kind {obj.get('kind')!r}")
        if copy_object:
            obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        namespaced = RESOURCES[key][1]
        if namespaced:
            meta.setdefault("namespace", "default")
        with self.lock:
            self.resource_version += 1
            meta["resourceVersion"] = str(self.resource_version)
            meta.setdefault("uid", f"uid-{self.resource_version}")
            old = self.objects[key].get((meta.get("namespace", "") if namespaced else "", meta["name"]))
            self.encoded.pop(id(old), None)
            self.objects[key][(meta.get("namespace", "") if namespaced else "", meta["name"])] = obj

    def get(self, key: tuple, namespace: str, name: str) -> dict | None:
        with self.lock:
            return self.objects[key].get((namespace, name))

    def delete(self, key: tuple, namespace: str, name: str) -> None:
        with self.lock:
            self.encoded.pop(id(self.objects[key].pop((namespace, name), None)), None)
            self.resource_version += 1

    def touch(self, obj: dict) -> None:
        with self.lock:
            self.resource_version += 1
            obj["metadata"]["resourceVersion"] = str(self.resource_version)
            self.encoded.pop(id(obj), None)

    def _encode(self, obj: dict) -> bytes:
        data = self.encoded.get(id(obj))
        if data is None:
            data = self.encoded[id(obj)] = json.dumps(obj, separators=(",", ":")).encode()
        return data

    def list(self, key, namespace, label_selector, field_selector, limit, continue_token) -> bytes:
        """A list response (JSON) shaped like the real one, with limit/continue pagination in key
        order, serialised under the lock so a concurrent write cannot tear it."""
        labels = parse_label_selector(label_selector or "")
        fields = parse_field_selector(field_selector or "", RESOURCES[key][2])
        start = decode_continue(continue_token) if continue_token else None
        with self.lock:
            keys = sorted(self.objects[key])
            version = str(self.resource_version)
            items = []
            next_key = last_key = None
            for object_key in keys:
                if start is not None and object_key <= start:
                    continue
                if namespace and object_key[0] != namespace:
                    continue
                obj = self.objects[key][object_key]
                if not matches_labels(obj, labels) or not matches_fields(obj, fields):
                    continue
                if limit and len(items) == limit:
                    next_key = last_key
                    break
                items.append(obj)
                last_key = object_key
            group, api_version, _ = key
            metadata = {"resourceVersion": version}
            if next_key is not None:
                metadata["continue"] = encode_continue(next_key)
            head = json.dumps(
                {
                    "kind": f"{RESOURCES[key][0]}List",
                    "apiVersion": f"{group}/{api_version}" if group else api_version,
                    "metadata": metadata,
                },
                separators=(",", ":"),
            ).encode()
            return head[:-1] + b',"items":[' + b",".join(self._encode(obj) for obj in items) + b"]}"


def encode_continue(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"start": list(key)}).encode()).decode()


def decode_continue(token: str) -> tuple[str, str]:
    try:
        return tuple(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
    except (ValueError, KeyError, TypeError):
        raise SelectorError(f"continue key is not valid: {token!r}") from None


_SET_EXPR = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def parse_label_selector(text: str) -> list[tuple[str, str, set[str]]]:
    """Equality (=, ==, !=), set (in, notin) and existence (key, !key) requirements."""
    requirements = []
    for part in re.split(r",(?![^(]*\))", text):
        part = part.strip()
        if not part:
            continue
        match = _SET_EXPR.match(part)
        if match:
            requirements.append((match[1], match[2], {v.strip() for v in match[3].split(",") if v.strip()}))
        elif "!=" in part:
            name, value = part.split("!=", 1)
            requirements.append((name.strip(), "!=", {value.strip()}))
        elif "=" in part:
            name, value = part.replace("==", "=").split("=", 1)
            requirements.append((name.strip(), "=", {value.strip()}))
        elif part.startswith("!"):
            requirements.append((part[1:].strip(), "!exists", set()))
        elif re.fullmatch(r"[\w./-]+", part):
            requirements.append((part, "exists", set()))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")
    return requirements


def matches_labels(obj: dict, requirements) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for name, op, values in requirements:
        present = name in labels
        if op in ("=", "in") and (not present or labels[name] not in values):
            return False
        if op in ("!=", "notin") and present and labels[name] in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!exists" and present:
            return False
    return True


def parse_field_selector(text: str, supported: set[str]) -> list[tuple[str, bool, str]]:
    requirements = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        negate = "!=" in part
        name, value = part.split("!=" if negate else ("==" if "==" in part else "="), 1)
        name = name.strip()
        if name not in supported:
            raise SelectorError(f"field label not supported: {name}")
        requirements.append((name, negate, value.strip()))
    return requirements


def matches_fields(obj: dict, requirements) -> bool:
    for path, negate, value in requirements:
        current = obj
        for step in path.split("."):
            current = current.get(step) if isinstance(current, dict) else None
        actual = "" if current is None else (str(current).lower() if isinstance(current, bool) else str(current))
        if (actual == value) == negate:
            return False
    return True


def merge_patch(target: dict, patch: dict) -> dict:
    """RFC 7386 merge patch (also used for strategic merge patches of plain fields)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def json_patch(target: dict, operations: list[dict]) -> dict:
    """RFC 6902 add/replace/remove on object paths (enough for the fields clients patch)."""
    for operation in operations:
        steps = [s.replace("~1", "/").replace("~0", "~") for s in operation["path"].lstrip("/").split("/")]
        parent = target
        for step in steps[:-1]:
            parent = parent.setdefault(step, {})
        if operation["op"] in ("add", "replace"):
            parent[steps[-1]] = copy.deepcopy(operation["value"])
        elif operation["op"] == "remove":
            parent.pop(steps[-1], None)
        else:
            raise SelectorError(f"unsupported json patch op {operation['op']!r}")
    return target
