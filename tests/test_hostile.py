"""Hostile input, hung servers and full disks, through the real CLI in real subprocesses.

Every failure is one line on stderr with a documented exit code, comes in bounded time (the
hung-server tests set a low timeout and give the command a generous outer limit: they assert that
it returned, never how fast), and loses nothing that was there before.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, run_cli
from hostile_servers import DripServer, GarbageServer, SilentServer, SlowAnswerServer
from kube_server import write_kubeconfig
from s3_server import s3_environment

from rl.model import read_model_file

OUTER_LIMIT = 120  # seconds; a command that hangs fails the test through subprocess's timeout
SMALL = ["--num-envs", "64", "--steps", "30"]


def one_line(result) -> str:
    """The single stderr line of a failed command (never an internal error or a traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def default_model(home, small_model):
    """A good model in the home's default place, to check that failures leave it alone."""
    path = home / "models" / "cluster_agent.pt"
    path.parent.mkdir(parents=True)
    shutil.copy(small_model, path)
    return path, path.read_bytes()


# ------------------------------------------------------------------------------- locations


def test_a_job_spec_output_with_another_url_scheme_is_refused(home, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: {name: ftp-job}\n"
        "spec: {output: 'ftp://example.invalid/models', totalSteps: 2048}\n"
    )
    result = run_cli("run", spec, cwd=tmp_path, env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 2
    line = one_line(result)
    assert "spec.output" in line and "unsupported scheme ftp://" in line
    assert not (tmp_path / "ftp:").exists() and not (home / "models").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["diagnose", "--model", "gs://bucket/model.pt"],
        ["diagnose", "--policy", "expert", "--report", "http://example.invalid/report.json"],
        ["evaluate", "-p", "model", "--model", "ftp://example.invalid/m.pt"],
    ],
)
def test_other_url_schemes_are_refused_everywhere(home, tmp_path, args):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2 and "unsupported scheme" in one_line(result)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------ the API server


def test_a_hung_api_server_ends_diagnose_and_train_with_exit_5(home, tmp_path):
    with SilentServer() as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        env = {"KUBECONFIG": str(kubeconfig), "CLUSTER_CODE_HOME": str(home)}
        for args in (
            ["diagnose", "--no-simulation", "--policy", "expert", "--api-timeout", "2"],
            ["train", "--no-simulation", "--api-timeout", "2", "--total-steps", "10"],
        ):
            result = run_cli(*args, env=env, timeout=OUTER_LIMIT)
            assert result.returncode == 5, result.stderr
            line = one_line(result)
            assert server.url in line and "not answering" in line and "--api-timeout" in line
        assert server.accepted  # it really was reached
    assert not (home / "models" / "cluster_agent.pt").exists()


def test_an_api_server_that_trickles_its_answer_is_cut_off_at_the_deadline(home, tmp_path):
    """A byte every 0.2 s never trips the 1 s read timeout; the answer deadline (3 x --api-timeout)
    ends the command with exit 5 anyway."""
    with DripServer(interval=0.2) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        result = run_cli(
            "diagnose",
            "--no-simulation",
            "--policy",
            "expert",
            "--api-timeout",
            "1",
            env={"KUBECONFIG": str(kubeconfig), "CLUSTER_CODE_HOME": str(home)},
            timeout=OUTER_LIMIT,
        )
    assert result.returncode == 5, result.stderr
    line = one_line(result)
    assert server.url in line and "not answering in time" in line and "within 3 s" in line


