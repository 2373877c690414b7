"""Connecting to a cluster: kubeconfig or in-cluster config, and the one place requests are made.

Every request goes through `KubeApi.call`, which sets a connect and a read timeout, retries 5xx
with a bounded exponential backoff, and turns failures into `KubeError` subclasses. A request that
times out is tried once more at most, then the server counts as unreachable (KubeUnreachableError,
fatal): a server that accepts connections and never answers ends a command in a bounded time
instead of letting each of its dozens of reads time out in turn. Answers that are not JSON, or not
the JSON object a request expects, raise KubeResponseError naming the server and the resource.
Every answer is read whole within `ANSWER_DEADLINE_TIMEOUTS` request timeouts and up to a size
limit, so a server that trickles bytes or sends without end cannot hold a command either.
Kubeconfig files are parsed by `rl.safe_yaml` (bounded size, depth and aliases), not by PyYAML
directly; the files they name and their exec plugins are read and run within limits and a deadline
(`rl.kube.credentials`). A certificate the client does not trust, or a failed TLS handshake, is
KubeUnreachableError at once, not retried; `connection_warnings` names what is unsafe about the
connection (insecure-skip-tls-verify, a token over plain http:// off loopback), to be said once,
and urllib3's warning on every unverified request is silenced. Responses are read as
raw JSON: turning 5,000 pods into client model objects would cost seconds and hundreds of
megabytes, and the backend only needs a few fields of each. Requests name their API path
(`resource_path`) and go through the client's `ApiClient` (its authentication, TLS and proxy
settings) without the generated typed APIs, whose model classes take half a second to import.
"""

import copy
import ipaddress
import json
import os
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from rl.kube.credentials import check_token, redact, secure_credentials
from rl.kube.errors import (
    KubeAuthError,
    KubeConfigError,
    KubeDeadlineError,
    KubeError,
    KubePermissionError,
    KubeRequestError,
    KubeUnreachableError,
)
from rl.safe_yaml import YamlError, load_yaml

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_KUBECONFIG = "~/.kube/config"
DEFAULT_TIMEOUT_S = 10.0  # connect and read timeout of each request (--api-timeout, cluster.apiTimeout)
TIMEOUT_ATTEMPTS = 2  # attempts of a request that keeps timing out (fewer when `retries` is lower)
HUNG_REQUESTS = 2  # requests in a row that timed out: the server is not answering at all
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # one page of a list (500 items) is a few MiB
# An answer must be complete (headers and body) within this many request timeouts: the read timeout
# bounds each wait for a byte, not a server that sends one byte every few seconds.
ANSWER_DEADLINE_TIMEOUTS = 3
MAX_ERROR_BYTES = 64 * 1024  # the body of a non-2xx answer (a Status object) kept for its message
MAX_KUBECONFIG_BYTES = 1024 * 1024


class KubeResponseError(KubeError):
    """The API server answered, but not with the JSON the request expects (a proxy's HTML page,
    a truncated body, a list where an object belongs). Not retried: exit 5."""


@dataclass(frozen=True)
class Request:
    """What a request does, in RBAC terms, so a 403 can name the missing permission."""

    verb: str  # get, list, delete, patch, create
    resource: str  # e.g. "pods", "pods/log", "deployments/scale", "nodes.metrics.k8s.io"
    namespace: str | None = None


def resource_path(
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
    group: str = "",
    version: str = "v1",
) -> str:
    """The API path of a collection or an object: /api/v1/... for the core group, /apis/GROUP/VERSION/... otherwise."""
    parts = ["api", version] if not group else ["apis", group, version]
    if namespace is not None:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(plural)
    if name is not None:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/" + "/".join(parts)


