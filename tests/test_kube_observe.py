"""KubeBackend.observe() against the fake API server, through the real kubernetes client."""

import pytest
from kube_server import FakeKubeServer, load_into, synthetic_cluster, write_kubeconfig

from rl.kube import KubeBackend


@pytest.fixture
def cluster(tmp_path):
    """A running fake server with the healthy cluster, and a factory for backends pointed at it."""
    server = FakeKubeServer().start()
    load_into(server, "healthy")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)

    def backend(**options) -> KubeBackend:
        options.setdefault("backoff_seconds", 0.01)
        return KubeBackend(kubeconfig=str(kubeconfig), **options)

    yield server, backend
    server.stop()


def test_healthy_cluster_fills_every_field_and_reports_nothing(cluster):
    server, backend = cluster
    observation = backend().observe()
    state = observation.state
    assert (state.num_nodes, state.nodes_ready, state.nodes_not_ready) == (3, 3, 0)
    # 12 pods, all running (3 node-exporter DaemonSet pods included)
    assert (state.num_pods, state.pods_running, state.pods_pending, state.pods_failed) == (12, 12, 0, 0)
    assert (state.num_deployments, state.deployments_available, state.deployments_unavailable) == (4, 4, 0)
    # the old warning (90 minutes ago) is outside the 15-minute window
    assert (state.recent_events_warning, state.recent_events_normal) == (0, 3)
    assert not (state.has_pvc_issues or state.has_network_issues or state.has_resource_pressure)
    # node metrics: 2.4 of 12 cores; about 12.2 of 46.6 GiB
    assert state.cpu_usage_percent == pytest.approx(20.0, abs=0.01)
    assert state.memory_usage_percent == pytest.approx(100 * 12218018 / (3 * 16290692), abs=0.01)
    assert observation.findings == []
    assert observation.degraded == []
    assert state.to_observation().shape == (18,)


@pytest.mark.parametrize(
    ("failure", "finding", "check"),
    [
        (
            "crashloop",
            "pod shop/cart-7f9c8d6b5-x2x4q CrashLoopBackOff (OOMKilled, 14 restarts)",
            lambda s: s.pods_failed == 1 and s.deployments_unavailable == 1,
        ),
        (
            "imagepull",
            "pod shop/payments-5d4b9c7f8-q9w8e ImagePullBackOff (Back-off pulling image "
            '"registry.example.com/payments:v2.1")',
            lambda s: s.pods_pending == 1,
        ),
        (
            "unschedulable",
            "pod shop/search-6b8d7f9c4-z7x8c Unschedulable (0/3 nodes are available: 3 Insufficient memory.",
            lambda s: s.pods_pending == 1,
        ),
        (
            "evicted",
            "pod shop/report-84c6d9f7b-p2p3q Evicted (The node was low on resource: memory.",
            lambda s: s.pods_failed == 1,
        ),
        (
            "node_notready",
            "node node-c NotReady (NodeStatusUnknown: Kubelet stopped posting node status.)",
            lambda s: s.nodes_ready == 2 and s.nodes_not_ready == 1,
        ),
        (
            "node_pressure",
            "node node-b MemoryPressure: kubelet has insufficient memory available",
            lambda s: s.has_resource_pressure and s.nodes_ready == 3,
        ),
        (
            "cordoned",
            "node node-a cordoned (SchedulingDisabled)",
            lambda s: s.nodes_ready == 2 and s.nodes_not_ready == 0 and s.num_nodes == 3,
        ),
        (
            "network_unavailable",
            "node node-c NetworkUnavailable (NoRouteCreated)",
            lambda s: s.has_network_issues,
        ),
        (
            "pvc_pending",
            'pvc shop/data-db-0 Pending (storageclass.storage.k8s.io "fast-ssd" not found)',
            lambda s: s.has_pvc_issues,
        ),
        (
            "quota_exhausted",
            "quota shop/compute: pods at limit (20 used of 20)",
            lambda s: s.has_resource_pressure,
        ),
        (
            "dns_failure",
            "CoreDNS pod kube-system/coredns-668d6bf9bc-4kx8w unhealthy: CrashLoopBackOff (Error, "
            "exit code 1, 6 restarts)",
            lambda s: s.has_network_issues,
        ),
        (
            "dns_failure",
            "network: pod shop/cart-7f9c8d6b5-k8d9z Unhealthy: Readiness probe failed",
            lambda s: s.has_network_issues,
        ),
    ],
)
def test_each_failure_is_detected_with_its_evidence(cluster, failure, finding, check):
    server, backend = cluster
    load_into(server, f"failures/{failure}.yaml")
    observation = backend().observe()
    assert any(f.startswith(finding) for f in observation.findings), observation.findings
    assert check(observation.state), observation.state
    assert observation.degraded == []


