"""Report truth from findings: next steps for every reason, root-cause grouping, k8sgpt-shaped JSON,
and a diagnose run that never repeats a write and stays read-only by default."""

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from conftest import run_cli
from kube_server import FakeKubeServer, load_into, write_kubeconfig

from entrypoint.recommendations import steps_for
from rl.kube import KubeBackend
from rl.kube.analyzers import REASONS
from rl.kube.analyzers.log import REASONS as LOG_REASONS
from rl.kube.grouping import group


def test_every_reason_an_analyzer_can_emit_has_next_steps():
    reasons = {**REASONS, "Log": LOG_REASONS}
    missing = [(kind, reason) for kind, reasons in reasons.items() for reason in reasons if not steps_for(kind, reason)]
    assert missing == []


@pytest.fixture
def cluster(tmp_path):
    server = FakeKubeServer().start()
    load_into(server, "healthy")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    yield server, kubeconfig
    server.stop()


def _roots(server, kubeconfig, *failures):
    load_into(server, *(f"failures/{f}.yaml" for f in failures))
    backend = KubeBackend(kubeconfig=str(kubeconfig), backoff_seconds=0.01)
    observation = backend.observe()
    return group(observation.findings, backend.reading.inventory)


def _names(root):
    return {(f.kind, f.object_name, f.reason) for f in root.affects}


def test_grouping_a_dead_node_explains_its_pods(cluster):
    roots = _roots(*cluster, "terminating")
    assert (roots[0].finding.kind, roots[0].finding.name, roots[0].finding.reason) == ("Node", "node-c", "NotReady")
    assert _names(roots[0]) == {
        ("Pod", "shop/cart-7f9c8d6b5-m3n7p", "TerminatingOnDeadNode"),
        ("Pod", "shop/search-6b8d7f9c4-a1s2d", "PhaseUnknown"),
    }


def test_grouping_a_crashlooping_pod_explains_its_deployment_and_service(cluster):
    roots = _roots(*cluster, "crashloop")
    assert len(roots) == 1
    assert (roots[0].finding.kind, roots[0].finding.reason) == ("Pod", "OOMKilled")
    assert _names(roots[0]) == {
        ("Deployment", "shop/cart", "ReplicasUnavailable"),
        ("Service", "shop/cart", "NotReadyEndpoints"),
    }


def test_grouping_dns_down_explains_coredns_pods_and_lookup_failures(cluster):
    roots = _roots(*cluster, "dns_down")
    assert (roots[0].finding.kind, roots[0].finding.reason) == ("ClusterDNS", "DNSDown")
    assert _names(roots[0]) == {
        ("Pod", "kube-system/coredns-668d6bf9bc-4kx8w", "CrashLoopBackOff"),
        ("Pod", "kube-system/coredns-668d6bf9bc-9vz2m", "CrashLoopBackOff"),
        ("Pod", "shop/payments-5d4b9c7f8-q9w8e", "DNSResolutionFailed"),
    }


def test_grouping_a_stuck_mount_explains_the_statefulset_and_service(cluster):
    roots = _roots(*cluster, "mount_stuck")
    assert (roots[0].finding.kind, roots[0].finding.name, roots[0].finding.reason) == ("Pod", "db-0", "FailedMount")
    assert _names(roots[0]) == {
        ("StatefulSet", "shop/db", "ReplicasUnavailable"),
        ("Service", "shop/db", "NoReadyEndpoints"),
    }


def test_grouping_an_exhausted_quota_explains_the_refused_replicaset(cluster):
    roots = _roots(*cluster, "quota_exhausted")
    assert (roots[0].finding.kind, roots[0].finding.reason) == ("ResourceQuota", "QuotaExceeded")
    assert _names(roots[0]) == {("ReplicaSet", "shop/search-6b8d7f9c4", "FailedCreate")}


def test_grouping_node_pressure_explains_evictions_there(cluster):
    roots = _roots(*cluster, "node_pressure", "evicted")
    root = next(r for r in roots if r.finding.reason == "MemoryPressure")
    assert _names(root) == {("Pod", "shop/report-84c6d9f7b-p2p3q", "Evicted")}


def test_grouping_an_unbound_claim_explains_the_pods_mounting_it(cluster):
    roots = _roots(*cluster, "pvc_pending", "mount_stuck")
    root = next(r for r in roots if r.finding.kind == "PersistentVolumeClaim")
    assert ("Pod", "shop/db-0", "FailedMount") in _names(root)
    assert ("StatefulSet", "shop/db", "ReplicasUnavailable") in _names(root)