def load_configuration(
    kubeconfig: str | None, context: str | None, deadline_s: float = DEFAULT_TIMEOUT_S * ANSWER_DEADLINE_TIMEOUTS
) -> client.Configuration:
    """Build a client configuration: the kubeconfig (argument, then $KUBECONFIG, then
    ~/.kube/config), or the in-cluster service account when running as a pod without one.
    The files the kubeconfig names and its exec plugin are read and run within `deadline_s`
    (`rl.kube.credentials`)."""
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
        if part and not os.path.exists(expanded):
            raise KubeConfigError(f"kubeconfig {part} does not exist")
        if part and not os.path.isfile(expanded):
            raise KubeConfigError(f"kubeconfig {part} is not a regular file")
    loader = None
    try:
        loader = _kube_config_loader(path)
        names = [c["name"] for c in loader.list_contexts() or [] if isinstance(c, dict) and "name" in c]
        if context is not None and context not in names:
            known = ", ".join(names) or "none"
            raise KubeConfigError(f"context {context!r} not found in kubeconfig {path} (contexts: {known})")
        if context is not None:
            loader.set_active_context(context)
        secure_credentials(loader, path, deadline_s)
        loader.load_and_set(configuration)
        check_token(configuration, path)
    except KubeConfigError as err:
        raise KubeConfigError(redact(str(err), loader)) from None
    except (ConfigException, ValueError, TypeError, KeyError, OSError, AttributeError) as err:
        raise KubeConfigError(redact(f"kubeconfig {path} unusable: {_one_line(err)}", loader)) from None
    except Exception as err:  # noqa: BLE001 - anything else a malformed file provokes in the client
        message = f"kubeconfig {path} unusable: {type(err).__name__}: {_one_line(err)}"
        raise KubeConfigError(redact(message, loader)) from None
    if not configuration.host:
        raise KubeConfigError(f"kubeconfig {path}: the context's cluster has no server address")
    return configuration


class _SafeKubeConfigMerger(kube_config.KubeConfigMerger):
    """The client's merger of KUBECONFIG files (clusters, contexts and users by name, relative
    certificate paths), reading each file through `rl.safe_yaml` instead of `yaml.safe_load`."""

    def load_config(self, path):
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_KUBECONFIG_BYTES + 1)
            config = load_yaml(data, path)
        except YamlError as err:
            detail = str(err).removeprefix(str(path)).removeprefix(":")
            where = "line " if detail[:1].isdigit() else ""
            raise KubeConfigError(f"kubeconfig {path} unusable: {where}{detail.strip()}") from None
        if config is None:
            raise KubeConfigError(f"kubeconfig {path} unusable: the file is empty")
        if not isinstance(config, dict):
            raise KubeConfigError(f"kubeconfig {path} unusable: expected a mapping (clusters, contexts, users)")
        for item in ("clusters", "contexts", "users"):
            if not isinstance(config.get(item) or [], list):
                raise KubeConfigError(f"kubeconfig {path} unusable: {item}: expected a list")
            if not all(isinstance(entry, dict) and "name" in entry for entry in config.get(item) or []):
                raise KubeConfigError(f"kubeconfig {path} unusable: {item}: every entry needs a name")
        if self.config_merged is None:
            merged = copy.deepcopy(config)
            for item in ("clusters", "contexts", "users"):
                merged[item] = []
            self.config_merged = kube_config.ConfigNode(path, merged, path)
        for item in ("clusters", "contexts", "users"):
            self._merge(item, config.get(item) or [], path)
        if "current-context" in config:
            self.config_merged.value["current-context"] = config["current-context"]
        self.config_files[path] = config

    def _merge(self, item, add_cfg, path):
        # The client names each entry by its whole content (a user's token included), and error
        # messages quote that name: ours says which file and which entry, nothing of its values.
        for new_item in add_cfg:
            if not any(exists["name"] == new_item["name"] for exists in self.config_merged.value[item]):
                name = f"{path}/{item}[name={new_item['name']}]"
                self.config_merged.value[item].append(kube_config.ConfigNode(name, new_item, path))


