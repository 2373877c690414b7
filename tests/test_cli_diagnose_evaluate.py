"""`cluster-rl diagnose` and `cluster-rl evaluate` through the CLI."""

import json

import pytest
from conftest import run_cli

from rl.faults import Fault


def test_diagnose_json_report_from_a_model(small_model, tmp_path):
    report_path = tmp_path / "reports" / "diagnose.json"
    result = run_cli("diagnose", "--model", small_model, "--seed", "3", "--output", "json", "--report", report_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"mode", "policy", "model", "steps", "findings", "resolved", "total_reward"}
    assert report["mode"] == "simulation" and report["policy"] == "model" and report["model"] == str(small_model)
    assert 1 <= len(report["steps"]) <= 20
    step = report["steps"][0]
    assert set(step) >= {"step", "action", "confidence", "value", "reward", "result", "issues"}
    assert 0 < step["confidence"] <= 1 and isinstance(step["value"], float)
    assert report["findings"] and all({"issue", "status", "recommended"} <= set(f) for f in report["findings"])
    assert json.loads(report_path.read_text()) == report


def test_diagnose_text_shows_steps_findings_and_next_steps():
    result = run_cli("diagnose", "--policy", "expert", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "step   1" in result.stdout and "Findings:" in result.stdout
    assert "Next steps:" in result.stdout and "$ kubectl" in result.stdout


def test_diagnose_is_deterministic_for_a_seed(small_model):
    runs = [run_cli("diagnose", "-m", small_model, "--seed", "8", "-o", "json").stdout for _ in range(2)]
    assert runs[0] == runs[1]


def test_diagnose_without_a_model_says_to_train(home):
    result = run_cli("diagnose", env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 3
    assert "cluster-rl train" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [b"", b"garbage" * 50])
def test_diagnose_with_a_bad_model_file_exits_3(tmp_path, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    result = run_cli("diagnose", "--model", bad)
    assert result.returncode == 3 and "bad.pt" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, text",
    [
        (["--policy", "psychic"], "--policy"),
        (["--allow-writes", "--no-simulation"], "--write-namespace"),
        (["--steps", "0"], "steps"),
    ],
)
def test_diagnose_bad_flags_exit_2(args, text):
    result = run_cli("diagnose", "--policy", "expert", *args) if args[0] != "--policy" else run_cli("diagnose", *args)
    assert result.returncode == 2 and text in result.stderr


def test_evaluate_json_compares_policies_on_the_same_scenarios(small_model):
    result = run_cli(
        "evaluate",
        "--policy",
        "random",
        "--policy",
        "expert",
        "--policy",
        "model",
        "--model",
        small_model,
        "--episodes",
        "300",
        "--seed",
        "11",
        "--output",
        "json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["episodes"] == 300 and data["seed"] == 11
    by_name = {p["policy"]: p for p in data["policies"]}
    assert list(by_name) == ["random", "expert", "model"]
    for p in data["policies"]:
        assert {"resolution_rate", "mean_steps_to_resolve", "mean_return", "harmful_actions_per_episode"} <= set(p)
    assert by_name["expert"]["resolution_rate"] >= 0.85
    assert by_name["random"]["resolution_rate"] <= 0.30


def test_evaluate_text_table_and_plot(tmp_path):
    plot = tmp_path / "cmp.png"
    result = run_cli("evaluate", "--episodes", "200", "--plot", plot)
    assert result.returncode == 0, result.stderr
    assert "expert" in result.stdout and "random" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_bad_plot_name_and_missing_model(home, tmp_path):
    assert run_cli("evaluate", "--plot", tmp_path / "x.jpg").returncode == 2
    missing = run_cli("evaluate", "--policy", "model", env={"CLUSTER_CODE_HOME": str(home)})
    assert missing.returncode == 3 and "cluster-rl train" in missing.stderr


def test_evaluate_json_has_diagnosis_scores_and_per_fault_only_when_asked(small_model):
    args = ("evaluate", "-p", "random", "-p", "expert", "-p", "model", "-m", small_model, "-n", "150", "-o", "json")
    plain = json.loads(run_cli(*args).stdout)
    result = run_cli(*args, "--per-fault")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    fault_names = {f.name.lower() for f in Fault}
    for p, q in zip(plain["policies"], data["policies"], strict=True):
        assert "per_fault" not in p and {k: v for k, v in q.items() if k != "per_fault"} == p
        for key in ("diagnosis_precision", "diagnosis_recall", "diagnosis_f1"):
            assert 0.0 <= q[key] <= 1.0
        assert set(q["per_fault"]) == fault_names
        assert all(
            set(row) == {"episodes", "resolution_rate", "mean_steps_to_resolve", "recall", "active_at_end"}
            for row in q["per_fault"].values()
        )
    by_name = {p["policy"]: p for p in data["policies"]}
    assert by_name["expert"]["diagnosis_f1"] >= 0.95 > by_name["random"]["diagnosis_f1"] + 0.2
    assert by_name["expert"]["per_fault"]["dns_failure"]["recall"] >= 0.95


def test_evaluate_text_shows_diagnosis_and_per_fault_tables():
    result = run_cli("evaluate", "--episodes", "100", "--per-fault", env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "precision" in out and "recall" in out and "F1" in out
    assert "expert: per fault type" in out and "random: per fault type" in out
    assert "dns_failure" in out and "unbound_pvc" in out


def test_diagnose_opens_with_what_the_agent_names_and_the_reads_behind_it():
    result = run_cli("diagnose", "--policy", "expert", "--seed", "6", "--steps", "100", "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report)[:4] == ["mode", "policy", "model", "diagnosis"]
    named = {d["fault"]: d for d in report["diagnosis"]}
    assert set(named) == {"quota_exhausted", "dns_failure"}  # what seed 6 leaves for a human
    steps = {s["step"]: s["action"] for s in report["steps"]}
    for entry in report["diagnosis"]:
        assert entry["probability"] == 1.0 and entry["evidence"]
        for e in entry["evidence"]:
            assert steps[e["step"]] == e["read"] and e["showed"]  # a read of this run, and what it showed
    assert "exceeded quota" in named["quota_exhausted"]["evidence"][0]["showed"]
    # The agent is done, but two faults need a human: never "resolved".
    assert report["agent_done"] is True and report["resolved"] is False
    assert report["steps"][-1]["action"] == "WAIT" and set(report["steps"][-1]["named"]) == set(named)

    text = run_cli("diagnose", "--policy", "expert", "--seed", "6", "--steps", "100").stdout
    assert text.index("The agent names:") < text.index("step   1") < text.index("Findings:") < text.index("Next steps:")
    assert "quota_exhausted (100%)" in text and "GET_DEPLOYMENTS: FailedCreate: exceeded quota" in text
    assert "Not resolved in" in text and "names 2 fault(s) only a human can fix" in text


def test_diagnose_is_resolved_only_with_nothing_named_and_nothing_open():
    seen = set()
    for seed in range(6):
        report = json.loads(
            run_cli("diagnose", "--policy", "expert", "--seed", str(seed), "-s", "100", "-o", "json").stdout
        )
        open_findings = [f for f in report["findings"] if f["status"] != "fixed"]
        assert report["resolved"] == (report["agent_done"] and not report["diagnosis"] and not open_findings)
        seen.add(report["resolved"])
    assert False in seen


def test_diagnose_json_from_a_model_carries_its_diagnosis(small_model):
    report = json.loads(run_cli("diagnose", "-m", small_model, "--seed", "5", "-o", "json").stdout)
    fault_names = {f.name.lower() for f in Fault}
    for entry in report["diagnosis"]:
        assert entry["fault"] in fault_names and 0.5 <= entry["probability"] <= 1.0
        assert isinstance(entry["evidence"], list)
    assert all(set(s["named"]) <= fault_names for s in report["steps"])