def _diagnose(kubeconfig, *args):
    result = run_cli(
        "diagnose", "--no-simulation", "--policy", "expert", "-o", "json", *args, env={"KUBECONFIG": str(kubeconfig)}
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_service_without_pods_is_never_called_healthy_and_json_has_k8sgpt_shape(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/service_no_pods.yaml")
    report = _diagnose(kubeconfig)
    assert report["resolved"] is False
    assert report["root_causes"][0]["finding"]["reason"] == "NoMatchingPods"
    k8sgpt = read_as_k8sgpt(report)
    assert k8sgpt["status"] == "ProblemDetected" and k8sgpt["problems"] == 1
    assert k8sgpt["results"] == [
        {
            "kind": "Service",
            "name": "shop/checkout",
            "error": [{"Text": k8sgpt["results"][0]["error"][0]["Text"], "KubernetesDoc": "", "Sensitive": []}],
            "details": "",
            "parentObject": "",
        }
    ]
    assert report["findings"][0]["recommended"]


def test_healthy_cluster_reports_ok(cluster):
    _, kubeconfig = cluster
    report = _diagnose(kubeconfig)
    assert report["resolved"] is True and report["findings"] == []
    k8sgpt = read_as_k8sgpt(report)
    assert (k8sgpt["status"], k8sgpt["problems"], k8sgpt["results"], k8sgpt["errors"]) == ("OK", 0, [], None)


# k8sgpt's `analyze --output json` (pkg/analysis JsonOutput, pkg/common Result/Failure/Sensitive):
# the keys a reader of k8sgpt's output relies on, with their JSON types.
K8SGPT_TOP = {"provider": str, "errors": (list, type(None)), "status": str, "problems": int, "results": list}
K8SGPT_RESULT = {"kind": str, "name": str, "error": list, "details": str, "parentObject": str}
K8SGPT_FAILURE = {"Text": str, "KubernetesDoc": str, "Sensitive": list}


def read_as_k8sgpt(report: dict) -> dict:
    """What a tool written for k8sgpt's JSON reads from the top level of our report, checked
    against k8sgpt's schema (names, casing, types) and its own rules for status and problems."""
    view = {key: report[key] for key in K8SGPT_TOP}
    assert all(isinstance(view[k], t) for k, t in K8SGPT_TOP.items()), view
    assert all(isinstance(e, str) for e in view["errors"] or [])
    for result in view["results"]:
        assert set(result) == set(K8SGPT_RESULT) and all(isinstance(result[k], t) for k, t in K8SGPT_RESULT.items())
        for failure in result["error"]:
            assert set(failure) == set(K8SGPT_FAILURE)
            assert all(isinstance(failure[k], t) for k, t in K8SGPT_FAILURE.items())
            assert all(set(s) == {"Unmasked", "Masked"} for s in failure["Sensitive"])
    assert view["problems"] == sum(len(r["error"]) for r in view["results"])
    assert view["status"] == ("ProblemDetected" if view["problems"] else "OK")
    assert report["k8sgpt"] == view  # the earlier nested layout still holds the same object
    return view


def test_a_real_cluster_diagnose_imports_neither_typed_apis_nor_job_specs(cluster):
    """What keeps `diagnose --no-simulation` fast: requests go by path, so the kubernetes client's
    generated API classes and their pydantic models are never imported, nor is the job-spec schema."""
    _, kubeconfig = cluster
    script = (
        "import sys\n"
        "from entrypoint.cli import main\n"
        "code = main(['diagnose', '--no-simulation', '--policy', 'expert', '-o', 'json'])\n"
        "heavy = ('kubernetes.client.api.', 'kubernetes.client.models.', 'entrypoint.jobspec')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)), code, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(done.stdout)["resolved"] is True
    assert done.stderr.strip().splitlines()[-1] == "[] 0"


def test_k8sgpt_fields_are_at_the_top_level_next_to_our_own(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/crashloop.yaml")
    report = _diagnose(kubeconfig)
    k8sgpt = read_as_k8sgpt(report)
    by_object = {(r["kind"], r["name"]): r for r in k8sgpt["results"]}
    pod = by_object[("Pod", "shop/cart-7f9c8d6b5-x2x4q")]
    assert pod["parentObject"] == "Deployment/cart"
    assert any(e["Text"].startswith("OOMKilled: ") for e in pod["error"])
    assert ("Deployment", "shop/cart") in by_object and ("Service", "shop/cart") in by_object
    # one error entry per open finding, on the object the finding names
    assert Counter((f["kind"], f["namespace"], f["name"]) for f in report["findings"]) == Counter(
        {(kind, *name.split("/", 1)): len(r["error"]) for (kind, name), r in by_object.items()}
    )
    assert k8sgpt["provider"] == "" and k8sgpt["errors"] is None
    for ours in ("mode", "policy", "steps", "findings", "root_causes", "resolved", "degraded", "observations"):
        assert ours in report


def test_k8sgpt_errors_name_what_could_not_be_analyzed(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/service_no_pods.yaml")
    server.forbid("list", "ingresses.networking.k8s.io", None)
    report = _diagnose(kubeconfig)
    k8sgpt = read_as_k8sgpt(report)
    assert k8sgpt["errors"] == report["degraded"] and any("ingresses" in e for e in k8sgpt["errors"])
    assert k8sgpt["status"] == "ProblemDetected" and k8sgpt["problems"] == 1


# Reasons each fixture's analyzer must emit, through the CLI and the API server: (fixture, kind,
# namespace, name, reason, severity, parentObject, a fact the message or evidence must carry).
REASON_FIXTURES = [
    (
        "scheduling_gated",
        "Pod",
        "shop",
        "train-resnet-0",
        "SchedulingGated",
        "warning",
        "",
        "spec.schedulingGates example.com/gpu-quota",
    ),
    (
        "terminating_stuck",
        "Pod",
        "shop",
        "payments-5d4b9c7f8-r5t6y",
        "TerminatingStuck",
        "warning",
        "Deployment/payments",
        "finalizers example.com/drain-connections",
    ),
    ("pod_not_ready", "Pod", "shop", "ledger-sync", "NotReady", "warning", "", "Ready=False ContainersNotReady"),
    (
        "disk_pressure",
        "Node",
        "",
        "node-a",
        "DiskPressure",
        "warning",
        "",
        "DiskPressure=True (KubeletHasDiskPressure)",
    ),
    (
        "pid_pressure",
        "Node",
        "",
        "node-c",
        "PIDPressure",
        "warning",
        "",
        "PIDPressure=True (KubeletHasInsufficientPID)",
    ),
    (
        "replica_failure",
        "Deployment",
        "shop",
        "payments",
        "ReplicaFailure",
        "critical",
        "",
        'serviceaccount "payments" not found',
    ),
    (
        "daemonset_misscheduled",
        "DaemonSet",
        "monitoring",
        "node-exporter",
        "Misscheduled",
        "warning",
        "",
        "numberMisscheduled 1",
    ),
    ("job_retrying", "Job", "shop", "reindex", "PodFailures", "warning", "", "status.failed 2"),
    ("job_suspended", "Job", "shop", "migrate-orders", "Suspended", "info", "", "spec.suspend=true"),
    ("pvc_lost", "PersistentVolumeClaim", "shop", "reports-archive", "Lost", "critical", "", "pvc-7e21"),
]


@pytest.mark.parametrize(
    ("failure", "kind", "namespace", "name", "reason", "severity", "parent", "fact"),
    REASON_FIXTURES,
    ids=[f"{r[1]}-{r[4]}" for r in REASON_FIXTURES],
)
def test_each_reason_is_reported_with_its_structured_finding_and_next_steps(
    cluster, failure, kind, namespace, name, reason, severity, parent, fact
):
    server, kubeconfig = cluster
    load_into(server, f"failures/{failure}.yaml")
    report = _diagnose(kubeconfig)
    entries = [
        f
        for f in report["findings"]
        if (f["kind"], f["namespace"], f["name"], f["reason"]) == (kind, namespace, name, reason)
    ]
    assert len(entries) == 1, [(f["kind"], f["name"], f["reason"]) for f in report["findings"]]
    entry = entries[0]
    assert (entry["severity"], entry["parent"]) == (severity, parent)
    assert entry["message"] and entry["evidence"]
    assert fact in entry["message"] + " " + " ".join(entry["evidence"])
    assert entry["recommended"] and any(name in command for command in entry["recommended"])
    # A retrying Job, a suspended one: what healthy clusters show (rl.faults.open_problems) is listed,
    # and the cluster is still healthy; anything else keeps it from being resolved.
    assert report["resolved"] is ((kind, reason) in {("Job", "PodFailures"), ("Job", "Suspended")})
    object_name = f"{namespace}/{name}" if namespace else name
    result = next(r for r in read_as_k8sgpt(report)["results"] if (r["kind"], r["name"]) == (kind, object_name))
    assert any(e["Text"].startswith(f"{reason}: ") for e in result["error"])


@pytest.mark.parametrize("failure", ["node_notready", "node_pressure", "crashloop", "evicted", "cordoned"])
def test_no_write_is_sent_twice_and_read_only_sends_only_dry_runs(cluster, failure):
    server, kubeconfig = cluster
    load_into(server, f"failures/{failure}.yaml")
    report = _diagnose(kubeconfig, "--steps", "20")
    writes = [r for r in server.requests if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]
    assert all(r["query"].get("dryRun") == "All" for r in writes), writes
    repeated = Counter((r["method"], r["path"]) for r in writes)
    assert all(n == 1 for n in repeated.values()), repeated
    assert report["resolved"] is False and report["findings"]


def test_each_list_is_read_once_per_observation(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/crashloop.yaml", "failures/cordoned.yaml")
    report = _diagnose(kubeconfig, "--steps", "20")
    lists = Counter(r["resource"] for r in server.requests if r["verb"] == "list" and not r["query"].get("continue"))
    lists.pop("pods.metrics.k8s.io", None)  # TOP_PODS: not part of an observation, read once when asked
    drains = sum(1 for s in report["steps"] if s["action"] == "DRAIN_NODE")
    pods = lists.pop("pods")
    assert pods <= report["observations"] + drains  # a drain lists the pods of its node
    assert set(lists.values()) == {report["observations"]}, lists


def test_a_refused_remedy_is_reported_once_with_the_permission_it_needs(cluster):
    server, kubeconfig = cluster
    load_into(server, "failures/crashloop.yaml")
    # without its HPA, which would own cart's replicas (the scale would be withheld: test_kube_intent.py)
    server.store.delete(("autoscaling", "v2", "horizontalpodautoscalers"), "shop", "cart")
    server.forbid("patch", "deployments/scale", "shop")
    # OOMKilled pods: with writes allowed, the runbook scales their deployment up (refused here)
    report = _diagnose(kubeconfig, "--steps", "20", "--allow-writes", "--write-namespace", "shop")
    refused = [e for e in report["could_not_act"] if e["why"] == "refused by the cluster"]
    assert len(refused) == 1
    assert refused[0]["action"] == "SCALE_UP_DEPLOYMENT"
    assert refused[0]["permission_needed"] == "patch deployments/scale in namespace 'shop'"
    assert len(server.requests_for("patch", "deployments/scale")) == 1


def test_a_model_sure_of_one_refused_remedy_does_not_loop(cluster, tmp_path):
    """The field report: a model chose DRAIN_NODE at 100% in all 20 steps, each refused. Now the
    dry-run answer marks it unavailable for that node and the model's next choice skips it."""
    import torch

    from rl.actions import ClusterAction
    from rl.model import build_policy, save_model

    policy = build_policy(8, 1, lstm=False)
    with torch.no_grad():
        policy.actor.weight.zero_()
        policy.actor.bias.zero_()
        policy.actor.bias[ClusterAction.DRAIN_NODE] = 50.0
        policy.actor.bias[ClusterAction.WAIT] = -50.0
    model = save_model(tmp_path / "drain.pt", policy, {"global_step": 1})
    server, kubeconfig = cluster
    load_into(server, "failures/node_notready.yaml")
    result = run_cli(
        "diagnose",
        "--no-simulation",
        "--model",
        str(model),
        "--steps",
        "20",
        "-o",
        "json",
        env={"KUBECONFIG": str(kubeconfig)},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    actions = [s["action"] for s in report["steps"]]
    assert actions[0] == "DRAIN_NODE" and report["steps"][0]["confidence"] == pytest.approx(1.0)
    assert actions.count("DRAIN_NODE") == 1
    assert len(actions) == len(set(actions))  # nothing repeated on an unchanged cluster
    assert report["stopped"] == "nothing left the agent can read or change"
    assert len(server.requests_for("patch", "nodes")) == 1
    assert any(e["action"] == "DRAIN_NODE" and e["why"] == "dry run only" for e in report["could_not_act"])
