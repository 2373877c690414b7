"""Connection and permission failures become one-line KubeError subclasses (exit code 5 in the CLI)."""

import socket

import pytest
from kube_server import FakeKubeServer, load_into, write_kubeconfig

from rl.kube import (
    KubeAuthError,
    KubeBackend,
    KubeConfigError,
    KubeError,
    KubePermissionError,
    KubeUnreachableError,
)


@pytest.fixture
def server():
    with FakeKubeServer() as fake:
        load_into(fake, "healthy")
        yield fake


def _one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_missing_kubeconfig_file(tmp_path):
    with pytest.raises(KubeConfigError) as caught:
        KubeBackend(kubeconfig=str(tmp_path / "nope"))
    assert _one_line(caught.value) == f"kubeconfig {tmp_path / 'nope'} does not exist"


def test_malformed_kubeconfig(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text("clusters: [unclosed\n")
    with pytest.raises(KubeConfigError) as caught:
        KubeBackend(kubeconfig=str(path))
    assert _one_line(caught.value).startswith(f"kubeconfig {path} unusable")


def test_unknown_context_lists_the_known_ones(tmp_path, server):
    path = write_kubeconfig(tmp_path / "kubeconfig", server.url, context="staging")
    with pytest.raises(KubeConfigError) as caught:
        KubeBackend(kubeconfig=str(path), context="prod")
    assert _one_line(caught.value) == f"context 'prod' not found in kubeconfig {path} (contexts: staging)"


def test_kubeconfig_env_and_context_are_honoured(tmp_path, server, monkeypatch):
    path = write_kubeconfig(tmp_path / "kubeconfig", server.url, context="staging")
    monkeypatch.setenv("KUBECONFIG", str(path))
    backend = KubeBackend(context="staging")
    assert backend.observe().state.num_nodes == 3


def test_no_kubeconfig_and_not_in_a_pod(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeConfigError, match="no kubeconfig found"):
        KubeBackend()


def test_in_cluster_without_a_service_account_token(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(KubeConfigError) as caught:
        KubeBackend()
    assert _one_line(caught.value).startswith("in-cluster config unusable")


def test_unreachable_api_server(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    with pytest.raises(KubeUnreachableError) as caught:
        KubeBackend(kubeconfig=str(path), retries=1, backoff_seconds=0.01)
    assert _one_line(caught.value) == f"API server http://127.0.0.1:{port} unreachable: connection refused"


def test_server_going_away_mid_session_raises_not_reports_healthy(tmp_path):
    server = FakeKubeServer().start()
    load_into(server, "healthy")
    backend = KubeBackend(
        kubeconfig=str(write_kubeconfig(tmp_path / "kc", server.url)), retries=1, backoff_seconds=0.01
    )
    server.stop()
    with pytest.raises(KubeUnreachableError):
        backend.observe()


def test_rejected_credentials(tmp_path, server):
    path = write_kubeconfig(tmp_path / "kubeconfig", server.url, token="wrong")
    with pytest.raises(KubeAuthError) as caught:
        KubeBackend(kubeconfig=str(path))
    assert _one_line(caught.value) == f"the API server at {server.url} rejected the credentials (401 Unauthorized)"


@pytest.mark.parametrize(
    ("verb", "resource", "namespaces", "message"),
    [
        ("list", "nodes", None, "permission denied: cannot list nodes at cluster scope"),
        ("list", "pods", ["shop"], "permission denied: cannot list pods in namespace 'shop'"),
        (
            "list",
            "nodes.metrics.k8s.io",
            None,
            "permission denied: cannot list nodes.metrics.k8s.io at cluster scope",
        ),
    ],
)
def test_forbidden_read_names_verb_resource_and_namespace(tmp_path, server, verb, resource, namespaces, message):
    server.forbid(verb, resource)
    backend = KubeBackend(kubeconfig=str(write_kubeconfig(tmp_path / "kc", server.url)), namespaces=namespaces)
    with pytest.raises(KubePermissionError) as caught:
        backend.observe()
    assert _one_line(caught.value).startswith(message)
    assert isinstance(caught.value, KubeError)
    assert (caught.value.verb, caught.value.resource) == (verb, resource)
