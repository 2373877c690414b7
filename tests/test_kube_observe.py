"""KubeBackend.observe() against the fake API server, through the real kubernetes client."""

import pytest
from kube_server import FakeKubeServer, load_into, synthetic_cluster, write_kubeconfig
from kube_server.fixtures import CLUSTERS

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
    # 13 pods running (3 node-exporter DaemonSet pods and db-0 included); the finished backup pod is not counted
    assert (state.num_pods, state.pods_running, state.pods_pending, state.pods_failed) == (13, 13, 0, 0)
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


# (fixture, kind, namespace/name, reason, a check of the state derived from the findings)
FAILURES = [
    ("crashloop", "Pod", "shop/cart-7f9c8d6b5-x2x4q", "OOMKilled", lambda s: s.pods_failed == 1),
    ("crashloop", "Deployment", "shop/cart", "ReplicasUnavailable", lambda s: s.deployments_unavailable == 1),
    ("crashloop", "Service", "shop/cart", "NotReadyEndpoints", None),
    ("imagepull", "Pod", "shop/payments-5d4b9c7f8-q9w8e", "ImagePullBackOff", lambda s: s.pods_pending == 1),
    ("unschedulable", "Pod", "shop/search-6b8d7f9c4-z7x8c", "Unschedulable", lambda s: s.pods_pending == 1),
    ("evicted", "Pod", "shop/report-84c6d9f7b-p2p3q", "Evicted", lambda s: s.pods_failed == 1),
    ("node_notready", "Node", "node-c", "NotReady", lambda s: s.nodes_ready == 2 and s.nodes_not_ready == 1),
    ("node_pressure", "Node", "node-b", "MemoryPressure", lambda s: s.has_resource_pressure and s.nodes_ready == 3),
    ("node_pressure", "PodDisruptionBudget", "shop/payments", "DisruptionsNotAllowed", None),
    ("cordoned", "Node", "node-a", "Cordoned", lambda s: s.nodes_ready == 2 and s.nodes_not_ready == 0),
    ("network_unavailable", "Node", "node-c", "NetworkUnavailable", lambda s: s.has_network_issues),
    ("pvc_pending", "PersistentVolumeClaim", "shop/data-db-0", "Pending", lambda s: s.has_pvc_issues),
    ("quota_exhausted", "ResourceQuota", "shop/compute", "QuotaExceeded", lambda s: s.has_resource_pressure),
    ("quota_exhausted", "ReplicaSet", "shop/search-6b8d7f9c4", "FailedCreate", None),
    ("dns_failure", "ClusterDNS", "kube-system/kube-dns", "DNSDegraded", lambda s: s.has_network_issues),
    ("dns_failure", "Pod", "kube-system/coredns-668d6bf9bc-4kx8w", "CrashLoopBackOff", None),
    ("dns_failure", "Pod", "shop/cart-7f9c8d6b5-k8d9z", "DNSResolutionFailed", lambda s: s.has_network_issues),
    ("dns_down", "ClusterDNS", "kube-system/kube-dns", "DNSDown", lambda s: s.has_network_issues),
    ("service_no_pods", "Service", "shop/checkout", "NoMatchingPods", None),
    ("readiness", "Pod", "shop/search-6b8d7f9c4-f3g4h", "ReadinessProbeFailed", None),
    ("readiness", "Service", "shop/search", "NotReadyEndpoints", None),
    ("readiness", "Deployment", "shop/search", "ReplicasUnavailable", lambda s: s.deployments_unavailable == 1),
    ("job_failed", "Job", "shop/backup-29145720", "JobFailed", None),
    ("job_failed", "Pod", "shop/backup-29145720-7xk2p", "ContainerExited", lambda s: s.pods_failed == 1),
    ("mount_stuck", "Pod", "shop/db-0", "FailedMount", lambda s: s.has_pvc_issues and s.pods_pending == 1),
    ("mount_stuck", "StatefulSet", "shop/db", "ReplicasUnavailable", None),
    ("mount_stuck", "Service", "shop/db", "NoReadyEndpoints", None),
    ("sandbox", "Pod", "shop/thumbnailer", "FailedCreatePodSandBox", lambda s: s.pods_pending == 1),
    ("terminating", "Pod", "shop/cart-7f9c8d6b5-m3n7p", "TerminatingOnDeadNode", lambda s: s.pods_unknown == 2),
    ("terminating", "Pod", "shop/search-6b8d7f9c4-a1s2d", "PhaseUnknown", None),
    ("workload_config", "StatefulSet", "shop/cache", "ServiceNotFound", None),
    ("workload_config", "StatefulSet", "shop/cache", "StorageClassNotFound", None),
    ("workload_config", "DaemonSet", "monitoring/node-exporter", "PodsNotReady", None),
    ("workload_config", "DaemonSet", "monitoring/log-shipper", "ImagePullSecretNotFound", None),
    ("workload_config", "Deployment", "shop/payments", "ProgressDeadlineExceeded", None),
    ("workload_config", "CronJob", "shop/report", "InvalidSchedule", None),
    ("workload_config", "CronJob", "shop/rotate-logs", "NegativeStartingDeadline", None),
    ("workload_config", "CronJob", "shop/backup", "Suspended", None),
    ("network_config", "Ingress", "shop/admin", "IngressClassNotFound", None),
    ("network_config", "Ingress", "shop/admin", "BackendServiceNotFound", None),
    ("network_config", "Ingress", "shop/admin", "TLSSecretNotFound", None),
    ("network_config", "Ingress", "shop/legacy", "NoIngressClass", None),
    ("network_config", "NetworkPolicy", "shop/default-deny", "SelectsAllPods", None),
    ("network_config", "NetworkPolicy", "shop/allow-legacy", "NoMatchingPods", None),
    ("network_config", "HorizontalPodAutoscaler", "shop/old-api", "ScaleTargetNotFound", None),
    ("network_config", "HorizontalPodAutoscaler", "shop/old-api", "AbleToScale", None),
    ("network_config", "HorizontalPodAutoscaler", "shop/search", "ScalingActive", None),
    ("network_config", "HorizontalPodAutoscaler", "shop/search", "NoResourceRequests", None),
    ("network_config", "HorizontalPodAutoscaler", "shop/cart", "ScalingLimited", None),
    ("scheduling_gated", "Pod", "shop/train-resnet-0", "SchedulingGated", lambda s: s.pods_pending == 1),
    ("terminating_stuck", "Pod", "shop/payments-5d4b9c7f8-r5t6y", "TerminatingStuck", None),
    ("pod_not_ready", "Pod", "shop/ledger-sync", "NotReady", None),
    ("disk_pressure", "Node", "node-a", "DiskPressure", lambda s: s.has_resource_pressure and s.nodes_ready == 3),
    ("pid_pressure", "Node", "node-c", "PIDPressure", lambda s: s.has_resource_pressure and s.nodes_ready == 3),
    ("replica_failure", "Deployment", "shop/payments", "ReplicaFailure", lambda s: s.deployments_unavailable == 1),
    ("replica_failure", "ReplicaSet", "shop/payments-5d4b9c7f8", "FailedCreate", None),
    ("daemonset_misscheduled", "DaemonSet", "monitoring/node-exporter", "Misscheduled", None),
    ("job_retrying", "Job", "shop/reindex", "PodFailures", None),
    ("job_retrying", "Pod", "shop/reindex-8wq2m", "ContainerExited", lambda s: s.pods_failed == 1),
    ("job_suspended", "Job", "shop/migrate-orders", "Suspended", None),
    ("pvc_lost", "PersistentVolumeClaim", "shop/reports-archive", "Lost", lambda s: s.has_pvc_issues),
]


