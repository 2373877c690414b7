"""KubeBackend.act(): diagnostic reads, and remediations that are dry runs unless writes are allowed."""

import pytest
from kube_server import FakeKubeServer, load_into, write_kubeconfig

from rl.actions import ClusterAction as A
from rl.kube import KubeBackend

CART_POD = ("shop", "cart-7f9c8d6b5-x2x4q")
PODS = ("", "v1", "pods")
NODES = ("", "v1", "nodes")
DEPLOYMENTS = ("apps", "v1", "deployments")
HPAS = ("autoscaling", "v2", "horizontalpodautoscalers")


@pytest.fixture
def cluster(tmp_path):
    server = FakeKubeServer().start()
    load_into(server, "healthy")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)

    def backend(**options) -> KubeBackend:
        options.setdefault("backoff_seconds", 0.01)
        options.setdefault("wait_seconds", 0.0)
        return KubeBackend(kubeconfig=str(kubeconfig), **options)

    yield server, backend
    server.stop()


def _dry_runs(server, verb, resource):
    return [r["query"].get("dryRun") for r in server.requests_for(verb, resource)]


def test_restart_is_a_dry_run_by_default_and_changes_nothing(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml")
    result = backend().act(A.RESTART_FAILED_PODS)
    assert result["success"] is True
    assert result["message"].startswith("would delete 1 failed pod(s)")
    assert result["data"]["dry_run"] is True
    assert result["data"]["changes"][0]["object"] == "pod shop/cart-7f9c8d6b5-x2x4q"
    assert _dry_runs(server, "delete", "pods") == ["All"]
    assert server.store.get(PODS, *CART_POD) is not None


def test_restart_writes_only_with_opt_in_and_allowlisted_namespace(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml")
    # allowed writes, but shop is not in the allowlist: still a dry run
    result = backend(allow_writes=True, write_namespaces=["default"]).act(A.RESTART_FAILED_PODS)
    assert result["data"]["changes"][0]["why_dry_run"] == "namespace 'shop' not in the write allowlist"
    assert server.store.get(PODS, *CART_POD) is not None
    result = backend(allow_writes=True, write_namespaces=["shop"]).act(A.RESTART_FAILED_PODS)
    assert result["data"]["dry_run"] is False and result["message"].startswith("deleted 1 failed pod(s)")
    assert _dry_runs(server, "delete", "pods") == ["All", None]
    assert server.store.get(PODS, *CART_POD) is None


def test_allow_writes_without_an_allowlist_is_refused(cluster):
    _, backend = cluster
    with pytest.raises(ValueError, match="allowlist"):
        backend(allow_writes=True)


def test_kube_system_is_never_touched_unless_listed(cluster):
    server, backend = cluster
    load_into(server, "failures/dns_failure.yaml")  # CoreDNS pod crash-looping in kube-system
    result = backend(allow_writes=True, namespaces=["kube-system", "shop"]).act(A.RESTART_FAILED_PODS)
    assert result["success"] is False and result["data"]["changes"] == []
    assert server.requests_for("delete", "pods") == []
    result = backend(allow_writes=True, write_namespaces=["kube-system"]).act(A.RESTART_FAILED_PODS)
    assert result["data"]["changes"][0]["object"] == "pod kube-system/coredns-668d6bf9bc-4kx8w"
    assert server.store.get(PODS, "kube-system", "coredns-668d6bf9bc-4kx8w") is None


def test_scale_up_targets_the_deployment_with_most_unavailable_replicas(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml")  # cart: 2 of 3 available
    server.store.delete(HPAS, "shop", "cart")  # with its HPA, the HPA owns its replicas (test_kube_intent.py)
    result = backend().act(A.SCALE_UP_DEPLOYMENT)
    assert result["data"]["target"] == "shop/cart"
    assert result["data"]["changes"][0]["server"] == {"replicas": 4}  # what the dry run would set
    assert _dry_runs(server, "patch", "deployments/scale") == ["All"]
    assert server.store.get(DEPLOYMENTS, "shop", "cart")["spec"]["replicas"] == 3
    backend(allow_writes=True, write_namespaces=["shop"]).act(A.SCALE_UP_DEPLOYMENT)
    assert server.store.get(DEPLOYMENTS, "shop", "cart")["spec"]["replicas"] == 4


def test_scale_down_acts_on_no_finding_so_it_sends_nothing(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml")  # something is wrong, but nothing a scale-down fixes
    result = backend(allow_writes=True, write_namespaces=["shop"]).act(A.SCALE_DOWN_DEPLOYMENT)
    # the largest fully available deployment without an HPA or GitOps owner (cart has an HPA)
    assert result["data"]["target"] == "shop/payments" and result["data"]["result"] == "refused"
    assert result["message"].startswith("SCALE_DOWN_DEPLOYMENT withheld: Deployment shop/payments shows nothing")
    assert server.requests_for("patch", "deployments/scale") == []
    assert server.store.get(DEPLOYMENTS, "shop", "payments")["spec"]["replicas"] == 2


def test_drain_is_a_dry_run_by_default(cluster):
    server, backend = cluster
    load_into(server, "failures/node_notready.yaml")
    result = backend().act(A.DRAIN_NODE)
    assert result["data"]["target"] == "node-c"
    changes = {c["object"]: c["change"] for c in result["data"]["changes"]}
    assert changes == {
        "node node-c": "cordon",
        "pod shop/cart-7f9c8d6b5-m3n7p": "evict",
        "pod shop/search-6b8d7f9c4-a1s2d": "evict",
    }
    assert {s["object"] for s in result["data"]["skipped"]} == {"pod monitoring/node-exporter-czz9k"}
    assert set(_dry_runs(server, "patch", "nodes")) == {"All"}
    assert set(_dry_runs(server, "create", "pods/eviction")) == {"All"}
    assert not server.store.get(NODES, "", "node-c")["spec"].get("unschedulable")
    assert server.store.get(PODS, "shop", "cart-7f9c8d6b5-m3n7p") is not None


def test_a_pod_disruption_budget_refusing_an_eviction_is_reported_naming_it(cluster):
    server, backend = cluster
    load_into(server, "failures/node_pressure.yaml")  # node-b: cart and payments pods, payments PDB allows 0
    kube = backend(allow_writes=True, write_namespaces=["shop"])
    kube.observe()  # the budget allowed a disruption when the cluster was read; it no longer does
    pdb = server.store.get(("policy", "v1", "poddisruptionbudgets"), "shop", "payments")
    kube.reading.inventory.get("poddisruptionbudgets", "shop", "payments")["status"] = {
        **pdb["status"],
        "disruptionsAllowed": 1,
    }
    result = kube.act(A.DRAIN_NODE)
    assert result["data"]["target"] == "node-b"
    assert server.store.get(NODES, "", "node-b")["spec"]["unschedulable"] is True
    assert server.store.get(PODS, "shop", "cart-7f9c8d6b5-k8d9z") is None  # evicted (cart PDB allowed one)
    assert server.store.get(PODS, "shop", "payments-5d4b9c7f8-r5t6y") is not None
    refused = result["data"]["refused"]
    assert refused[0]["object"] == "pod shop/payments-5d4b9c7f8-r5t6y"
    assert "PodDisruptionBudget" in refused[0]["reason"] and "disruption budget payments" in refused[0]["reason"]
    assert "1 refused" in result["message"]


def test_drain_never_takes_the_last_ready_node(cluster):
    server, backend = cluster
    load_into(server, "failures/node_pressure.yaml", "failures/cordoned.yaml", "failures/node_notready.yaml")
    server.store.get(NODES, "", "node-c")["spec"]["unschedulable"] = True  # only node-b is schedulable now
    result = backend(allow_writes=True, write_namespaces=["shop"]).act(A.DRAIN_NODE)
    assert result["success"] is False
    assert "last schedulable Ready node" in result["message"]
    assert server.requests_for("patch", "nodes") == []


def test_uncordon_needs_allow_writes(cluster):
    server, backend = cluster
    load_into(server, "failures/cordoned.yaml")
    result = backend().act(A.UNCORDON_NODE)
    assert result["message"] == "would uncordon node node-a (dry run: read-only: writes not allowed)"
    assert server.store.get(NODES, "", "node-a")["spec"]["unschedulable"] is True
    backend(allow_writes=True, write_namespaces=["shop"]).act(A.UNCORDON_NODE)
    assert "unschedulable" not in server.store.get(NODES, "", "node-a")["spec"]


def test_forbidden_write_is_reported_naming_the_permission(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml")
    server.forbid("delete", "pods", "shop")
    result = backend().act(A.RESTART_FAILED_PODS)
    assert result["success"] is False
    assert result["data"]["refused"][0]["reason"].startswith(
        "permission denied: cannot delete pods in namespace 'shop'"
    )


def test_diagnostic_actions_read_the_cluster(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml", "failures/quota_exhausted.yaml", "failures/cordoned.yaml")
    kube = backend()
    nodes = kube.act(A.GET_NODES)
    assert nodes["message"] == "3 nodes: 2 ready, 0 not ready, 1 cordoned"
    pods = kube.act(A.GET_PODS)
    assert pods["data"]["counts"] == {"running": 12, "failed": 1, "succeeded": 1}
    assert "OOMKilled at its memory limit 256Mi" in pods["data"]["unhealthy"][0]["problem"]
    events = kube.act(A.GET_EVENTS)
    assert {w["reason"] for w in events["data"]["warnings"]} == {"BackOff", "FailedCreate"}
    deployments = kube.act(A.GET_DEPLOYMENTS)
    assert deployments["data"]["deployments"][0]["deployment"] == "shop/cart"
    logs = kube.act(A.CHECK_LOGS)
    assert logs["data"]["logs"][0]["previous"] is True
    assert "heap at 251Mi of 256Mi limit" in logs["data"]["logs"][0]["tail"]
    described = kube.act(A.DESCRIBE_UNHEALTHY)["data"]["pods"][0]
    assert described["containers"][0]["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert {e["reason"] for e in described["events"]} == {"BackOff", "Pulled", "Started"}
    # reads act on the observation: each list was read once, whatever the agent asked
    assert len(server.requests_for("list", "events")) == 1
    assert len(server.requests_for("list", "pods")) == 1
    top_nodes = kube.act(A.TOP_NODES)
    assert top_nodes["data"]["nodes"][0] == {
        "node": "node-a",
        "cpu_cores": 1.2,
        "memory_bytes": 4072673 * 1024,
        "cpu_percent": 30.0,
        "memory_percent": 25.0,
    }
    top_pods = kube.act(A.TOP_PODS)
    assert top_pods["data"]["total"] == 12
    quotas = kube.act(A.GET_RESOURCE_QUOTAS)
    pods_quota = next(r for r in quotas["data"]["quotas"][0]["resources"] if r["resource"] == "pods")
    assert pods_quota == {"resource": "pods", "used": "20", "hard": "20", "at_limit": True}
    assert kube.act(A.WAIT)["success"] is True


def test_top_without_metrics_api_says_so(cluster):
    server, backend = cluster
    server.metrics_available = False
    result = backend().act(A.TOP_NODES)
    assert result["success"] is False
    assert result["data"] == {"available": False, "result": "unavailable"}
    assert result["message"].startswith("metrics.k8s.io unavailable")


def test_invalid_action_is_a_value_error(cluster):
    _, backend = cluster
    with pytest.raises(ValueError):
        backend().act(15)


def test_failed_log_reads_are_reported_as_failed_with_their_status(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml", "failures/dns_failure.yaml")
    server.store.logs.clear()  # no previous instance: every previous-log read answers 400
    from kube_server import Fault

    server.inject(Fault(status=400, times=10, resource="pods/log", verb="get"))
    result = backend().act(A.CHECK_LOGS)
    assert result["success"] is False
    assert result["message"].startswith("could not read logs:") and "HTTP 400" in result["message"]
    assert all(entry["status"] == 400 for entry in result["data"]["logs"])


def test_wait_waits_only_after_an_applied_write(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml")
    read_only = backend(wait_seconds=60.0)  # a dry run changes nothing: nothing to wait for
    read_only.act(A.RESTART_FAILED_PODS)
    result = read_only.act(A.WAIT)
    assert result["success"] is True and result["data"]["waited_seconds"] == 0
    writer = backend(allow_writes=True, write_namespaces=["shop"], wait_seconds=0.01)
    assert writer.act(A.RESTART_FAILED_PODS)["data"]["dry_run"] is False
    assert writer.act(A.WAIT)["data"]["waited_seconds"] == 0.01


def test_each_result_says_what_became_of_the_action_in_the_simulators_terms(cluster):
    server, backend = cluster
    load_into(server, "failures/crashloop.yaml")
    read_only = backend()
    assert read_only.act(A.GET_PODS)["data"]["result"] == "applied"
    assert read_only.act(A.RESTART_FAILED_PODS)["data"]["result"] == "dry_run"
    assert read_only.act(A.UNCORDON_NODE)["data"]["result"] == "dry_run"  # read-only, whatever the target
    outside = backend(allow_writes=True, write_namespaces=["other"])
    assert outside.act(A.RESTART_FAILED_PODS)["data"]["result"] == "dry_run"  # shop is not in the allowlist
    writer = backend(allow_writes=True, write_namespaces=["shop"])
    assert writer.act(A.UNCORDON_NODE)["data"]["result"] == "refused"  # no cordoned node to act on
    assert writer.act(A.RESTART_FAILED_PODS)["data"]["result"] == "applied"
    assert writer.act(A.RESTART_FAILED_PODS)["data"]["result"] == "refused"  # nothing failed is left
    server.metrics_available = False
    assert backend().act(A.TOP_PODS)["data"]["result"] == "unavailable"


def test_check_logs_reads_one_pod_per_failing_workload_and_finds_what_they_say(cluster):
    from kube_server.realistic import ClusterSpec, build_cluster, serve

    server, backend = cluster
    spec = ClusterSpec(seed=3, nodes=5, pods_per_node=20, faults=("dns_failure",), noise=False, catalogue_form=True)
    serve(server, build_cluster(spec))
    kube = backend()
    result = kube.act(A.CHECK_LOGS)
    owners = [entry["pod"].rsplit("-", 2)[0] for entry in result["data"]["logs"]]
    assert "kube-system/coredns" in owners and len(owners) == len(set(owners)) >= 3  # CoreDNS, and its victims
    findings = kube.observe().findings
    logs = [f for f in findings if f.kind == "Log"]
    assert {f.reason for f in logs} == {"DNSResolutionFailed"}  # CoreDNS's own fatal loop matches no pattern
    assert logs and all(
        f.reason in ("DNSResolutionFailed", "ConnectionRefused", "Overloaded", "ConfigurationError", "Panic")
        for f in logs
    )
    assert [f.to_dict() for f in logs] == result["data"]["findings"]
