"""`diagnose --no-simulation` and `train --no-simulation` against the fake API server, through a
real kubeconfig and the real kubernetes client, in real subprocesses."""

import json

import pytest
from conftest import run_cli
from kube_server import FakeKubeServer, load_into, write_kubeconfig


def snapshot(server) -> str:
    """Every object the server holds, as text, to check that nothing changed."""
    flat = {
        f"{kind}/{ns}/{name}": obj for kind, objs in server.store.objects.items() for (ns, name), obj in objs.items()
    }
    return json.dumps(flat, sort_keys=True, default=str)


@pytest.fixture
def cluster(tmp_path):
    server = FakeKubeServer().start()
    load_into(server, "healthy", "failures/crashloop.yaml", "failures/cordoned.yaml")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, context="prod")
    yield server, kubeconfig
    server.stop()


def test_diagnose_a_real_cluster_read_only(cluster, tmp_path):
    server, kubeconfig = cluster
    before = snapshot(server)
    result = run_cli(
        "diagnose",
        "--no-simulation",
        "--policy",
        "expert",
        "--steps",
        "12",
        "-o",
        "json",
        env={"KUBECONFIG": str(kubeconfig)},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == "cluster" and report["writes_allowed"] is False
    issues = " ".join(f["issue"] for f in report["findings"])
    assert "CrashLoopBackOff" in issues and "cordoned" in issues
    assert any(cmd.startswith("kubectl uncordon") for f in report["findings"] for cmd in f["recommended"])
    # every write the agent attempted went out as a server-side dry run
    writes = [r for r in server.requests if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]
    assert all(r["query"].get("dryRun") == "All" or r["method"] == "DELETE" for r in writes), writes
    assert snapshot(server) == before


def test_diagnose_on_a_real_cluster_backs_what_the_agent_names_with_findings(cluster):
    _, kubeconfig = cluster
    result = run_cli(
        "diagnose", "--no-simulation", "--policy", "expert", "-o", "json", env={"KUBECONFIG": str(kubeconfig)}
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    named = {d["fault"]: d for d in report["diagnosis"]}
    assert "node_cordoned" in named  # `get nodes` shows a SchedulingDisabled node
    evidence = named["node_cordoned"]["evidence"]
    assert evidence and all(e["reason"] == "Cordoned" and e["read"].startswith("Node ") for e in evidence)
    assert report["resolved"] is False and report["findings"]


def test_diagnose_text_on_a_real_cluster_names_evidence(cluster):
    _, kubeconfig = cluster
    result = run_cli(
        "diagnose",
        "--no-simulation",
        "--policy",
        "expert",
        "--steps",
        "5",
        "--context",
        "prod",
        "--namespace",
        "shop",
        env={"KUBECONFIG": str(kubeconfig)},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Root causes (and what each explains):" in out and "$ kubectl" in out
    assert "Findings:" not in out  # each finding once, under its root cause
    assert out.index("The agent names:") < out.index("Root causes") < out.index("Next steps:")


def test_unreachable_api_server_and_bad_kubeconfig_exit_5(tmp_path):
    dead = write_kubeconfig(tmp_path / "dead", "http://127.0.0.1:9")
    result = run_cli("diagnose", "--no-simulation", "--policy", "expert", env={"KUBECONFIG": str(dead)})
    assert result.returncode == 5 and len(result.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken"
    broken.write_text("this: [is not a kubeconfig")
    result = run_cli("diagnose", "--no-simulation", "--policy", "expert", env={"KUBECONFIG": str(broken)})
    assert result.returncode == 5 and "Traceback" not in result.stderr
    result = run_cli("train", "--no-simulation", "--total-steps", "10", env={"KUBECONFIG": str(dead)})
    assert result.returncode == 5


def test_train_no_simulation_sizes_the_simulator_after_the_real_cluster(cluster, home):
    _, kubeconfig = cluster
    result = run_cli(
        "train",
        "--no-simulation",
        "--num-envs",
        "64",
        "--total-steps",
        "2048",
        "--run-name",
        "calib",
        env={"KUBECONFIG": str(kubeconfig), "CLUSTER_CODE_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    calibration = next(e for e in events if e["event"] == "cluster")
    assert calibration["nodes"] == 3 and calibration["scenario"]["min_nodes"] == 3
    assert events[-1]["event"] == "done"


def test_no_metrics_server_is_unknown_not_a_blocker_and_a_forbidden_log_read_is_degraded(tmp_path):
    """Without metrics-server usage is unknown: listed in `degraded` and `unknown`, and a healthy
    cluster is still reported healthy. A 403 on pods/log is an unreadable source: in `degraded`."""
    with FakeKubeServer(metrics_available=False) as server:
        load_into(server, "healthy")
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        result = run_cli(
            "diagnose", "--no-simulation", "--policy", "expert", "-o", "json", env={"KUBECONFIG": str(kubeconfig)}
        )
        text = run_cli("diagnose", "--no-simulation", "--policy", "expert", env={"KUBECONFIG": str(kubeconfig)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resolved"] is True and report["agent_done"] is True and report["findings"] == []
    metrics = [d for d in report["degraded"] if d.startswith("metrics.k8s.io unavailable: API not served")]
    assert metrics and set(report["unknown"]) == set(report["degraded"]) and report["errors"] == report["degraded"]
    assert text.returncode == 0 and "No problem found" in text.stdout and "Unknown (does not keep" in text.stdout

    with FakeKubeServer() as server:
        load_into(server, "healthy", "failures/readiness.yaml")  # the runbook reads logs to explain it
        server.forbid("get", "pods/log")
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        result = run_cli(
            "diagnose", "--no-simulation", "--policy", "expert", "-o", "json", env={"KUBECONFIG": str(kubeconfig)}
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert any(s["action"] == "CHECK_LOGS" and not s["success"] for s in report["steps"])
    (log,) = [
        d for d in report["degraded"] if d.startswith("pods/log unreadable (permission denied: cannot get pods/log")
    ]
    assert log in report["errors"] and report["resolved"] is False
