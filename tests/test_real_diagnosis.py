"""The labelled real-cluster benchmark: its clusters, its figures, and reports that name nothing no
read showed (`benchmarks/real_diagnosis.py`, `kube_server.realistic`)."""

import json
import subprocess
import sys
from collections import Counter

import pytest
from conftest import ROOT, run_cli
from kube_server import FakeKubeServer, write_kubeconfig
from kube_server.realistic import FAULT_TYPES, benchmark_specs, build_cluster, serve

from rl.findings import SHOWN_BY, vector_key
from rl.kube import KubeBackend

BENCHMARK = ROOT / "benchmarks" / "real_diagnosis.py"
SCORES = {"root_f1", "precision", "recall", "top1", "healthy_false_names", "named_without_evidence", "sim_f1"}


def test_the_labelled_set_is_as_large_and_varied_as_the_issue_asks():
    specs = benchmark_specs()
    assert len(specs) >= 50
    per_fault = Counter(f for s in specs for f in s.faults)
    assert set(per_fault) == set(FAULT_TYPES) and min(per_fault.values()) >= 3
    assert sum(1 for s in specs if not s.faults) >= 0.2 * len(specs)
    assert sum(1 for s in specs if len(s.faults) == 2) >= 5
    assert all(3 <= s.nodes <= 200 and 10 <= s.pods_per_node <= 110 for s in specs)
    assert {s.metrics for s in specs} == {True, False} and {s.late for s in specs} == {True, False}
    assert max(s.nodes for s in specs) >= 100 and min(s.nodes for s in specs) <= 5
    assert benchmark_specs() == specs  # written from a seed: the same set every time
    assert benchmark_specs(seed=23) != specs


def test_a_generated_cluster_has_what_real_clusters_have():
    spec = next(s for s in benchmark_specs() if 20 <= s.nodes <= 60 and s.metrics)
    cluster = build_cluster(spec)
    kinds = Counter(o["kind"] for o in cluster.objects)
    for kind in ("Deployment", "ReplicaSet", "StatefulSet", "Service", "EndpointSlice", "Ingress", "DaemonSet"):
        assert kinds[kind] > 0, kind
    for kind in ("HorizontalPodAutoscaler", "Job", "CronJob", "PersistentVolumeClaim", "NodeMetrics", "PodMetrics"):
        assert kinds[kind] > 0, kind
    names = {
        (o["metadata"].get("namespace"), o["metadata"]["name"]) for o in cluster.objects if o["kind"] == "DaemonSet"
    }
    assert ("kube-system", "kube-proxy") in names
    assert names & {("kube-system", cni) for cni in ("calico-node", "cilium", "aws-node")}
    assert any(o["kind"] == "Deployment" and o["metadata"]["name"] == "coredns" for o in cluster.objects)
    assert any(o["kind"] == "Pod" and o["status"]["phase"] == "Succeeded" for o in cluster.objects)  # completed Jobs
    pods = [o for o in cluster.objects if o["kind"] == "Pod" and o["spec"].get("nodeName")]
    per_node = Counter(p["spec"]["nodeName"] for p in pods if p["status"]["phase"] != "Succeeded")
    assert len(per_node) == spec.nodes and max(per_node.values()) <= 1.3 * spec.pods_per_node
    assert sum(1 for o in cluster.objects if o["kind"] == "Event" and o["type"] == "Warning") > 0
    assert cluster.labels == spec.faults


@pytest.fixture
def served(tmp_path):
    server = FakeKubeServer().start()
    yield server, write_kubeconfig(tmp_path / "kubeconfig", server.url)
    server.stop()


@pytest.mark.parametrize("fault", FAULT_TYPES)
def test_each_fault_shows_its_signature_to_the_analyzers(served, fault):
    """The generator breaks the cluster so that the analyzers see the incident (its labels are never
    derived from them: this only checks that the incident is there to be found)."""
    from rl.diagnosis import EVIDENCE_KEYS
    from rl.faults import Fault

    server, kubeconfig = served
    spec = next(s for s in benchmark_specs() if fault in s.faults)
    serve(server, build_cluster(spec))
    with KubeBackend(kubeconfig=str(kubeconfig), backoff_seconds=0.01) as backend:
        backend.observe()
        from rl.actions import ClusterAction

        backend.act(ClusterAction.CHECK_LOGS)
        keys = {vector_key(f) for f in backend.observe().findings}
    assert keys & EVIDENCE_KEYS[Fault[fault.upper()]]