def test_a_server_that_answers_every_request_just_in_time_is_stopped_at_the_deadline(home, tmp_path):
    """Each answer takes about 2 s (one byte every 0.04 s), inside the 6 s answer deadline; reading
    the two dozen lists would take a minute. --deadline 5 (or a spec's deadline) ends the diagnosis:
    the report of what was read, then exit 5 in one line."""

    def answer(path):
        return VERSION if path == "/version" else {"kind": "List", "items": [], "metadata": {}}

    spec = tmp_path / "job.yaml"
    with SlowAnswerServer(answer, interval=0.04) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        spec.write_text(
            "apiVersion: cluster-code.rl/v1\nkind: DiagnoseJob\nmetadata: {name: slow}\n"
            f"spec: {{mode: cluster, policy: expert, deadline: 5, cluster: {{kubeconfig: '{kubeconfig}', apiTimeout: 2}}}}\n"
        )
        report_file = tmp_path / "report.json"
        result = run_cli(
            "diagnose", "--no-simulation", "--policy", "expert", "--api-timeout", "2", "--deadline", "5",
            "-o", "json", "--report", report_file, env={"KUBECONFIG": str(kubeconfig)}, timeout=OUTER_LIMIT,
        )  # fmt: skip
        by_spec = run_cli("run", spec, timeout=OUTER_LIMIT)
    assert result.returncode == 5, result.stderr
    line = one_line(result)
    assert line == "cluster-rl: diagnose: the --deadline of 5 s passed; the report holds what was read before it"
    report = json.loads(result.stdout)
    assert report == json.loads(report_file.read_text())
    assert report["mode"] == "cluster" and report["stopped"] == "the --deadline of 5 s passed"
    assert report["resolved"] is False and report["agent_done"] is False
    cut = [d for d in report["degraded"] if d.startswith("not read before the deadline passed: ")]
    assert cut and "pods" in cut[0] and "resourcequotas" in cut[0]
    assert by_spec.returncode == 5 and "--deadline of 5 s passed" in one_line(by_spec)
    assert json.loads(by_spec.stdout)["stopped"] == "the --deadline of 5 s passed"


def test_answers_are_read_up_to_their_limit_and_cut_there(monkeypatch):
    """A pod log longer than its limit is cut (and the connection not reused); a JSON answer past
    the response limit is refused; answers within their limits are read whole."""
    from kubernetes import client

    import rl.kube.connection as connection

    log = b"x" * 5000
    with GarbageServer(lambda path: log if path.endswith("/log") else {"kind": "Pod"}) as server:
        configuration = client.Configuration()
        configuration.host = server.url
        api = connection.KubeApi(configuration, request_timeout=5)
        logs = connection.Request("get", "pods/log", "default")
        cut = api.call(logs, "GET", "/api/v1/namespaces/default/pods/p/log", limit=1000)
        assert cut.truncated and cut.body == log[:1000]
        whole = api.call(logs, "GET", "/api/v1/namespaces/default/pods/p/log", limit=5000)
        assert not whole.truncated and whole.body == log
        pod = connection.Request("get", "pods", "default")
        assert api.call_json(pod, "GET", "/api/v1/namespaces/default/pods/p") == {"kind": "Pod"}
        monkeypatch.setattr(connection, "MAX_RESPONSE_BYTES", 10)
        with pytest.raises(connection.KubeResponseError, match="with more than"):
            api.call_json(pod, "GET", "/api/v1/namespaces/default/pods/p")
        api.close()


def test_the_api_timeout_is_a_job_spec_field(home, tmp_path):
    with SilentServer() as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        spec = tmp_path / "job.yaml"
        spec.write_text(
            "apiVersion: cluster-code.rl/v1\nkind: DiagnoseJob\nmetadata: {name: hung}\n"
            f"spec: {{mode: cluster, policy: expert, cluster: {{kubeconfig: '{kubeconfig}', apiTimeout: 2}}}}\n"
        )
        result = run_cli("run", spec, timeout=OUTER_LIMIT)
    assert result.returncode == 5 and "not answering" in one_line(result)


VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0"}


