"""`cluster-rl train` through real subprocesses: JSON lines off a TTY, model files, signals, resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_cli

from entrypoint.commands.train import EVALUATION_EPISODES, EVALUATION_SEED, EXPERT_PASSING_STEPS
from rl.model import build_policy, read_model_file, save_model

SMALL = ["--num-envs", "64", "--steps", "30"]


def events(stdout: str) -> list[dict]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all("event" in e for e in parsed)
    return parsed


def test_train_writes_json_lines_and_a_model(home):
    result = run_cli(
        "train", *SMALL, "--total-steps", "8192", "--run-name", "smoke", env={"CLUSTER_CODE_HOME": str(home)}
    )
    assert result.returncode == 0, result.stderr
    log = events(result.stdout)
    kinds = [e["event"] for e in log]
    assert kinds[0] == "start" and kinds[-1] == "done" and "progress" in kinds
    progress = next(e for e in log if e["event"] == "progress")
    assert {"global_step", "sps", "episodes", "mean_return", "resolution_rate", "elapsed"} <= set(progress)
    done = log[-1]
    model = home / "models" / "cluster_agent.pt"
    assert done["model"] == str(model) and done["global_step"] >= 8192
    # the first model of a home is promoted: it is the default, and no copy is left under its run
    assert done["promoted"] is True and done["default"] == str(model) and "not_promoted" not in kinds
    assert not (home / "models" / "smoke").exists()
    meta = read_model_file(model)["metadata"]
    assert meta["global_step"] == done["global_step"] and meta["run_id"] == "smoke"
    assert "resolution_rate" in done["evaluation"]
    # the final evaluation's clusters can be drawn again: seed, episodes and scenario are in the file
    evaluation = meta["metrics"]["evaluation"]
    assert (evaluation["seed"], evaluation["episodes"]) == (EVALUATION_SEED, EVALUATION_EPISODES)
    assert evaluation["scenario"]["max_steps"] == 30 and evaluation["expert"]["resolution_rate"] > 0.5
    assert list((home / "runs" / "smoke").glob("events.out.tfevents.*"))  # TensorBoard scalars
    assert "\x1b[" not in result.stdout and "Traceback" not in result.stderr


def test_episodes_and_steps_set_the_budget(home):
    result = run_cli("train", "-e", "1", "-s", "20", "--num-envs", "64", env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    start = events(result.stdout)[0]
    assert start["total_steps"] == 2048  # 1 x 20 x 64 = 1280, rounded up to one batch of 64 x 32
    result = run_cli(
        "train", "-e", "5", "-s", "20", "--num-envs", "64", "--total-steps", "1", env={"CLUSTER_CODE_HOME": str(home)}
    )
    assert events(result.stdout)[0]["total_steps"] == 2048


@pytest.mark.parametrize(
    "args, code, text",
    [
        (["--device", "tpu"], 2, "--device"),
        (["--device", "cuda"], 6, "device cuda"),
        (["--run-name", "../etc"], 2, "--run-name"),
        (["--resume"], 2, "--resume: no unfinished run"),
        (["--seed", str(2**64)], 2, "4294967295"),
        (["--output", "ftp://example.invalid/models"], 2, "unsupported scheme ftp://"),
        (["--checkpoint-interval", "inf"], 2, "--checkpoint-interval"),
        (["--output", "s3://Bad_Bucket/x/"], 2, "bucket"),
        (["--episodes", "0"], 2, "episodes"),
        (["--job", "/nonexistent.yaml"], 2, "nonexistent.yaml"),
        (["--output", "/etc/passwd"], 4, "--output"),
        (["--output", "/proc/no-such-dir"], 4, "--output"),
    ],
)
def test_bad_flags_exit_with_one_line(home, args, code, text):
    result = run_cli("train", *args, env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == code, (result.stdout, result.stderr)
    assert text in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not (home / "models" / "cluster_agent.pt").exists()


def test_bad_training_config_in_config_json(home):
    home.mkdir(parents=True)
    (home / "config.json").write_text(json.dumps({"pufferlib": {"trainingConfig": {"gamma": 3}}}))
    result = run_cli("train", "--total-steps", "100", env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 2 and "gamma" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def start_training(home, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "entrypoint.cli", "train", *SMALL, *args],
        env={**os.environ, "CLUSTER_CODE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def wait_for_progress(proc, steps_at_least: int) -> list[dict]:
    seen = []
    for line in proc.stdout:
        event = json.loads(line)
        seen.append(event)
        if event["event"] == "checkpoint" or (event.get("global_step") or 0) >= steps_at_least:
            return seen
    raise AssertionError(f"training ended early: {seen} {proc.stderr.read()}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_and_exits_75_then_resume_continues(home, sig):
    proc = start_training(home, "--total-steps", "100000000", "--run-name", "evicted", "--checkpoint-interval", "2")
    try:
        wait_for_progress(proc, 1)
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 75, err
    assert took < 10
    log = events(out)
    assert [e["event"] for e in log[-2:]] == ["checkpoint", "stopped"]
    stopped_at = log[-1]["global_step"]
    assert stopped_at > 0 and list((home / "checkpoints" / "evicted").glob("checkpoint_*.pt"))
    assert not (home / "models" / "cluster_agent.pt").exists()
    # meanwhile an untrained network became the default: the resumed run (the expert kickstart
    # behind it) goes through the same gate, compared with it on the same clusters
    default = home / "models" / "cluster_agent.pt"
    save_model(default, build_policy(), {"global_step": 0, "run_id": "untrained"})

    # the one unfinished run of this home: --resume alone continues it
    name = [] if sig == signal.SIGTERM else ["--run-name", "evicted"]
    resumed = run_cli(
        "train",
        *SMALL,
        "--resume",
        *name,
        "--total-steps",
        str(stopped_at + 4096),
        env={"CLUSTER_CODE_HOME": str(home)},
    )
    assert resumed.returncode == 0, resumed.stderr
    log = events(resumed.stdout)
    assert next(e for e in log if e["event"] == "resuming")["run_id"] == "evicted"
    resumed_event = next(e for e in log if e["event"] == "resumed")
    assert resumed_event["global_step"] == stopped_at
    assert log[-1]["event"] == "done" and log[-1]["global_step"] >= stopped_at + 4096
    done = log[-1]
    assert done["promoted"] is True and done["model"] == str(default) and "not_promoted" not in str(log)
    assert done["evaluation"]["resolution_rate"] > done["default_evaluation"]["resolution_rate"]
    assert read_model_file(default)["metadata"]["run_id"] == "evicted"


def place(model, path) -> bytes:
    """Make `model` the default at `path`; its bytes, to check later that it was left alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, path)
    return path.read_bytes()