def _kube_config_loader(path: str) -> "kube_config.KubeConfigLoader":
    merger = _SafeKubeConfigMerger(path)
    if merger.config is None:
        raise KubeConfigError(f"kubeconfig {path}: no configuration found")
    return kube_config.KubeConfigLoader(config_dict=merger.config, config_base_path=None)


@dataclass(frozen=True)
class Answer:
    """An API server's answer, read whole: its body, and whether it was longer than the limit the
    request set (then `body` holds the first `limit` bytes)."""

    body: bytes
    truncated: bool = False


class _CutShort(Exception):
    """The connection broke while the body was being read."""


def _read_answer(response, limit: int) -> Answer:
    """The body of a urllib3 response, at most `limit` bytes; the connection is reused only when
    the body was read to its end."""
    chunks, size = [], 0
    try:
        while size <= limit:
            chunk = response.read1(min(64 * 1024, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except urllib3.exceptions.HTTPError as err:
        response.close()
        raise _CutShort(type(err).__name__) from None
    body = b"".join(chunks)
    if size > limit:
        response.close()  # the rest is never read: this connection cannot carry another request
        return Answer(body[:limit], truncated=True)
    response.release_conn()
    return Answer(body)


class KubeApi:
    """Requests to one API server: `send` makes one, `call` adds timeouts, retries and error mapping."""

    def __init__(
        self,
        configuration: client.Configuration,
        request_timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = 3,
        backoff_seconds: float = 0.2,
        page_size: int = 500,
        deadline: float | None = None,
    ):
        """`deadline`: a `time.monotonic()` instant after which no request is made or waited for
        (KubeDeadlineError); None: no overall deadline."""
        # Our own loop does the retrying; urllib3 must not retry behind its back.
        configuration.retries = urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0)
        self.warnings = connection_warnings(configuration)
        if not configuration.verify_ssl:  # said once in `warnings`, not by urllib3 on every request
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        self.api_client = client.ApiClient(configuration)
        self.host = configuration.host
        self.request_timeout = request_timeout
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.page_size = page_size
        self.deadline = deadline
        self.pages_read = 0
        self._answered = False  # has the server answered anything yet?
        self._hung_requests = 0  # requests in a row that timed out on every attempt

    def close(self) -> None:
        self.api_client.close()

    def send(self, method: str, path: str, query: dict | None = None, body=None):
        """One HTTP request to the API server, authenticated as the kubeconfig says; the raw
        urllib3 response, not yet read. Non-2xx answers raise the client's ApiException."""
        headers = {"Accept": "application/json, */*"}  # as kubectl asks; a pod log answers text/plain
        if body is not None:  # object patches of built-in kinds are strategic merges, as kubectl sends them
            headers["Content-Type"] = (
                "application/strategic-merge-patch+json" if method == "PATCH" else "application/json"
            )
        query = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        method, url, headers, body, _ = self.api_client.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        if query:
            url += "?" + urlencode(query)
        response = self.api_client.call_api(
            method, url, headers, body, _request_timeout=(self.request_timeout, self.request_timeout)
        )
        if not 200 <= response.status <= 299:  # the error's Status object: a few hundred bytes
            response.data = _read_answer(response.response, MAX_ERROR_BYTES).body
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    def call(
        self,
        request: Request,
        method: str,
        path: str,
        query: dict | None = None,
        body=None,
        *,
        retry_statuses=RETRYABLE_STATUSES,
        limit: int | None = None,
    ) -> Answer:
        """`send` with retries, timeouts and error mapping, the body read whole (at most `limit`
        bytes, MAX_RESPONSE_BYTES by default: the rest is dropped and `Answer.truncated` set);
        KubeError on failure."""
        limit = MAX_RESPONSE_BYTES if limit is None else limit
        last_problem = ""
        timeouts = 0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff_seconds * 2 ** (attempt - 1), 5.0, self.remaining()))
            self._check_deadline(request)
            try:
                answer = self._exchange(request, method, path, query, body, limit)
                self._answered, self._hung_requests = True, 0
                return answer
            except ApiException as err:
                self._answered, self._hung_requests = True, 0
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
                tls = _tls_failure(err)
                if tls is not None:  # a certificate or handshake problem: trying again changes nothing
                    self._answered, self._hung_requests = True, 0
                    raise KubeUnreachableError(f"API server {self.host}: {tls}") from None
                if _is_timeout(err):
                    timeouts += 1
                    last_problem = "timed out"
                    if timeouts >= TIMEOUT_ATTEMPTS or attempt == self.retries:
                        self._gave_up_waiting(request, timeouts)
                        break
                    continue
                if _is_connect_failure(err):
                    last_problem = "unreachable"
                    if attempt == self.retries:
                        raise KubeUnreachableError(
                            f"API server {self.host} unreachable: {_connect_reason(err)}"
                        ) from None
                    continue
                last_problem = f"connection error ({type(err).__name__})"
        raise KubeRequestError(
            f"{_describe(request)}: {last_problem} after {attempt + 1} attempts",
            _status_of(last_problem),
        )

    def _exchange(self, request: Request, method: str, path: str, query, body, limit: int) -> Answer:
        """One request and its whole answer, within the answer deadline. The exchange runs on a
        daemon thread so that the deadline holds while a read waits: a server still trickling
        bytes at the deadline is not answering (KubeUnreachableError), and its thread is left to
        the socket's own timeout."""
        outcome: list = []

        def exchange():
            try:
                response = self.send(method, path, query, body)
                outcome.append(_read_answer(response, limit))
            except BaseException as err:  # handed to the caller's thread
                outcome.append(err)

        deadline = self.request_timeout * ANSWER_DEADLINE_TIMEOUTS
        worker = threading.Thread(target=exchange, name="kube-request", daemon=True)
        worker.start()
        worker.join(min(deadline, self.remaining()))
        if not outcome and self.remaining() <= 0:
            self._check_deadline(request)
        if not outcome:
            raise KubeUnreachableError(
                f"API server {self.host} is not answering in time: {_describe(request)} was not answered "
                f"whole within {deadline:g} s ({ANSWER_DEADLINE_TIMEOUTS} x the --api-timeout of "
                f"{self.request_timeout:g} s)"
            )
        if isinstance(outcome[0], _CutShort):
            raise KubeResponseError(
                f"API server {self.host} cut its answer to {_describe(request)} short ({outcome[0]})"
            ) from None
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    def remaining(self) -> float:
        """Seconds left before the overall deadline (infinity without one)."""
        return float("inf") if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def _check_deadline(self, request: Request) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise KubeDeadlineError(f"the deadline passed before {_describe(request)} was answered")

    def _gave_up_waiting(self, request: Request, attempts: int) -> None:
        """A request timed out on every attempt. One slow list is degraded (KubeRequestError from
        `call`); a server that never answered, or timed out twice in a row, is not answering at
        all (KubeUnreachableError), so a hung server ends the command instead of every read."""
        self._hung_requests += 1
        if not self._answered or self._hung_requests >= HUNG_REQUESTS:
            raise KubeUnreachableError(
                f"API server {self.host} is not answering: {_describe(request)} timed out after "
                f"{self.request_timeout:g} s ({attempts} attempt{'s' if attempts > 1 else ''}; "
                "--api-timeout sets the limit)"
            )

    def call_json(
        self,
        request: Request,
        method: str,
        path: str,
        query: dict | None = None,
        body=None,
        *,
        retry_statuses=RETRYABLE_STATUSES,
    ) -> dict:
        """The answer as a JSON object; anything else raises KubeResponseError."""
        answer = self.call(request, method, path, query, body, retry_statuses=retry_statuses)
        body = answer.body
        if answer.truncated:
            raise KubeResponseError(
                f"API server {self.host} answered {_describe(request)} with more than "
                f"{MAX_RESPONSE_BYTES / 2**20:g} MiB"
            )
        try:
            data = json.loads(body)
        except RecursionError:
            raise KubeResponseError(
                f"API server {self.host} answered {_describe(request)} with JSON nested too deeply"
            ) from None
        except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
            raise KubeResponseError(
                f"API server {self.host} answered {_describe(request)} with invalid JSON "
                f"(starts {_one_line(body[:40].decode('utf-8', 'replace'))!r})"
            ) from None
        if not isinstance(data, dict):
            raise KubeResponseError(
                f"API server {self.host} answered {_describe(request)} with a JSON {_json_kind(data)}, "
                "expected an object"
            )
        return data

    def list_pages(self, request: Request, path: str, **query) -> Iterator[dict]:
        """Yield the items of the list at `path` page by page (limit/continue); `query` holds its
        other parameters (labelSelector, fieldSelector). A continue token that has expired (410)
        restarts the listing once from the beginning, as client-go's pager does."""
        restarted = False
        token = None
        while True:
            try:
                page = self.call_json(request, "GET", path, {**query, "limit": self.page_size, "continue": token})
            except KubeRequestError as err:
                if err.status == 410 and token is not None and not restarted:
                    restarted, token = True, None
                    continue
                raise
            self.pages_read += 1
            items, metadata = page.get("items") or [], page.get("metadata") or {}
            token = metadata.get("continue") if isinstance(metadata, dict) else None
            if (
                not isinstance(items, list)
                or not all(isinstance(item, dict) for item in items)
                or not isinstance(metadata, dict)
                or not isinstance(token, str | None)
            ):
                raise KubeResponseError(
                    f"API server {self.host} answered {_describe(request)} with JSON of the wrong shape "
                    "(expected a list object: items, a list of objects, and metadata)"
                )
            yield from items
            token = token or None
            if token is None:
                return

    def server_version(self) -> str:
        data = self.call_json(Request("get", "version"), "GET", "/version")
        version = data.get("gitVersion", "unknown")
        return version if isinstance(version, str) else "unknown"