@pytest.mark.parametrize(
    "answer, fragment",
    [
        (lambda path: b"<html><body>proxy login</body></html>", "get version with invalid JSON"),
        (lambda path: b'{"gitVersion": "v1.3', "get version with invalid JSON"),
        (lambda path: ["not", "an", "object"], "get version with a JSON array"),
        (
            lambda path: VERSION if path == "/version" else {"items": {"a": 1}},
            "list nodes with JSON of the wrong shape",
        ),
        (lambda path: VERSION if path == "/version" else {"items": [1, 2]}, "list nodes with JSON of the wrong shape"),
        (lambda path: VERSION if path == "/version" else "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_garbage_from_the_api_server_is_exit_5_naming_server_and_resource(home, tmp_path, answer, fragment):
    if fragment == "nested too deeply":
        deep = answer("/api/v1/nodes").encode()
        answer = lambda path: VERSION if path == "/version" else deep  # noqa: E731
    with GarbageServer(answer) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        result = run_cli(
            "diagnose",
            "--no-simulation",
            "--policy",
            "expert",
            env={"KUBECONFIG": str(kubeconfig)},
            timeout=OUTER_LIMIT,
        )
    assert result.returncode == 5, result.stderr
    line = one_line(result)
    assert server.url in line and fragment in line


def test_objects_of_the_wrong_shape_deep_inside_a_list_are_exit_5(home, tmp_path):
    def answer(path):
        if path == "/version":
            return VERSION
        return {"kind": "List", "items": [{"metadata": 5, "spec": "x", "status": [1, 2]}], "metadata": {}}

    with GarbageServer(answer) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        env = {"KUBECONFIG": str(kubeconfig), "CLUSTER_CODE_HOME": str(home)}
        for args in (
            ["diagnose", "--no-simulation", "--policy", "expert"],
            ["train", "--no-simulation", "--total-steps", "10"],
        ):
            result = run_cli(*args, env=env, timeout=OUTER_LIMIT)
            assert result.returncode == 5, result.stderr
            line = one_line(result)
            assert server.url in line and "unexpected shape" in line


def test_a_kubeconfig_alias_bomb_is_refused_at_once(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        levels.append(f"a{i}: &a{i} [{refs}]")
    bomb = tmp_path / "kubeconfig"
    bomb.write_text("\n".join(levels) + "\nclusters: []\n")
    result = run_cli("diagnose", "--no-simulation", "--policy", "expert", env={"KUBECONFIG": str(bomb)}, timeout=30)
    assert result.returncode == 5
    line = one_line(result)
    assert str(bomb) in line and "aliases" in line


# ----------------------------------------------------------------------------------- S3


@pytest.mark.parametrize(
    "args",
    [
        ["diagnose", "--model", "s3://models-bucket/agent/", "--s3-timeout", "2"],
        ["evaluate", "-p", "model", "--model", "s3://models-bucket/agent/m.pt", "--s3-timeout", "2"],
        # the promotion gate reads latest.json, then the upload fails: the model stays on local disk
        ["train", *SMALL, "--total-steps", "2048", "--output", "s3://models-bucket/agent/", "--s3-timeout", "2"],
    ],
)
def test_an_s3_endpoint_that_never_answers_is_bounded(home, tmp_path, args):
    with SilentServer() as server:
        env = {**s3_environment(server.url, tmp_path), "CLUSTER_CODE_HOME": str(home)}
        result = run_cli(*args, env=env, timeout=OUTER_LIMIT)
        assert server.accepted
    assert result.returncode == 4, result.stderr
    line = one_line(result)
    assert f"cannot reach the S3 endpoint {server.url}" in line and "--s3-timeout" in line
    if args[0] == "train":
        kept = line.rpartition("the model is kept at ")[2].rstrip(")")
        assert read_model_file(kept)["metadata"]["metrics"]["evaluation"]["episodes"] == 500


def test_a_deeply_nested_latest_json_on_s3_is_exit_4(home, tmp_path):
    import boto3
    from s3_server import MotoServer

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
        s3.put_object(Bucket="models", Key="agent/latest.json", Body=b"[" * 60_000 + b"]" * 60_000)
        result = run_cli("diagnose", "--model", "s3://models/agent/", env=env, timeout=OUTER_LIMIT)
    assert result.returncode == 4, result.stderr
    line = one_line(result)
    assert "s3://models/agent/latest.json" in line and "nested too deeply" in line


# ---------------------------------------------------------------------------- config.json


def test_a_deeply_nested_config_json_is_exit_2_naming_the_file(home):
    home.mkdir()
    path = home / "config.json"
    path.write_text('{"other": ' + "[" * 100_000 + "]" * 100_000 + "}")
    before = path.read_bytes()
    for args in (["setup"], ["train", "--total-steps", "10"], ["diagnose", "--policy", "expert"]):
        result = run_cli(*args, env={"CLUSTER_CODE_HOME": str(home)})
        if args[0] == "diagnose":  # diagnose does not read config.json
            continue
        assert result.returncode == 2, result.stderr
        assert str(path) in one_line(result) and "nested too deeply" in result.stderr
    assert path.read_bytes() == before


def test_setup_keeps_other_tools_keys_byte_for_byte(home):
    """1e400 and a lone surrogate in cluster-code's keys stay exactly as they were; the section
    cluster-rl writes is strict JSON (no Infinity), and the file stays valid UTF-8."""
    home.mkdir()
    path = home / "config.json"
    original = '{\n  "limits": {"max": 1e400},\n  "label": "\\ud800",\n  "order": [3, 1,  2]\n}\n'
    path.write_text(original)
    result = run_cli("setup", env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    text = path.read_bytes().decode("utf-8")
    assert text.startswith('{\n  "limits": {"max": 1e400},\n  "label": "\\ud800",\n  "order": [3, 1,  2]')
    section = text[text.index('"pufferlib"') :]
    assert "Infinity" not in section and "NaN" not in section
    assert json.loads(text)["pufferlib"]["enabled"] is True
    again = run_cli("setup", env={"CLUSTER_CODE_HOME": str(home)})
    assert again.returncode == 0 and "nothing changed" in again.stdout and path.read_text() == text


def test_a_lone_surrogate_in_the_pufferlib_section_is_written_escaped(home):
    home.mkdir()
    path = home / "config.json"
    path.write_text('{"pufferlib": {"image": "\\ud800", "enabled": false}}')
    result = run_cli("setup", env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    config = json.loads(path.read_bytes().decode("utf-8"))
    assert config["pufferlib"]["image"] == "\ud800" and config["pufferlib"]["enabled"] is True
    status = run_cli("status", env={"CLUSTER_CODE_HOME": str(home)})
    assert status.returncode == 0 and "Traceback" not in status.stderr


def test_a_fifo_as_a_job_spec_or_kubeconfig_is_refused_not_waited_on(home, tmp_path):
    fifo = tmp_path / "job.yaml"
    os.mkfifo(fifo)
    for args in (["run", fifo], ["train", "--job", fifo], ["diagnose", "--job", fifo]):
        result = run_cli(*args, timeout=OUTER_LIMIT)
        assert result.returncode == 2 and "not a regular file" in one_line(result)
    result = run_cli(
        "diagnose", "--no-simulation", "--policy", "expert", env={"KUBECONFIG": str(fifo)}, timeout=OUTER_LIMIT
    )
    assert result.returncode == 5 and "not a regular file" in one_line(result)


def test_a_job_spec_with_a_nul_byte_is_exit_2_naming_line_and_column(home, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_bytes(b"apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: {name: a\x00b}\n")
    for args in (["run", spec], ["train", "--job", spec]):
        result = run_cli(*args, timeout=OUTER_LIMIT)
        assert result.returncode == 2, result.stderr
        assert (
            one_line(result)
            == f"cluster-rl: {spec}:3:19: character #x0000 is not allowed in YAML (a control character)"
        )


def test_a_fifo_as_config_json_is_refused_not_waited_on(home):
    home.mkdir()
    os.mkfifo(home / "config.json")
    for args in (["setup"], ["train", "--total-steps", "10"]):
        result = run_cli(*args, env={"CLUSTER_CODE_HOME": str(home)}, timeout=OUTER_LIMIT)
        assert result.returncode == 2
        assert "not a regular file" in one_line(result)
    assert stat.S_ISFIFO(os.lstat(home / "config.json").st_mode)


@pytest.mark.parametrize(
    "key, value",
    [("learningRate", "1e999"), ("learningRate", "Infinity"), ("entropyCoefficient", "NaN"), ("maxGradNorm", "1e309")],
)
def test_non_finite_training_settings_are_refused_and_the_model_kept(default_model, home, key, value):
    path, before = default_model
    (home / "config.json").write_text('{"pufferlib": {"trainingConfig": {"' + key + '": ' + value + "}}}")
    result = run_cli("train", *SMALL, "--total-steps", "2048", env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 2
    line = one_line(result)
    assert key in line and "finite" in line
    assert path.read_bytes() == before


# ------------------------------------------------------------------------------ model files


def hostile_model(tmp_path, small_model, edit) -> str:
    payload = torch.load(small_model, weights_only=True)
    edit(payload)
    path = tmp_path / "hostile.pt"
    torch.save(payload, path)
    return str(path)


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda p: p["metadata"]["network"].update(num_layers=5_000_000), "num_layers"),
        (lambda p: p["metadata"]["network"].update(hidden_size=10**9), "hidden_size"),
        (lambda p: p["metadata"]["network"].update(hidden_size="64"), "hidden_size"),
        (lambda p: p["metadata"]["network"].update(lstm="yes"), "lstm"),
        (lambda p: p["metadata"].update(network=[1, 2]), "network"),
        (lambda p: next(iter(p["state_dict"].values())).fill_(float("nan")), "not all finite"),
        (lambda p: p["state_dict"].update(extra=torch.zeros(3)), "do not match"),
    ],
)
def test_hostile_model_metadata_and_weights_are_exit_3(tmp_path, small_model, edit, fragment):
    model = hostile_model(tmp_path, small_model, edit)
    for args in (["diagnose", "--model", model], ["evaluate", "-p", "model", "--model", model, "-n", "5"]):
        result = run_cli(*args, timeout=OUTER_LIMIT)
        assert result.returncode == 3, result.stderr
        assert fragment in one_line(result)


class PickleExploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


class ForeignObject:
    pass


def test_a_pickle_exploit_as_a_model_or_checkpoint_is_our_own_one_line_without_escapes(home, tmp_path):
    """torch's refusal advises `weights_only=False` (which would run the file's code) in several
    lines with terminal escapes; ours is one line, exit 3, and the code never runs."""
    evil = tmp_path / "evil.pt"
    torch.save({"format": "cluster-code-rl/policy", "state_dict": PickleExploit()}, evil)
    checkpoints = home / "checkpoints" / "evil"
    checkpoints.mkdir(parents=True)
    torch.save(
        {"format": "cluster-code-rl/checkpoint", "optimizer": PickleExploit()},
        checkpoints / "checkpoint_000000002048.pt",
    )
    for args in (
        ["diagnose", "--model", evil],
        ["evaluate", "-p", "model", "--model", evil, "-n", "5"],
        ["train", *SMALL, "--total-steps", "4096", "--resume", "--run-name", "evil"],
    ):
        result = run_cli(*args, cwd=tmp_path, env={"CLUSTER_CODE_HOME": str(home)}, timeout=OUTER_LIMIT)
        assert result.returncode == 3, result.stderr
        line = one_line(result)
        assert "refused" in line and "posix.system" in line and "plain data" in line
        assert "weights_only" not in line and "\x1b" not in result.stderr
    assert not (tmp_path / "pwned").exists() and not (ROOT / "pwned").exists()
    foreign = tmp_path / "foreign.pt"  # torch's message for a class it does not know has the escapes
    torch.save({"format": "cluster-code-rl/policy", "state_dict": ForeignObject()}, foreign)
    result = run_cli("diagnose", "--model", foreign, timeout=OUTER_LIMIT)
    assert result.returncode == 3 and "\x1b" not in result.stderr
    assert "refused" in one_line(result) and "test_hostile.ForeignObject" in result.stderr


# -------------------------------------------------------------------------- flags and paths


@pytest.mark.parametrize(
    "args",
    [
        ["diagnose", "--policy", "expert", "--seed", str(2**64)],
        ["evaluate", "--seed", str(2**64)],
        ["diagnose", "--policy", "oracle"],
        ["train", "--device", "tpu"],
        ["train", "--total-steps", str(10**30)],
        ["diagnose", "--policy", "expert", "--namespace", "../kube-system"],
        ["train", "--no-simulation", "--namespace", "a/b", "--total-steps", "10"],
    ],
)
def test_out_of_range_flags_are_one_line_exit_2(home, args):
    result = run_cli(*args)
    assert result.returncode == 2 and one_line(result).startswith("cluster-rl: ")


def test_reports_and_plots_only_replace_regular_files(tmp_path):
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    target = tmp_path / "target.json"
    target.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    directory = tmp_path / "dir.png"
    directory.mkdir()
    png_link = tmp_path / "plot.png"
    png_link.symlink_to(target)
    for args in (
        ["diagnose", "--policy", "expert", "--report", fifo],
        ["diagnose", "--policy", "expert", "--report", link],
        ["diagnose", "--policy", "expert", "--report", "/dev/null"],
        ["evaluate", "-n", "5", "--plot", png_link],
        ["evaluate", "-n", "5", "--plot", directory],
    ):
        result = run_cli(*args, timeout=OUTER_LIMIT)
        assert result.returncode == 2, result.stderr
        assert "not a regular file" in one_line(result) or "symbolic link" in result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and png_link.is_symlink()
    assert target.read_text() == "keep me" and directory.is_dir()
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_model_path_that_is_a_directory_fails_before_training(home, tmp_path):
    output = tmp_path / "out"
    (output / "cluster_agent.pt").mkdir(parents=True)
    result = run_cli("train", *SMALL, "--output", output, env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 4
    assert "is a directory" in one_line(result)
    assert result.stdout == ""  # refused before the start event: no training ran


def test_an_output_that_names_a_model_file_is_refused_before_training(home, tmp_path):
    """`--output agent.pt` would have become a directory agent.pt/ (and `--model agent.pt` then fails);
    an existing directory of that name is still a directory to write into."""
    for output in (tmp_path / "agent.pt", tmp_path / "AGENT.PT", tmp_path / "agent.Pt", "s3://bucket/models/agent.pt"):
        result = run_cli("train", *SMALL, "--output", output, env={"CLUSTER_CODE_HOME": str(home)})
        assert result.returncode == 2, result.stderr
        line = one_line(result)
        assert str(output) in line and "directory" in line and "cluster_agent.pt" in line
        assert result.stdout == ""
    assert not (tmp_path / "agent.pt").exists() and not (tmp_path / "AGENT.PT").exists()
    (tmp_path / "kept.pt").mkdir()
    result = run_cli("train", *SMALL, "--output", tmp_path / "kept.pt", env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kept.pt" / "cluster_agent.pt").is_file()


# --------------------------------------------------------------------------------- training


def test_a_full_disk_at_the_end_keeps_the_previous_model_and_the_new_one_elsewhere(home, tmp_path, monkeypatch):
    """The disk of --output fills while the model is written: the old model there is untouched,
    the new one is saved under the home, and the message says where (exit 4)."""
    import errno

    import rl.files
    from entrypoint.commands import train as train_command
    from entrypoint.errors import CliError, ExitCode
    from rl.model import ClusterPolicy, save_model

    output = tmp_path / "out"
    output.mkdir()
    old_model = save_model(output / "cluster_agent.pt", ClusterPolicy(), {"global_step": 1})
    before = old_model.read_bytes()
    real_fsync = os.fsync

    def full_output_disk(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(output)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(rl.files.os, "fsync", full_output_disk)
    options = train_command.TrainOptions(output=str(output), run_name="full", num_envs=64, total_steps=2048)
    plan = train_command.prepare(options)
    with pytest.raises(CliError) as caught:
        train_command._save(plan, ClusterPolicy(), {"global_step": 2048})
    message = caught.value.message
    assert caught.value.code == ExitCode.STORAGE and "no space left on device" in message
    kept = home / "models" / "full" / "cluster_agent.pt"
    assert f"kept at {kept}" in message and read_model_file(kept)["metadata"]["global_step"] == 2048
    assert old_model.read_bytes() == before
    assert sorted(os.listdir(output)) == ["cluster_agent.pt"]  # no temp file left behind


def test_a_file_size_limit_at_the_end_is_exit_4_with_the_old_model_intact(default_model, home):
    """A real process whose writes fail (RLIMIT_FSIZE stands in for a full disk): exit 4, one line."""
    import resource

    path, before = default_model

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    result = subprocess.run(
        [sys.executable, "-m", "entrypoint.cli", "train", *SMALL, "--total-steps", "2048", "--run-name", "big"],
        env={**os.environ, "CLUSTER_CODE_HOME": str(home)},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 4, result.stderr
    line = one_line(result)
    assert f"cannot write the model to {path.parent / 'big' / path.name}" in line and "file too large" in line
    assert "the default model is unchanged" in line
    assert path.read_bytes() == before and not (path.parent / "big").exists()
    assert not [p for p in path.parent.rglob(".*.tmp")]


def test_a_diverged_model_is_never_published(home, tmp_path):
    from entrypoint.commands import train as train_command
    from entrypoint.errors import CliError, ExitCode
    from entrypoint.progress import JsonLinesReporter
    from rl.model import ClusterPolicy

    policy = ClusterPolicy()
    with torch.no_grad():
        policy.actor.weight.fill_(float("nan"))
    result = type("Result", (), {"policy": policy, "global_step": 2048, "metrics": {}, "elapsed": 1.0})()
    plan = train_command.prepare(train_command.TrainOptions(output=str(tmp_path), num_envs=64, total_steps=2048))
    with pytest.raises(CliError) as caught:
        train_command._publish(plan, result, train_command._StopFlag(), JsonLinesReporter(open(os.devnull, "w")))
    assert caught.value.code == ExitCode.MODEL and "not all finite" in caught.value.message
    assert os.listdir(tmp_path) == []


def test_sigterm_during_the_final_evaluation_stops_with_the_model_published(home):
    """Long episodes make the greedy evaluation slow; SIGTERM during it exits 0 within the outer
    limit, and the model written before the evaluation is complete and readable."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrypoint.cli", "train", "--num-envs", "64", "--steps", "2000"]
        + ["--total-steps", "2048", "--run-name", "evaluated"],
        env={**os.environ, "CLUSTER_CODE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        seen = []
        for line in proc.stdout:
            seen.append(json.loads(line))
            if seen[-1]["event"] == "evaluating":
                proc.send_signal(signal.SIGTERM)
                break
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    log = seen + events(out)
    done = log[-1]
    assert done["event"] == "done" and done["model"] == str(home / "models" / "cluster_agent.pt")
    if done["evaluation"] is None:
        assert done["evaluation_skipped"] == "stopped by SIGTERM"
    assert read_model_file(done["model"])["metadata"]["run_id"] == "evaluated"
    assert not list((home / "checkpoints" / "evaluated").glob("checkpoint_*.pt"))


def make_checkpoint(home, run_name: str, num_envs: int = 64):
    from rl.sim.scenario import ScenarioConfig
    from rl.train import TrainConfig, train

    config = TrainConfig(
        total_steps=num_envs * 32 * 100,
        num_envs=num_envs,
        num_steps=32,
        minibatch_size=1024,
        scenario=ScenarioConfig(max_steps=30),
    )
    result = train(config, run_id=run_name, checkpoint_dir=home / "checkpoints" / run_name, should_stop=lambda: True)
    return result.checkpoint


def test_resume_with_other_settings_exits_3_at_once(home):
    checkpoint = make_checkpoint(home, "other")
    result = run_cli(
        "train",
        "--num-envs",
        "128",
        "--steps",
        "30",
        "--resume",
        "--run-name",
        "other",
        env={"CLUSTER_CODE_HOME": str(home)},
        timeout=OUTER_LIMIT,
    )
    assert result.returncode == 3
    line = one_line(result)
    assert "num_envs=64" in line and "128" in line
    assert checkpoint.exists()  # the checkpoint is kept for a resume with the right settings


def test_resume_without_a_run_name_names_the_candidates(home):
    for name in ("first", "second"):
        run = home / "checkpoints" / name
        run.mkdir(parents=True)
        (run / "checkpoint_000000002048.pt").write_bytes(b"x")
    result = run_cli("train", "--resume", env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 2
    line = one_line(result)
    assert "several unfinished runs" in line and "first" in line and "second" in line


def test_resume_with_a_budget_below_the_checkpoint_is_refused_and_the_checkpoint_kept(default_model, home):
    """The checkpoint's run was to reach 204,800 steps and stopped at 2,048: a --total-steps at or
    below its step must not call it finished, delete it and replace the model with a fresh one."""
    path, before = default_model
    checkpoint = make_checkpoint(home, "long")
    kept = checkpoint.read_bytes()
    result = run_cli("train", *SMALL, "--resume", "--run-name", "long", "--total-steps", "1024", timeout=OUTER_LIMIT)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "at step 2048" in line and "to reach 204800" in line and "--total-steps above 2048" in line
    assert result.stdout == ""  # nothing trained
    assert checkpoint.read_bytes() == kept and path.read_bytes() == before


def test_resume_of_a_run_that_never_ran_is_exit_2_and_a_spec_starts_it(home, tmp_path):
    result = run_cli("train", *SMALL, "--resume", "--run-name", "never-ran", timeout=OUTER_LIMIT)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "run never-ran has no checkpoint to continue" in line and "leave out --resume" in line
    assert result.stdout == "" and not (home / "models" / "cluster_agent.pt").exists()
    spec = tmp_path / "job.yaml"  # resume: auto (the default) is "continue if there is anything to continue"
    spec.write_text(
        "apiVersion: cluster-code.rl/v1\nkind: TrainJob\nmetadata: {name: nightly}\n"
        "spec: {totalSteps: 2048, steps: 30, numEnvs: 64}\n"
    )
    result = run_cli("run", spec, timeout=OUTER_LIMIT)
    assert result.returncode == 0, result.stderr
    fresh = next(e for e in events(result.stdout) if e["event"] == "fresh")
    assert fresh["reason"] == "no checkpoint of nightly to resume"
    assert (home / "models" / "cluster_agent.pt").is_file()
    result = run_cli("train", "--job", spec, "--resume", timeout=OUTER_LIMIT)  # the flag insists
    assert result.returncode == 2 and "run nightly has no checkpoint" in one_line(result)


def test_two_runs_started_in_the_same_second_get_distinct_run_ids(home, tmp_path):
    """The clock of both runs is pinned to one second (sitecustomize): their run ids, and so their
    checkpoints, TensorBoard logs and S3 keys, must still differ."""
    clock = tmp_path / "clock"
    clock.mkdir()
    (clock / "sitecustomize.py").write_text(
        "import time\n_gmtime = time.gmtime\ntime.gmtime = lambda secs=None: _gmtime(1750000000 if secs is None else secs)\n"
    )
    env = {"CLUSTER_CODE_HOME": str(home), "PYTHONPATH": f"{clock}{os.pathsep}{ROOT}"}
    runs = [run_cli("train", *SMALL, "--total-steps", "2048", env=env, timeout=OUTER_LIMIT) for _ in range(2)]
    ids = []
    for result in runs:
        assert result.returncode == 0, result.stderr
        ids.append(events(result.stdout)[0]["run_id"])
    assert ids[0] != ids[1] and all(i.startswith("train-20250615-150640-") for i in ids), ids
    assert sorted(p.name for p in (home / "runs").iterdir()) == sorted(ids)


WRITER = """
import sys, time
from rl.files import atomic_file
with atomic_file(sys.argv[1]) as f:
    f.write(b"half a file")
    f.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def start_writer(target):
    """A real process in the middle of an atomic write of `target`; returns it and its temp file."""
    before = set(target.parent.glob(".*.tmp"))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    (temp,) = set(target.parent.glob(".*.tmp")) - before
    return proc, temp


def test_temp_files_are_removed_only_when_their_writer_is_provably_gone(home, tmp_path):
    """A killed writer's temp file goes; a live writer's stays, even an hour old (old enough for a
    PID-reuse rule) and even when it names a PID that is dead here (a writer in another container:
    PID namespaces differ, and both containers' writers are PID 1 or 2)."""
    import fcntl

    run = home / "checkpoints" / "old"
    run.mkdir(parents=True)
    models = home / "models"
    models.mkdir()
    killed, stale = start_writer(run / "checkpoint_000000002048.pt")
    killed.kill()
    killed.wait()
    live, live_temp = start_writer(models / "cluster_agent.pt")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    foreign = models / f".cluster_agent.pt.{dead.pid}.abcd1234.tmp"  # a live writer elsewhere, PID dead here
    foreign.write_bytes(b"being written in another container")
    held = os.open(foreign, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    hour_ago = time.time() - 3700
    for path in (stale, live_temp, foreign):
        os.utime(path, (hour_ago, hour_ago))
    try:
        result = run_cli("train", *SMALL, "--total-steps", "2048", env={"CLUSTER_CODE_HOME": str(home)})
        assert live.poll() is None  # still writing
    finally:
        live.kill()
        live.wait()
        os.close(held)
    assert result.returncode == 0, result.stderr
    cleanup = next(e for e in events(result.stdout) if e["event"] == "cleanup")
    assert cleanup["removed"] == [str(stale)]
    assert not stale.exists() and live_temp.exists() and foreign.exists()


def test_status_flags_a_model_with_non_finite_weights(home, small_model, tmp_path):
    models = home / "models"
    models.mkdir(parents=True)
    bad = hostile_model(tmp_path, small_model, lambda p: next(iter(p["state_dict"].values())).fill_(float("inf")))
    shutil.copy(bad, models / "cluster_agent.pt")
    result = run_cli("status", "-o", "json", env={"CLUSTER_CODE_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)["models"]
    assert "not all finite" in entry["error"]
