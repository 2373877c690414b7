"""`benchmarks/agent_quality.py`: one JSON line, every family, every policy with evaluate's fields."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = [
    "default",
    "4_faults",
    "new_faults_0.05",
    "cascade_0.4",
    "nodes_3",
    "nodes_3_10",
    "nodes_300_1000",
    "nodes_1000",
    "max_steps_30",
    "healthy",
    "read_only",
    "no_metrics",
]


def run_benchmark(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "agent_quality.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def test_json_has_every_family_and_policy_with_evaluates_fields(small_model):
    result = run_benchmark("--model", small_model, "--episodes", "8", "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert list(data["families"]) == FAMILIES
    assert data["seed"] == 10**9 and data["episodes"] == 8  # unseen seeds: training seeds clusters from 0
    fields = {
        "policy",
        "resolution_rate",
        "mean_steps_to_resolve",
        "mean_return",
        "harmful_actions_per_episode",
        "catastrophe_rate",
        "true_health_at_end",
        "unresolved_human_faults_at_end",
        "undiagnosed_faults_at_end",
        "diagnosis_precision",
        "diagnosis_recall",
        "diagnosis_f1",
        "wrong_report_rate",
        "false_alarms_per_episode",
        "per_fault",
    }
    for family, policies in data["families"].items():
        assert list(policies) == ["model", "expert", "random"], family
        for name, entry in policies.items():
            assert set(entry) == fields and entry["policy"] == name
            assert 0.0 <= entry["diagnosis_f1"] <= 1.0
    assert data["families"]["default"]["expert"]["resolution_rate"] >= 0.75


def test_families_are_the_scenarios_they_name():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from agent_quality import family_scenario

    assert family_scenario("default") == family_scenario("default").__class__()
    assert (family_scenario("4_faults").min_faults, family_scenario("4_faults").max_faults) == (4, 4)
    assert family_scenario("new_faults_0.05").new_fault_rate == 0.05
    assert family_scenario("cascade_0.4").cascade_chance == 0.4
    assert (family_scenario("nodes_3_10").min_nodes, family_scenario("nodes_3_10").max_nodes) == (3, 10)
    assert (family_scenario("nodes_300_1000").min_nodes, family_scenario("nodes_300_1000").max_nodes) == (300, 1000)
    assert family_scenario("max_steps_30").max_steps == 30
    assert (family_scenario("nodes_1000").min_nodes, family_scenario("nodes_3").max_nodes) == (1000, 3)
    assert family_scenario("healthy").max_faults == 0 and family_scenario("read_only").read_only_share == 1.0
    assert family_scenario("no_metrics").metrics_share == 0.0


def test_text_table_and_a_bad_model_exit_3(tmp_path):
    table = run_benchmark("--episodes", "5")
    assert table.returncode == 0, table.stderr
    assert "nodes_300_1000" in table.stdout and "expert" in table.stdout and "diag F1" in table.stdout
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    result = run_benchmark("--model", bad, "--episodes", "5")
    assert result.returncode == 3 and "bad.pt" in result.stderr and "Traceback" not in result.stderr