@pytest.mark.parametrize(("failure", "kind", "name", "reason", "check"), FAILURES)
def test_each_failure_is_found_by_its_analyzer(cluster, failure, kind, name, reason, check):
    server, backend = cluster
    load_into(server, f"failures/{failure}.yaml")
    observation = backend().observe()
    found = {(f.kind, f.object_name, f.reason) for f in observation.findings}
    assert (kind, name, reason) in found, sorted(found)
    finding = next(f for f in observation.findings if (f.kind, f.object_name, f.reason) == (kind, name, reason))
    assert finding.message and finding.severity in ("critical", "warning", "info")
    if check is not None:
        assert check(observation.state), observation.state
    assert observation.degraded == []


@pytest.mark.parametrize("failure", sorted(p.stem for p in (CLUSTERS / "failures").glob("*.yaml")))
def test_no_failure_fixture_is_reported_healthy(cluster, failure):
    server, backend = cluster
    load_into(server, f"failures/{failure}.yaml")
    assert backend().observe().findings


def test_oomkilled_names_the_container_limit_and_parent(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml")
    finding = next(f for f in backend().observe().findings if f.reason == "OOMKilled")
    assert "256Mi" in finding.message and "limits.memory 256Mi" in finding.evidence
    assert finding.parent == "Deployment/cart"


def test_a_job_that_failed_hours_ago_is_still_found(cluster):
    server, backend = cluster
    load_into(server, "failures/job_failed.yaml")
    finding = next(f for f in backend().observe().findings if f.kind == "Job")
    assert finding.parent == "CronJob/backup" and "BackoffLimitExceeded" in finding.message
    pod = next(f for f in backend().observe().findings if f.kind == "Pod")
    assert "exit code 2" in pod.message


def test_recent_warning_events_are_counted_and_attached(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml", "failures/imagepull.yaml")
    observation = backend().observe()
    assert observation.state.recent_events_warning == 2
    # the BackOff events are about pods that already have a finding: evidence, not a second problem
    assert not any(f.reason == "WarningEvent" for f in observation.findings)


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
    assert observation.state.num_pods == 13  # everything else still read


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
    assert observation.state.num_pods == 13
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
    assert observation.state.num_pods == 13  # the rest of the observation is still made


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
        assert sum(f.kind == "Pod" and f.reason != "WarningEvent" for f in observation.findings) == 36


def test_services_fall_back_to_endpoints_then_to_pod_readiness(cluster):
    from kube_server import Fault

    server, backend = cluster
    load_into(server, "failures/readiness.yaml", "failures/service_no_pods.yaml")
    server.inject(Fault(status=404, times=100, resource="endpointslices.discovery.k8s.io", verb="list"))
    observation = backend().observe()
    found = {(f.kind, f.object_name, f.reason) for f in observation.findings}
    # no EndpointSlice API and no Endpoints objects: readiness comes from the selected pods
    assert ("Service", "shop/search", "NotReadyEndpoints") in found
    assert ("Service", "shop/checkout", "NoMatchingPods") in found
    assert not any(f.kind == "Service" and f.name in ("cart", "payments", "db") for f in observation.findings)
    assert observation.degraded == []
    server.store.put(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "search", "namespace": "shop"},
            "subsets": [
                {
                    "addresses": [{"ip": "10.244.3.5", "targetRef": {"kind": "Pod", "name": "search-6b8d7f9c4-a1s2d"}}],
                    "notReadyAddresses": [
                        {"ip": "10.244.1.12", "targetRef": {"kind": "Pod", "name": "search-6b8d7f9c4-f3g4h"}}
                    ],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                }
            ],
        }
    )
    finding = next(f for f in backend().observe().findings if (f.kind, f.reason) == ("Service", "NotReadyEndpoints"))
    assert "Pod/search-6b8d7f9c4-f3g4h" in finding.message


