"""Connecting to a cluster: kubeconfig or in-cluster config, and the one place requests are made.

Every request goes through `KubeApi.call`, which sets the timeout, retries timeouts and 5xx with a
bounded exponential backoff, and turns failures into `KubeError` subclasses. Responses are read as
raw JSON (`_preload_content=False`): turning 5,000 pods into client model objects would cost
seconds and hundreds of megabytes, and the backend only needs a few fields of each.
"""

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from rl.kube.errors import (
    KubeAuthError,
    KubeConfigError,
    KubePermissionError,
    KubeRequestError,
    KubeUnreachableError,
)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_KUBECONFIG = "~/.kube/config"


@dataclass(frozen=True)
class Request:
    """What a request does, in RBAC terms, so a 403 can name the missing permission."""

    verb: str  # get, list, delete, patch, create
    resource: str  # e.g. "pods", "pods/log", "deployments/scale", "nodes.metrics.k8s.io"
    namespace: str | None = None


def load_configuration(kubeconfig: str | None, context: str | None) -> client.Configuration:
    """Build a client configuration: the kubeconfig (argument, then $KUBECONFIG, then
    ~/.kube/config), or the in-cluster service account when running as a pod without one."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    if path is None and os.path.exists(os.path.expanduser(DEFAULT_KUBECONFIG)):
        path = DEFAULT_KUBECONFIG
    configuration = client.Configuration()
    if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        if context:
            raise KubeConfigError(f"--context {context!r} needs a kubeconfig; none found (running in-cluster)")
        try:
            config.load_incluster_config(client_configuration=configuration)
        except ConfigException as err:
            raise KubeConfigError(f"in-cluster config unusable: {_one_line(err)}") from None
        return configuration
    if path is None:
        raise KubeConfigError(
            "no kubeconfig found: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, "
            "or run inside a pod with a service account"
        )
    for part in path.split(os.pathsep):
        expanded = os.path.expanduser(part)
        if part and not os.path.isfile(expanded):
            raise KubeConfigError(f"kubeconfig {part} does not exist")
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=path)
        names = [c["name"] for c in contexts or []]
        if context is not None and context not in names:
            known = ", ".join(names) or "none"
            raise KubeConfigError(f"context {context!r} not found in kubeconfig {path} (contexts: {known})")
        config.load_kube_config(
            config_file=path, context=context, client_configuration=configuration, persist_config=False
        )
    except KubeConfigError:
        raise
    except (ConfigException, ValueError, TypeError, KeyError, OSError) as err:
        raise KubeConfigError(f"kubeconfig {path} unusable: {_one_line(err)}") from None
    except Exception as err:  # noqa: BLE001 - yaml errors and the like from a malformed file
        raise KubeConfigError(f"kubeconfig {path} unusable: {type(err).__name__}: {_one_line(err)}") from None
    if not configuration.host:
        raise KubeConfigError(f"kubeconfig {path}: the context's cluster has no server address")
    return configuration


class KubeApi:
    """The typed API groups plus `call`, which adds timeouts, retries and error mapping."""

    def __init__(
        self,
        configuration: client.Configuration,
        request_timeout: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 0.2,
        page_size: int = 500,
    ):
        # Our own loop does the retrying; urllib3 must not retry behind its back.
        configuration.retries = urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0)
        self.api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.version_api = client.VersionApi(self.api_client)
        self.host = configuration.host
        self.request_timeout = request_timeout
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.page_size = page_size
        self.pages_read = 0

    def close(self) -> None:
        self.api_client.close()

    def call(self, request: Request, fn: Callable, *args, retry_statuses=RETRYABLE_STATUSES, **kwargs):
        """Call `fn` (a typed-API method) and return the raw urllib3 response, or raise KubeError."""
        kwargs["_preload_content"] = False
        kwargs["_request_timeout"] = self.request_timeout
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff_seconds * 2 ** (attempt - 1), 5.0))
            try:
                return fn(*args, **kwargs)
            except ApiException as err:
                status = err.status or 0
                if status == 401:
                    raise KubeAuthError(
                        f"the API server at {self.host} rejected the credentials (401 Unauthorized)"
                    ) from None
                if status == 403:
                    raise KubePermissionError(
                        request.verb, request.resource, request.namespace, _status_message(err)
                    ) from None
                last_problem = f"HTTP {status} {_status_message(err)}".strip()
                if status not in retry_statuses:
                    raise KubeRequestError(f"{_describe(request)}: {last_problem}", status) from None
            except urllib3.exceptions.HTTPError as err:
                if _is_connect_failure(err):
                    last_problem = "unreachable"
                    if attempt == self.retries:
                        raise KubeUnreachableError(
                            f"API server {self.host} unreachable: {_connect_reason(err)}"
                        ) from None
                    continue
                last_problem = "timed out" if _is_timeout(err) else f"connection error ({type(err).__name__})"
        raise KubeRequestError(
            f"{_describe(request)}: {last_problem} after {self.retries + 1} attempts",
            _status_of(last_problem),
        )

    def call_json(self, request: Request, fn: Callable, *args, **kwargs) -> dict:
        response = self.call(request, fn, *args, **kwargs)
        return json.loads(response.data)

    def list_pages(self, request: Request, fn: Callable, *args, **kwargs) -> Iterator[dict]:
        """Yield the items of a list call page by page (limit/continue). A continue token that has
        expired (410) restarts the listing once from the beginning, as client-go's pager does."""
        restarted = False
        token = None
        while True:
            try:
                page = self.call_json(request, fn, *args, limit=self.page_size, _continue=token, **kwargs)
            except KubeRequestError as err:
                if err.status == 410 and token is not None and not restarted:
                    restarted, token = True, None
                    continue
                raise
            self.pages_read += 1
            yield from page.get("items") or ()
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                return

    def server_version(self) -> str:
        data = self.call_json(Request("get", "version"), self.version_api.get_code)
        return data.get("gitVersion", "unknown")


def _status_message(err: ApiException) -> str:
    try:
        body = json.loads(err.body or "{}")
        causes = [c.get("message", "") for c in (body.get("details") or {}).get("causes") or () if c.get("message")]
        return _one_line(" ".join([body.get("message") or err.reason or "", *causes]))
    except (ValueError, AttributeError):
        return _one_line(err.reason or "")


def _describe(request: Request) -> str:
    where = f" in {request.namespace}" if request.namespace else ""
    return f"{request.verb} {request.resource}{where}"


def _status_of(problem: str) -> int | None:
    if problem.startswith("HTTP "):
        try:
            return int(problem.split()[1])
        except (IndexError, ValueError):
            return None
    return None


def _is_connect_failure(err: Exception) -> bool:
    reason = getattr(err, "reason", None) or err
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    ) or isinstance(err, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def _is_timeout(err: Exception) -> bool:
    reason = getattr(err, "reason", None) or err
    return isinstance(reason, urllib3.exceptions.TimeoutError) or isinstance(err, urllib3.exceptions.TimeoutError)


def _connect_reason(err: Exception) -> str:
    reason = getattr(err, "reason", None) or err
    text = str(reason)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return _one_line(text)


def _one_line(value) -> str:
    return " ".join(str(value).split())