def connection_warnings(configuration: client.Configuration) -> list[str]:
    """What is unsafe about how the requests will be sent, one line each, for the user to read once."""
    host = configuration.host or ""
    found = []
    if host.startswith("https") and not configuration.verify_ssl:
        found.append(
            f"insecure-skip-tls-verify is set for {host}: its certificate is not checked, so anyone on the "
            "way can pose as the API server; name its CA in certificate-authority instead"
        )
    credential = (configuration.api_key or {}).get("BearerToken")
    if host.startswith("http://") and credential and not _is_loopback(host):
        found.append(
            f"the kubeconfig's token is sent over plain http:// to {host}: anyone on the way can read it; use https"
        )
    return found


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_failure(err: Exception) -> str | None:
    """What went wrong with TLS, in a few words, or None when the failure is not about TLS."""
    reason = getattr(err, "reason", None) or err
    if not isinstance(reason, urllib3.exceptions.SSLError) and not isinstance(err, urllib3.exceptions.SSLError):
        return None
    cause = reason.args[0] if reason.args else reason
    if isinstance(cause, ssl.SSLCertVerificationError):
        detail = cause.verify_message or "certificate verify failed"
        return (
            f"its TLS certificate is not trusted ({detail}); name the CA that signed it in the kubeconfig's "
            "certificate-authority (not retried)"
        )
    return f"the TLS handshake failed ({_one_line(getattr(cause, 'reason', None) or cause)}; not retried)"


def _query_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


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
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a subclass of ConnectTimeoutError
        return False
    return isinstance(reason, urllib3.exceptions.TimeoutError) or isinstance(err, urllib3.exceptions.TimeoutError)


def _connect_reason(err: Exception) -> str:
    reason = getattr(err, "reason", None) or err
    text = str(reason)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return _one_line(text)


def _json_kind(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _one_line(value) -> str:
    return " ".join(str(value).split())