def test_a_signal_during_the_kickstart_checkpoints_after_one_update_and_exits_75(home):
    """A pod evicted while the agent still imitates the expert is not held up by the imitation."""
    home.mkdir(parents=True)
    imitation = {"imitationSteps": 4_194_304, "imitationEpochs": 50}  # far longer than the test waits
    (home / "config.json").write_text(json.dumps({"pufferlib": {"trainingConfig": imitation}}))
    proc = start_training(home, "--total-steps", "100000000", "--run-name", "early")
    try:
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "start", first
        time.sleep(3.0)  # inside the expert's demonstrations or the imitation
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 75, err
    log = events(out)
    assert [e["event"] for e in log[-2:]] == ["checkpoint", "stopped"]
    assert log[-1]["global_step"] > 0  # one PPO update, then the checkpoint
    assert len(list((home / "checkpoints" / "early").glob("checkpoint_*.pt"))) == 1


@pytest.mark.slow
def test_resumed_training_is_as_good_as_an_uninterrupted_run(home, tmp_path):
    """Kill a real training run with SIGTERM half way, resume it, and compare its model's quality."""
    budget = ["--num-envs", "256", "--total-steps", "1200000", "--seed", "5"]
    straight = run_cli(
        "train",
        *budget,
        "--run-name",
        "straight",
        "--output",
        str(tmp_path / "straight"),
        env={"CLUSTER_CODE_HOME": str(home)},
        timeout=600,
    )
    assert straight.returncode == 0, straight.stderr

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entrypoint.cli",
            "train",
            *budget,
            "--run-name",
            "split",
            "--output",
            str(tmp_path / "split"),
            # A checkpoint after 1 s: the signal lands mid-training however fast this machine trains
            # (progress lines come every 10 s, and a quick run can reach its end before the second).
            "--checkpoint-interval",
            "1",
        ],
        env={**os.environ, "CLUSTER_CODE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        wait_for_progress(proc, 500_000)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 75, err
    resumed = run_cli(
        "train",
        *budget,
        "--run-name",
        "split",
        "--resume",
        "--output",
        str(tmp_path / "split"),
        env={"CLUSTER_CODE_HOME": str(home)},
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr

    def quality(directory):
        result = run_cli(
            "evaluate",
            "--policy",
            "model",
            "--model",
            directory / "cluster_agent.pt",
            "--episodes",
            "500",
            "--output",
            "json",
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["policies"][0]["resolution_rate"]

    assert quality(tmp_path / "split") >= quality(tmp_path / "straight") - 0.1


def test_checkpoints_are_mirrored_to_s3_and_resume_from_there(home, tmp_path):
    """An evicted pod loses its local disk: the checkpoint must come back from S3."""
    import shutil

    import boto3
    from s3_server import MotoServer, s3_environment

    with MotoServer() as moto:
        env = {**s3_environment(moto.url, tmp_path), "CLUSTER_CODE_HOME": str(home)}
        s3 = boto3.client(
            "s3",
            endpoint_url=moto.url,
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket="models")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "entrypoint.cli",
                "train",
                *SMALL,
                "--total-steps",
                "100000000",
                "--run-name",
                "pod-1",
                "--output",
                "s3://models/agent/",
            ],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            wait_for_progress(proc, 1)
            time.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 75, err
        checkpoint_event = [e for e in events(out) if e["event"] == "checkpoint"][-1]
        assert checkpoint_event["path"].startswith("s3://models/agent/pod-1/checkpoints/checkpoint_")
        stopped_at = events(out)[-1]["global_step"]
        shutil.rmtree(home / "checkpoints")  # a new pod starts with an empty disk

        resumed = run_cli(
            "train",
            *SMALL,
            "--run-name",
            "pod-1",
            "--resume",
            "--output",
            "s3://models/agent/",
            "--total-steps",
            str(stopped_at + 2048),
            env=env,
        )
        assert resumed.returncode == 0, resumed.stderr
        log = events(resumed.stdout)
        assert next(e for e in log if e["event"] == "resumed")["global_step"] == stopped_at
        assert log[-1]["model"] == "s3://models/agent/pod-1/cluster_agent.pt"
        pointer = json.loads(s3.get_object(Bucket="models", Key="agent/latest.json")["Body"].read())
        assert pointer["run_id"] == "pod-1" and pointer["key"] == "agent/pod-1/cluster_agent.pt"


# ------------------------------------------------------------------ the promotion gate


def gate_events(log: list[dict], name: str, reason: str | None = None) -> list[dict]:
    return [e for e in log if e["event"] == name and (reason is None or e.get("reason") == reason)]


def test_a_short_run_after_a_good_one_leaves_the_good_default_and_promote_always_replaces_it(home, good_model):
    default = home / "models" / "cluster_agent.pt"
    before = place(good_model, default)
    env = {"CLUSTER_CODE_HOME": str(home)}
    result = run_cli("train", *SMALL, "--total-steps", "2048", "--run-name", "short", env=env)
    assert result.returncode == 0, result.stderr
    log = events(result.stdout)
    (refused,) = gate_events(log, "not_promoted")
    kept = home / "models" / "short" / "cluster_agent.pt"
    assert refused["reason"] == "worse" and refused["model"] == str(kept) and refused["default"] == str(default)
    new, current, tolerance = refused["new"], refused["current"], refused["tolerance"]
    assert current["resolution_rate"] > new["resolution_rate"] + tolerance["resolution_rate"]
    assert 0 < tolerance["resolution_rate"] < 0.05 and tolerance["diagnosis_f1"] == 0.01
    assert "not promoted" in refused["message"] and str(kept) in refused["message"]
    assert default.read_bytes() == before  # the good default is untouched
    done = log[-1]
    assert done["promoted"] is False and done["model"] == str(kept)
    assert done["default_evaluation"]["resolution_rate"] == current["resolution_rate"]
    figures = read_model_file(kept)["metadata"]["metrics"]["evaluation"]
    assert figures["resolution_rate"] == new["resolution_rate"] and figures["seed"] == EVALUATION_SEED

    # a run too short to learn says so, and names the budget that passes the expert
    (short,) = gate_events(log, "warning", "too_short")
    assert short["floor"] == pytest.approx(figures["expert"]["resolution_rate"] / 2, abs=1e-4)
    assert short["resolution_rate"] < short["floor"] and short["competent_steps"] == EXPERT_PASSING_STEPS
    assert f"--total-steps {EXPERT_PASSING_STEPS}" in short["message"] and "2,048 steps are too few" in short["message"]

    forced = run_cli("train", *SMALL, "--total-steps", "2048", "--run-name", "forced", "--promote", "always", env=env)
    assert forced.returncode == 0, forced.stderr
    log = events(forced.stdout)
    assert not gate_events(log, "not_promoted") and log[-1]["promoted"] is True and log[-1]["model"] == str(default)
    assert read_model_file(default)["metadata"]["run_id"] == "forced"
    assert not (home / "models" / "forced").exists() and kept.is_file()


def test_a_corrupt_current_default_is_reported_and_replaced(home, good_model):
    default = home / "models" / "cluster_agent.pt"
    place(good_model, default)
    default.write_bytes(default.read_bytes()[:5000])  # truncated
    result = run_cli(
        "train", *SMALL, "--total-steps", "2048", "--run-name", "after", env={"CLUSTER_CODE_HOME": str(home)}
    )
    assert result.returncode == 0, result.stderr
    log = events(result.stdout)
    (warning,) = gate_events(log, "warning", "unusable_default")
    assert warning["model"] == str(default) and "not a readable model file" in warning["message"]
    assert log[-1]["promoted"] is True and log[-1]["default_evaluation"] is None
    assert read_model_file(default)["metadata"]["run_id"] == "after"


def test_promote_never_in_a_job_spec_keeps_even_the_first_model_under_its_run(home, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: {name: sweep-1}\n"
        f"spec: {{promote: never, totalSteps: 2048, numEnvs: 64, steps: 30, output: {tmp_path / 'out'}}}\n"
    )
    result = run_cli("run", spec, env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    log = events(result.stdout)
    (refused,) = gate_events(log, "not_promoted")
    assert refused["reason"] == "never" and "--promote always" not in refused["message"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sweep-1"]
    assert log[-1]["model"] == str(tmp_path / "out" / "sweep-1" / "cluster_agent.pt")


def test_the_current_default_that_load_model_refuses_is_unusable_not_an_error(home, tmp_path, good_model):
    """A newer format version, a foreign file: the gate reports it and lets the new model replace it."""
    import torch

    from entrypoint.commands.train import TrainOptions, _current_default, prepare

    plan = prepare(TrainOptions(output=str(tmp_path), num_envs=64, total_steps=2048))
    assert _current_default(plan) is None  # nothing there yet: the first model
    shutil.copy(good_model, tmp_path / "cluster_agent.pt")
    assert _current_default(plan).policy is not None
    payload = torch.load(good_model, weights_only=True)
    torch.save({**payload, "format_version": 99}, tmp_path / "cluster_agent.pt")
    current = _current_default(plan)
    assert current.policy is None and "newer than this tool supports" in current.problem
    (tmp_path / "cluster_agent.pt").write_text("not a model")
    assert "not a readable model file" in _current_default(plan).problem


def test_the_gate_compares_within_the_standard_error_and_a_point_of_f1():
    from rl.promotion import compare, resolution_tolerance

    assert resolution_tolerance(1.0, 1.0, 500) == 1 / 500  # both perfect: one cluster of slack
    assert resolution_tolerance(0.5, 0.5, 500) == pytest.approx((0.5 / 500) ** 0.5)
    good = {"resolution_rate": 0.90, "diagnosis_f1": 0.95}
    assert compare({"resolution_rate": 0.89, "diagnosis_f1": 0.945}, good, 500).not_worse  # within both
    assert compare({"resolution_rate": 0.95, "diagnosis_f1": 0.99}, good, 500).not_worse
    assert compare({"resolution_rate": 0.85, "diagnosis_f1": 0.95}, good, 500).worse_in == ["resolution"]
    assert compare({"resolution_rate": 0.90, "diagnosis_f1": 0.93}, good, 500).worse_in == ["diagnosis F1"]


def test_the_budget_that_passes_the_expert_is_the_one_in_the_readme():
    lines = (ROOT / "docs" / "benchmarks.md").read_text().splitlines()
    row = next(line for line in lines if line.startswith("| time to pass the expert"))  # Benchmarks
    assert f"{EXPERT_PASSING_STEPS / 1e6:.1f} M" in row and "passes the expert" in row


def test_on_s3_a_short_run_leaves_latest_json_and_promote_always_moves_it(home, tmp_path, good_model):
    import hashlib

    import boto3
    from s3_server import MotoServer, s3_environment

    with MotoServer() as moto:
        env = {**s3_environment(moto.url, tmp_path), "CLUSTER_CODE_HOME": str(home)}
        s3 = boto3.client(
            "s3",
            endpoint_url=moto.url,
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket="models")
        body = good_model.read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        s3.put_object(Bucket="models", Key="agent/nightly/cluster_agent.pt", Body=body, Metadata={"sha256": digest})
        pointer = {"run_id": "nightly", "key": "agent/nightly/cluster_agent.pt", "sha256": digest, "size": len(body)}
        s3.put_object(Bucket="models", Key="agent/latest.json", Body=json.dumps(pointer).encode())

        def latest() -> dict:
            return json.loads(s3.get_object(Bucket="models", Key="agent/latest.json")["Body"].read())

        def train(run_name, *args):
            result = run_cli(
                "train", *SMALL, "--total-steps", "2048", "--run-name", run_name, "--output", "s3://models/agent/",
                *args, env=env,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            return events(result.stdout)

        log = train("short")
        (refused,) = gate_events(log, "not_promoted")
        assert refused["default"] == "s3://models/agent/latest.json" and refused["reason"] == "worse"
        assert refused["current"]["resolution_rate"] > refused["new"]["resolution_rate"]
        assert latest() == pointer and log[-1]["model"] == "s3://models/agent/short/cluster_agent.pt"
        assert s3.head_object(Bucket="models", Key="agent/short/cluster_agent.pt")["ContentLength"] > 0

        # the nightly job's name again: the default's own object must not be replaced by a worse model
        log = train("nightly")
        assert gate_events(log, "not_promoted")[0]["model"] == "s3://models/agent/nightly/not-promoted/cluster_agent.pt"
        assert latest() == pointer
        assert s3.get_object(Bucket="models", Key="agent/nightly/cluster_agent.pt")["Body"].read() == body

        log = train("forced", "--promote", "always")
        assert log[-1]["promoted"] is True and not gate_events(log, "not_promoted")
        assert latest()["key"] == "agent/forced/cluster_agent.pt"

        # a latest.json that is no pointer does not block the next model: reported and replaced
        s3.put_object(Bucket="models", Key="agent/latest.json", Body=b"{not json")
        log = train("after-corruption")
        (warning,) = gate_events(log, "warning", "unusable_default")
        assert "not a valid model pointer" in warning["message"] and log[-1]["promoted"] is True
        assert latest()["key"] == "agent/after-corruption/cluster_agent.pt"


# ------------------------------------------------------------------ the end of train, for a person


def test_the_end_of_train_on_a_terminal_is_a_table_with_a_greedy_gap_warning():
    from rich.console import Console

    from entrypoint.progress import done_summary, greedy_gap_warning

    fields = {
        "model": "/data/models/cluster_agent.pt",
        "run_id": "r1",
        "global_step": 1_048_576,
        "elapsed": 63.0,
        "metrics": {"resolution_rate": 0.77, "mean_return": 1.5, "harmful_actions": 0.1},
        "evaluation": {
            "resolution_rate": 0.022,
            "mean_return": -2.0,
            "harmful_actions_per_episode": 0.4,
            "episodes": 500,
        },
    }
    console = Console(record=True, width=120)
    console.print(done_summary(fields))
    text = console.export_text()
    assert "model saved to /data/models/cluster_agent.pt" in text
    assert "77.0%" in text and "2.2%" in text and "training rollouts" in text and "greedy" in text
    assert "warning: the greedy evaluation resolves 2.2%" in text and "{" not in text
    assert greedy_gap_warning({"resolution_rate": 0.77}, {"resolution_rate": 0.70}) is None
    assert greedy_gap_warning({"resolution_rate": 0.08}, {"resolution_rate": 0.01}) is None  # both poor: no gap
    assert greedy_gap_warning({"resolution_rate": None}, None) is None
    # below half the expert's rate the run was too short to learn: that warning (an event) says more
    assert (
        greedy_gap_warning({"resolution_rate": 0.77}, {"resolution_rate": 0.2, "expert": {"resolution_rate": 0.9}})
        is None
    )
    assert greedy_gap_warning({"resolution_rate": 0.97}, {"resolution_rate": 0.46, "expert": {"resolution_rate": 0.9}})
    skipped = {**fields, "evaluation": None, "evaluation_skipped": "stopped by SIGTERM"}
    console = Console(record=True, width=120)
    console.print(done_summary(skipped))
    assert "evaluation skipped: stopped by SIGTERM" in console.export_text()


def test_the_end_of_train_off_a_terminal_stays_json():
    import io

    from entrypoint.progress import make_reporter

    stream = io.StringIO()
    reporter = make_reporter(2048, stream=stream)
    reporter.event("done", model="/m.pt", metrics={"resolution_rate": 0.7}, evaluation={"resolution_rate": 0.01})
    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record["event"] == "done" and record["evaluation"] == {"resolution_rate": 0.01}


def test_train_on_a_real_terminal_ends_with_the_table(home, good_model):
    """stdout on a pseudo-terminal: the rich view, the gate's lines, then the model's path and the table."""
    import pty
    import select

    place(good_model, home / "models" / "cluster_agent.pt")

    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrypoint.cli", "train", *SMALL, "--total-steps", "2048", "--run-name", "tty"],
        env={**os.environ, "CLUSTER_CODE_HOME": str(home), "COLUMNS": "120", "TERM": "xterm"},
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    os.close(child)
    output = b""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(main)
    text = output.decode("utf-8", "replace")
    assert proc.returncode == 0, proc.stderr.read()
    import re

    flat = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).split())  # no styles; long lines wrap
    assert f"model saved to {home / 'models' / 'tty' / 'cluster_agent.pt'}" in flat
    assert "training rollouts" in text and "resolved" in text and "current default" in text and "expert runbook" in text
    assert "warning: the model resolves" in flat and "of 500 unseen clusters" in flat and "too few to learn" in flat
    assert "not promoted: the new model resolves" in flat
    assert f"the default model is still {home / 'models' / 'cluster_agent.pt'}" in flat
    assert "{'global_step'" not in text and '"event"' not in text and "reason=" not in text