def test_a_service_warning_is_reported_whatever_its_age(cluster):
    server, backend = cluster
    server.store.put(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "cart.17d2a0c4e1b2f8e1", "namespace": "shop"},
            "involvedObject": {"apiVersion": "v1", "kind": "Service", "name": "cart", "namespace": "shop"},
            "reason": "SyncLoadBalancerFailed",
            "message": "Error syncing load balancer: failed to ensure load balancer: TooManyLoadBalancers",
            "type": "Warning",
            "count": 3,
            "firstTimestamp": "2020-01-01T00:00:00Z",
            "lastTimestamp": "2020-01-01T00:40:00Z",
        }
    )
    finding = next(f for f in backend().observe().findings if f.kind == "Service")
    assert (finding.name, finding.reason) == ("cart", "WarningEvent") and "SyncLoadBalancerFailed" in finding.message


def test_a_forbidden_optional_list_or_secret_degrades_instead_of_failing(cluster):
    server, backend = cluster
    server.forbid("list", "statefulsets")
    server.forbid("get", "secrets")
    observation = backend().observe()
    assert observation.state.num_pods == 13
    assert any(d.startswith("statefulsets unreadable (permission denied") for d in observation.degraded)
    assert any("StatefulSet analyzer skipped" in d for d in observation.degraded)
    assert "secret existence not checked for shop/shop-tls (no permission to get secrets)" in observation.degraded
    assert observation.findings == []  # nothing unreadable is turned into a finding either
