"""`cluster-rl diagnose` and `cluster-rl evaluate` through the CLI."""

import json

import pytest
from conftest import run_cli


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