def test_recent_warning_events_are_counted_and_summarised(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml", "failures/imagepull.yaml")
    observation = backend().observe()
    assert observation.state.recent_events_warning == 2
    assert any(
        f.startswith("warning event BackOff on pod shop/cart-7f9c8d6b5-x2x4q (x61)") for f in observation.findings
    )


def test_flags_stay_false_for_other_failures(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml")
    state = backend().observe().state
    assert not (state.has_pvc_issues or state.has_network_issues or state.has_resource_pressure)


def test_missing_metrics_api_is_said_not_invented(cluster):
    server, backend = cluster
    server.metrics_available = False
    observation = backend().observe()
    assert observation.state.cpu_usage_percent == 0.0
    assert observation.state.memory_usage_percent == 0.0
    assert any(d.startswith("metrics.k8s.io unavailable: API not served") for d in observation.degraded)
    assert observation.state.num_pods == 12  # everything else still read


def test_namespaces_limit_what_is_read_but_coredns_is_still_checked(cluster):
    server, backend = cluster
    load_into(server, "failures/dns_failure.yaml", "failures/pvc_pending.yaml")
    observation = backend(namespaces=["monitoring"]).observe()
    assert observation.state.num_pods == 3  # the node-exporter pods only
    assert observation.state.num_deployments == 0
    assert not observation.state.has_pvc_issues  # the PVC lives in shop
    assert observation.state.has_network_issues  # CoreDNS crash-looping in kube-system
    pod_lists = server.requests_for("list", "pods")
    assert {r["namespace"] for r in pod_lists} == {"monitoring", "kube-system"}
    assert any(r["query"].get("labelSelector") == "k8s-app=kube-dns" for r in pod_lists)


def test_server_errors_are_retried_then_succeed(cluster):
    from kube_server import Fault

    server, backend = cluster
    kube = backend(retries=3)
    server.inject(Fault(status=503, times=2, resource="pods", verb="list"))
    observation = kube.observe()
    assert observation.degraded == []
    assert observation.state.num_pods == 12
    assert len(server.requests_for("list", "pods")) == 3


def test_server_errors_past_the_retries_mark_the_observation_degraded(cluster):
    from kube_server import Fault

    server, backend = cluster
    kube = backend(retries=2)
    server.inject(Fault(status=500, times=10, resource="deployments", verb="list"))
    observation = kube.observe()
    assert len(server.requests_for("list", "deployments")) == 3  # 1 + 2 retries, then given up
    assert observation.state.num_deployments == 0
    assert any(
        d.startswith("deployments unreadable") and "HTTP 500" in d and "after 3 attempts" in d
        for d in observation.degraded
    )
    assert observation.state.num_pods == 12  # the rest of the observation is still made


def test_timeouts_are_retried_then_degraded(cluster):
    from kube_server import Fault

    server, backend = cluster
    kube = backend(retries=1, request_timeout=0.3)
    server.inject(Fault(status=None, delay=1.0, times=2, resource="events", verb="list"))
    observation = kube.observe()
    assert any(d.startswith("events unreadable") and "timed out" in d for d in observation.degraded)


def test_pagination_reads_every_page(tmp_path):
    with FakeKubeServer() as server:
        for obj in synthetic_cluster(pods=1200, nodes=12):
            server.store.put(obj)
        kube = KubeBackend(kubeconfig=str(write_kubeconfig(tmp_path / "kc", server.url)), page_size=500)
        observation = kube.observe()
        assert observation.state.num_pods == 1200
        pages = server.requests_for("list", "pods")
        assert [r["query"].get("limit") for r in pages] == ["500", "500", "500"]
        assert "continue" not in pages[0]["query"] and all("continue" in r["query"] for r in pages[1:])
        # 2% CrashLoopBackOff and 1% ImagePullBackOff in the synthetic cluster
        assert (observation.state.pods_failed, observation.state.pods_pending) == (24, 12)
        assert sum(f.startswith("pod ") for f in observation.findings) == 36
