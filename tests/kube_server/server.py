"""A threaded HTTP server speaking the part of the Kubernetes REST API the backend uses.

See README.md in this folder for what it serves and what it does not model.
"""

import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .store import RESOURCES, SelectorError, Store, json_patch, merge_patch

SERVICE_ACCOUNT = "system:serviceaccount:cluster-rl:cluster-rl"


@dataclass
class Fault:
    """An injected failure: `status` (e.g. 503) and/or `delay` seconds, for the next `times` requests
    matching `resource` (e.g. "pods", "pods/eviction", "nodes.metrics.k8s.io") and `verb`."""

    status: int | None = 503
    times: int = 1
    resource: str | None = None
    verb: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Route:
    group: str
    version: str
    plural: str
    namespace: str
    name: str
    subresource: str

    @property
    def key(self):
        return (self.group, self.version, self.plural)

    @property
    def resource(self) -> str:
        """The resource as RBAC and `Fault` name it: plural[/subresource][.group] for non-core groups."""
        base = self.plural + (f"/{self.subresource}" if self.subresource else "")
        return base if self.group in ("", "apps", "policy") else f"{base}.{self.group}"


class FakeKubeServer:
    """Start with `start()` (random port on 127.0.0.1); `url` is what a kubeconfig points at."""

    def __init__(
        self, token: str | None = "test-token", metrics_available: bool = True, tls: tuple[str, str] | None = None
    ):
        self.tls = tls  # (certificate file, key file): serve HTTPS with them
        self.connections_accepted = 0  # TCP connections, TLS handshakes that failed included
        self.store = Store()
        self.token = token
        self.metrics_available = metrics_available
        self.latency = 0.0
        self.faults: list[Fault] = []
        self.forbidden: set[tuple[str, str, str | None]] = set()  # (verb, resource, namespace or None = any)
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._connections: set = set()  # open keep-alive sockets, closed by stop()

    # --- test controls -------------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def forbid(self, verb: str, resource: str, namespace: str | None = None) -> None:
        self.forbidden.add((verb, resource, namespace))

    def requests_for(self, verb: str, resource: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["verb"] == verb and r["resource"] == resource]

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "FakeKubeServer":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _CountingServer(("127.0.0.1", 0), handler)
        self._httpd.fake = self
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def stop(self) -> None:
        """Stop accepting and cut every open connection, as a server that goes away does."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- request handling helpers --------------------------------------------------------------
    def _take_fault(self, verb: str, resource: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.resource in (None, resource) and fault.verb in (None, verb):
                    fault.times -= 1
                    return fault
        return None

    def _is_forbidden(self, verb: str, resource: str, namespace: str) -> bool:
        return (verb, resource, None) in self.forbidden or (
            verb,
            resource,
            namespace or None,
        ) in self.forbidden


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.body = status_body(code, reason, message, details)
        self.code = code


def _parse_route(path: str) -> Route | None:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    plural, name, sub = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
    if (group, version, plural) not in RESOURCES:
        return None
    return Route(group, version, plural, namespace, name, sub)


class _CountingServer(ThreadingHTTPServer):
    """Counts accepted connections; with TLS the handshake happens in accept(), and one that fails
    (a client that does not trust the certificate) ends there, quietly."""

    fake: FakeKubeServer

    def get_request(self):
        with self.fake._lock:
            self.fake.connections_accepted += 1
        return super().get_request()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKubeServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the body waits for the
    # client's delayed ACK (40 ms a request). Real API servers set TCP_NODELAY, and so do we.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # keep test output quiet
        pass

    def setup(self):
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self):
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self):
        self._dispatch("GET")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        try:
            if fake.latency:
                time.sleep(fake.latency)
            if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                raise _ApiError(401, "Unauthorized", "Unauthorized")
            route = _parse_route(split.path)
            verb = _verb(method, route)
            resource = route.resource if route else split.path
            namespace = route.namespace if route else ""
            with fake._lock:
                fake.requests.append(
                    {
                        "method": method,
                        "path": split.path,
                        "query": query,
                        "verb": verb,
                        "resource": resource,
                        "namespace": namespace,
                    }
                )
            fault = fake._take_fault(verb, resource)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status:
                    raise _ApiError(
                        fault.status,
                        "InternalError" if fault.status >= 500 else "TooManyRequests",
                        f"injected fault: HTTP {fault.status}",
                    )
            if route is None:
                self._send_json(200, self._discovery(split.path))
                return
            if route.group == "metrics.k8s.io" and not fake.metrics_available:
                raise _ApiError(404, "NotFound", "the server could not find the requested resource")
            if fake._is_forbidden(verb, resource, namespace):
                group = route.group
                where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                raise _ApiError(
                    403,
                    "Forbidden",
                    f'{resource} is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} '
                    f'resource "{route.plural}" in API group "{group}" {where}',
                    {"kind": route.plural},
                )
            if "dryRun" in query and query["dryRun"] != "All":
                raise _ApiError(400, "BadRequest", f"Invalid dryRun value: {query['dryRun']!r}")
            body = json.loads(raw_body) if raw_body else None
            self._serve(method, route, query, body)
        except _ApiError as err:
            self._send_json(err.code, err.body)
        except SelectorError as err:
            self._send_json(400, status_body(400, "BadRequest", str(err)))
        except (ValueError, KeyError) as err:
            self._send_json(400, status_body(400, "BadRequest", f"bad request: {err}"))

    def _discovery(self, path: str) -> dict:
        fake = self.fake
        path = path.rstrip("/") or "/"
        if path == "/version":
            return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "platform": "linux/amd64"}
        groups = sorted({g for g, _, _ in RESOURCES if g and (g != "metrics.k8s.io" or fake.metrics_available)})
        versions = {g: v for g, v, _ in RESOURCES}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/{versions[g]}", "version": versions[g]}],
                        "preferredVersion": {"groupVersion": f"{g}/{versions[g]}", "version": versions[g]},
                    }
                    for g in groups
                ],
            }
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and parts[1:] == ["v1"]:
            group, version = "", "v1"
        elif parts[:1] == ["apis"] and len(parts) == 3 and parts[1] in groups and versions[parts[1]] == parts[2]:
            group, version = parts[1], parts[2]
        else:
            raise _ApiError(404, "NotFound", "the server could not find the requested resource")
        return {
            "kind": "APIResourceList",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [
                {
                    "name": plural,
                    "namespaced": namespaced,
                    "kind": kind,
                    "verbs": ["get", "list"] + (["delete", "patch"] if group != "metrics.k8s.io" else []),
                }
                for (g, v, plural), (kind, namespaced, _) in RESOURCES.items()
                if g == group and v == version
            ],
        }

    def _serve(self, method: str, route: Route, query: dict, body) -> None:
        store = self.fake.store
        dry_run = query.get("dryRun") == "All"
        if not route.name:
            if method != "GET":
                raise _ApiError(405, "MethodNotAllowed", f"{method} on a collection is not served")
            payload = store.list(
                route.key,
                route.namespace,
                query.get("labelSelector"),
                query.get("fieldSelector"),
                int(query.get("limit") or 0),
                query.get("continue"),
            )
            self._send_bytes(200, payload, "application/json")
            return
        obj = store.get(route.key, route.namespace, route.name)
        if obj is None:
            raise _ApiError(
                404,
                "NotFound",
                f'{route.plural} "{route.name}" not found',
                {"name": route.name, "kind": route.plural},
            )
        if route.subresource == "log" and method == "GET":
            self._send_bytes(200, self._log(route, obj, query).encode(), "text/plain")
        elif route.subresource == "eviction" and method == "POST":
            self._evict(route, obj, dry_run or "All" in ((body or {}).get("deleteOptions") or {}).get("dryRun", []))
        elif route.subresource == "scale":
            self._scale(method, route, obj, body, dry_run)
        elif route.subresource:
            raise _ApiError(404, "NotFound", f"subresource {route.subresource!r} not served")
        elif method == "GET":
            self._send_locked(200, obj)
        elif method == "DELETE":
            if not dry_run:
                store.delete(route.key, route.namespace, route.name)
            self._send_locked(200, obj)
        elif method == "PATCH":
            self._send_json(200, self._patched(route, obj, body, dry_run))
        else:
            raise _ApiError(405, "MethodNotAllowed", f"{method} is not served for {route.plural}")

    def _patched(self, route: Route, obj: dict, body, dry_run: bool) -> dict:
        store = self.fake.store
        content_type = self.headers.get("Content-Type", "")
        with store.lock:
            result = json.loads(json.dumps(obj))
            if "json-patch" in content_type:
                json_patch(result, body)
            elif "merge-patch" in content_type:
                merge_patch(result, body)
            else:
                raise _ApiError(415, "UnsupportedMediaType", f"unsupported patch content type {content_type!r}")
            if not dry_run:
                obj.clear()
                obj.update(result)
                store.touch(obj)
            return result

    def _scale(self, method: str, route: Route, deployment: dict, body, dry_run: bool) -> None:
        store = self.fake.store
        if route.plural != "deployments":
            raise _ApiError(404, "NotFound", "scale is served for deployments only")
        with store.lock:
            replicas = (deployment.get("spec") or {}).get("replicas", 1)
            if method == "PATCH":
                patched = merge_patch({"spec": {"replicas": replicas}}, body or {})
                replicas = int(patched["spec"]["replicas"])
                if not dry_run:
                    deployment.setdefault("spec", {})["replicas"] = replicas
                    store.touch(deployment)
            elif method != "GET":
                raise _ApiError(405, "MethodNotAllowed", f"{method} on deployments/scale is not served")
            meta = deployment["metadata"]
            scale = {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "resourceVersion": meta["resourceVersion"],
                },
                "spec": {"replicas": replicas},
                "status": {"replicas": (deployment.get("status") or {}).get("replicas", 0)},
            }
        self._send_json(200, scale)

    def _evict(self, route: Route, pod: dict, dry_run: bool) -> None:
        store = self.fake.store
        labels = (pod.get("metadata") or {}).get("labels") or {}
        with store.lock:
            budgets = [
                pdb
                for (ns, _), pdb in store.objects[("policy", "v1", "poddisruptionbudgets")].items()
                if ns == route.namespace
                and all(
                    labels.get(k) == v
                    for k, v in (((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}).items()
                )
            ]
            for pdb in budgets:
                status = pdb.setdefault("status", {})
                if int(status.get("disruptionsAllowed", 0)) < 1:
                    name = pdb["metadata"]["name"]
                    wanted, healthy = status.get("desiredHealthy", 0), status.get("currentHealthy", 0)
                    raise _ApiError(
                        429,
                        "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        {
                            "causes": [
                                {
                                    "reason": "DisruptionBudget",
                                    "message": f"The disruption budget {name} needs {wanted} healthy pods "
                                    f"and has {healthy} currently",
                                }
                            ]
                        },
                    )
            if not dry_run:
                for pdb in budgets:
                    pdb["status"]["disruptionsAllowed"] = int(pdb["status"]["disruptionsAllowed"]) - 1
                    store.touch(pdb)
                store.delete(route.key, route.namespace, route.name)
        self._send_json(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})

    def _log(self, route: Route, pod: dict, query: dict) -> str:
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or ()]
        container = query.get("container")
        if not container:
            if len(containers) != 1:
                raise _ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {route.name}, choose one of: {containers}",
                )
            container = containers[0]
        if container not in containers:
            raise _ApiError(400, "BadRequest", f"container {container} is not valid for pod {route.name}")
        previous = query.get("previous") == "true"
        text = self.fake.store.logs.get((route.namespace, route.name, container, previous))
        if text is None:
            if previous:
                raise _ApiError(
                    400,
                    "BadRequest",
                    f'previous terminated container "{container}" in pod "{route.name}" not found',
                )
            text = ""
        tail = query.get("tailLines")
        if tail:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail) :])
        return text

    def _send_locked(self, code: int, obj: dict) -> None:
        with self.fake.store.lock:
            payload = json.dumps(obj).encode()
        self._send_bytes(code, payload, "application/json")

    def _send_json(self, code: int, obj: dict) -> None:
        self._send_bytes(code, json.dumps(obj).encode(), "application/json")

    def _send_bytes(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _verb(method: str, route: Route | None) -> str:
    if method == "GET":
        return "list" if route is not None and not route.name else "get"
    return {"DELETE": "delete", "PATCH": "patch", "POST": "create", "PUT": "update"}.get(method, method.lower())