def run_benchmark(*args, timeout=900):
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--json", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_benchmark_reports_model_expert_and_lookup_in_the_issue_shape(small_model):
    result = run_benchmark("--model", small_model, "--limit", 4, "--sim-episodes", 2, "--details")
    assert result["clusters"] == 4 and len(result["details"]) == 4
    for name in ("model", "expert", "lookup"):
        scores = result[name]
        assert SCORES <= set(scores)
        assert all(0.0 <= scores[k] <= 1.0 for k in ("root_f1", "precision", "recall", "top1", "sim_f1"))
        assert scores["unbacked_names"] == 0
    # the lookup names the signature of every finding, benign ones too; the runbook reads what it needs
    assert result["expert"]["root_f1"] >= result["lookup"]["root_f1"]
    assert result["lookup"]["named_without_evidence"] == 0 and result["expert"]["named_without_evidence"] == 0
    for row in result["details"]:
        assert set(row) >= {"labels", "model", "expert", "lookup"}


def test_the_benchmark_without_a_model_measures_the_baselines_and_refuses_a_bad_model(tmp_path):
    result = run_benchmark("--limit", 2, "--sim-episodes", 1)
    assert result["model"] is None and result["expert"] and result["lookup"]
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    failed = subprocess.run(
        [sys.executable, str(BENCHMARK), "--model", str(bad), "--limit", "1"], capture_output=True, text=True, cwd=ROOT
    )
    assert failed.returncode == 3 and len(failed.stderr.strip().splitlines()) == 1


def test_diagnose_no_simulation_names_only_what_its_reads_showed(served, small_model):
    """The real CLI on benchmark clusters: every fault it names has evidence that a read it took
    shows; what it believes without evidence is only suspected."""
    server, kubeconfig = served
    faulty = [s for s in benchmark_specs() if s.faults and s.nodes <= 30][:3]
    for spec in faulty:
        serve(server, build_cluster(spec))
        for policy in (["--policy", "expert"], ["--model", str(small_model)]):
            result = run_cli("diagnose", "--no-simulation", *policy, "-o", "json", env={"KUBECONFIG": str(kubeconfig)})
            assert result.returncode == 0, result.stderr
            report = json.loads(result.stdout)
            assert_names_only_what_was_read(report)


def assert_names_only_what_was_read(report: dict) -> None:
    from rl.actions import ClusterAction
    from rl.findings import EVENT_REASONS

    reads = {ClusterAction[s["action"]] for s in report["steps"]}
    named = {d["fault"] for d in report["diagnosis"]}
    assert not named & {s["fault"] for s in report["suspected"]}
    for entry in report["diagnosis"]:
        assert entry["evidence"], entry
        for e in entry["evidence"]:
            kind, reason = e["read"].split(" ", 1)[0], e["reason"]
            key = ("Event", reason) if reason in EVENT_REASONS and kind != "Log" else (kind, reason)
            assert set(SHOWN_BY[key]) & reads, (entry["fault"], key, reads)


@pytest.mark.slow
def test_no_report_names_what_no_read_showed_on_any_benchmark_cluster(small_model):
    result = run_benchmark("--model", small_model, "--sim-episodes", 1, timeout=1800)
    assert result["clusters"] == len(benchmark_specs())
    assert all(result[name]["unbacked_names"] == 0 for name in ("model", "expert", "lookup"))


def test_a_cluster_with_only_the_noise_healthy_clusters_have_is_reported_healthy(served):
    """A healthy cluster shows benign findings (a PodDisruptionBudget at its limit, a suspended
    CronJob, a node cordoned for planned maintenance, ...): they are listed, and the cluster is still
    "resolved" by a report that names nothing, as a healthy simulated cluster is."""
    from rl.faults import BENIGN_ONLY, is_problem
    from rl.findings import Finding

    server, kubeconfig = served
    spec = next(s for s in benchmark_specs() if not s.faults and s.nodes <= 60)
    serve(server, build_cluster(spec))
    result = run_cli(
        "diagnose", "--no-simulation", "--policy", "expert", "-o", "json", env={"KUBECONFIG": str(kubeconfig)}
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["diagnosis"] == [] and report["resolved"] is True
    assert report["findings"]  # listed: a retrying Job's failed pod, a default-deny policy, ...
    text = run_cli("diagnose", "--no-simulation", "--policy", "expert", env={"KUBECONFIG": str(kubeconfig)})
    assert "No problem found (" in text.stdout, text.stdout
    # What a fault produces is a problem; the benign findings no fault produces are not.
    assert is_problem(Finding("Pod", "shop", "cart-1", "OOMKilled", "OOMKilled"))
    for kind, reason in BENIGN_ONLY:
        assert not is_problem(Finding(kind, "shop", "x", reason, reason)), (kind, reason)
