"""`cluster-rl status`, `setup` and `remove`, and config.json handling.

In-process through Typer's CliRunner on `entrypoint.cli.app`, and end to end as real subprocesses
(`python -m entrypoint.cli`) with CLUSTER_CODE_HOME pointing at a temporary directory: exit codes,
one-line errors on stderr, a real terminal for the confirmation prompt.
"""

import json
import os
import pty
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from entrypoint import config_file, home
from entrypoint.cli import app
from entrypoint.commands import remove as remove_command
from entrypoint.errors import CliError, ExitCode
from rl.model import ClusterPolicy, save_model
from rl.train import TRAINING_CONFIG_KEYS, TrainConfig

REPO = Path(__file__).resolve().parent.parent
# cluster-code's own settings: every write must leave them exactly as they were.
FOREIGN = {
    "provider": "anthropic",
    "apiKey": "sk-test-not-a-real-key",
    "kubectl": {"context": "prod", "namespaces": ["default", "web"]},
    "history": [1, 2.5, None, True, "ü"],
}
DEFAULT_TRAINING = {camel: getattr(TrainConfig(), snake) for camel, snake in TRAINING_CONFIG_KEYS.items()}


@pytest.fixture
def cc_home(tmp_path, monkeypatch):
    path = tmp_path / "cluster-code"
    monkeypatch.setenv("CLUSTER_CODE_HOME", str(path))
    return path


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4) + "\n", encoding="utf-8")


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def invoke(*args, input=None):
    return CliRunner().invoke(app, list(args), input=input)


def cli_error(result) -> CliError:
    assert isinstance(result.exception, CliError), (result.exception, result.output)
    return result.exception


def run_cli(cc_home: Path, *args, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CLUSTER_RL_DEBUG"}
    env["CLUSTER_CODE_HOME"] = str(cc_home)
    return subprocess.run(
        [sys.executable, "-m", "entrypoint.cli", *args],
        cwd=REPO,
        env=env,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, code: ExitCode, *fragments: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cluster-rl: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def tree(path: Path) -> dict[str, bytes | None]:
    """Every file (with content) and directory under `path`, to compare before and after."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


# ------------------------------------------------------------------------- paths and config.json


def test_home_paths_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CLUSTER_CODE_HOME", str(tmp_path / "h"))
    assert home.cluster_code_home() == tmp_path / "h"
    assert home.models_dir() == tmp_path / "h" / "models"
    assert home.runs_dir() == tmp_path / "h" / "runs"
    assert home.checkpoints_dir() == tmp_path / "h" / "checkpoints"
    assert home.config_path() == tmp_path / "h" / "config.json"
    assert home.default_model_path() == tmp_path / "h" / "models" / "cluster_agent.pt"
    monkeypatch.setenv("CLUSTER_CODE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert home.cluster_code_home() == tmp_path / "user" / ".cluster-code"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLUSTER_CODE_HOME", "relative/dir")
    assert home.cluster_code_home() == tmp_path / "relative" / "dir"


def test_training_config_overrides(cc_home):
    assert config_file.training_config_overrides() == {}  # no config.json at all
    write_json(cc_home / "config.json", {**FOREIGN, "pufferlib": {"enabled": True}})
    assert config_file.training_config_overrides(cc_home) == {}
    training = {"episodes": 1000, "simulation": True, "learningRate": 0.001, "numEnvs": 256}
    write_json(cc_home / "config.json", {**FOREIGN, "pufferlib": {"trainingConfig": training}})
    overrides = config_file.training_config_overrides(cc_home)
    assert overrides == {"learningRate": 0.001, "numEnvs": 256}  # cluster-code's own keys left out
    config = TrainConfig().with_training_config(overrides)
    assert (config.learning_rate, config.num_envs) == (0.001, 256)


@pytest.mark.parametrize(
    ("training", "fragment"),
    [
        ({"learningRate": -1}, "pufferlib.trainingConfig.learningRate: must be in (0, 1]"),
        ({"gamma": 1.5}, "pufferlib.trainingConfig.gamma: must be in (0, 1]"),
        ({"numEnvs": "many"}, "pufferlib.trainingConfig.numEnvs: must be an integer in [1, 65536]"),
        ({"learningRate": float("inf")}, "pufferlib.trainingConfig.learningRate: must be a finite number"),
        ({"learning_rate": 0.1}, "pufferlib.trainingConfig.learning_rate: unknown training setting"),
        ([1, 2], "pufferlib.trainingConfig: expected a JSON object"),
    ],
)
def test_training_config_overrides_rejects_bad_values(cc_home, training, fragment):
    path = cc_home / "config.json"
    write_json(path, {"pufferlib": {"trainingConfig": training}})
    with pytest.raises(CliError) as caught:
        config_file.training_config_overrides()
    assert caught.value.code == ExitCode.USAGE
    assert caught.value.message.startswith(f"{path}: ")
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON: Expecting property name"),
        ("[1, 2]", "expected a JSON object at the top level"),
        ('{"pufferlib": 3}', "pufferlib: expected a JSON object"),
    ],
)
def test_unusable_config_json_is_a_usage_error(cc_home, content, fragment):
    path = cc_home / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(CliError) as caught:
        config_file.training_config_overrides()
    assert caught.value.code == ExitCode.USAGE
    assert str(path) in caught.value.message and fragment in caught.value.message


def test_write_config_is_atomic_and_keeps_permissions(cc_home):
    path = cc_home / "config.json"
    config_file.write_config({"a": 1}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # new file: private (cluster-code keeps keys here)
    path.chmod(0o640)
    config_file.write_config({"a": 2}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert read_json(path) == {"a": 2}
    assert sorted(p.name for p in cc_home.iterdir()) == ["config.json"]  # no temp file left behind
    # A symlinked config.json (dotfiles repos) is written through, and stays a link.
    target = cc_home / "dotfiles" / "cluster-code.json"
    target.parent.mkdir()
    path.rename(target)
    path.symlink_to(target)
    config_file.write_config({"a": 3}, path)
    assert path.is_symlink() and read_json(target) == {"a": 3}


def test_write_config_failure_leaves_the_old_file(cc_home, monkeypatch):
    path = cc_home / "config.json"
    write_json(path, FOREIGN)
    before = path.read_bytes()

    def full_disk(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(CliError) as caught:
        config_file.write_config({"x": 1}, path)
    assert caught.value.code == ExitCode.STORAGE and "No space left on device" in caught.value.message
    assert path.read_bytes() == before
    assert sorted(p.name for p in cc_home.iterdir()) == ["config.json"]


# ------------------------------------------------------------------------- setup


def test_setup_creates_directories_and_keeps_foreign_keys(cc_home):
    write_json(cc_home / "config.json", FOREIGN)
    result = invoke("setup")
    assert result.exit_code == 0, result.output
    for name in ("models", "runs", "checkpoints"):
        assert (cc_home / name).is_dir()
    config = read_json(cc_home / "config.json")
    assert {k: config[k] for k in FOREIGN} == FOREIGN
    assert list(config)[: len(FOREIGN)] == list(FOREIGN)  # cluster-code's keys keep their order too
    assert config["pufferlib"] == {
        "enabled": True,
        "modelPath": str(cc_home / "models" / "cluster_agent.pt"),
        "trainingConfig": DEFAULT_TRAINING,
    }
    assert TrainConfig().with_training_config(config["pufferlib"]["trainingConfig"]) == TrainConfig()


def test_setup_keeps_user_values_unless_forced(cc_home):
    section = {
        "enabled": False,
        "image": "ghcr.io/cluster-code/cluster-code-rl:0.1.0-cpu",  # the host shim's keys
        "variant": "cpu",
        "modelPath": "/data/models/mine.pt",
        "trainingConfig": {"episodes": 1000, "simulation": True, "learningRate": 0.001},
    }
    write_json(cc_home / "config.json", {**FOREIGN, "pufferlib": section})
    assert invoke("setup").exit_code == 0
    written = read_json(cc_home / "config.json")["pufferlib"]
    assert written["enabled"] is True
    assert (written["image"], written["variant"], written["modelPath"]) == (
        section["image"],
        "cpu",
        "/data/models/mine.pt",
    )
    assert written["trainingConfig"] == {**DEFAULT_TRAINING, **section["trainingConfig"]}
    assert list(written["trainingConfig"])[:3] == ["episodes", "simulation", "learningRate"]

    result = invoke("setup", "--force")
    assert result.exit_code == 0, result.output
    config = read_json(cc_home / "config.json")
    assert {k: config[k] for k in FOREIGN} == FOREIGN
    forced = config["pufferlib"]
    assert forced["modelPath"] == str(cc_home / "models" / "cluster_agent.pt")
    assert forced["trainingConfig"] == DEFAULT_TRAINING
    assert (forced["enabled"], forced["image"], forced["variant"]) == (True, section["image"], "cpu")


def test_setup_twice_changes_nothing(cc_home):
    write_json(cc_home / "config.json", FOREIGN)
    assert invoke("setup").exit_code == 0
    path = cc_home / "config.json"
    before, before_stat = tree(cc_home), path.stat()
    result = invoke("setup")
    assert result.exit_code == 0
    assert "nothing changed" in result.output
    assert tree(cc_home) == before
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == (before_stat.st_mtime_ns, before_stat.st_ino)


def test_setup_refuses_bad_settings_without_force(cc_home):
    path = cc_home / "config.json"
    write_json(path, {**FOREIGN, "pufferlib": {"trainingConfig": {"gamma": 7}}})
    before = path.read_bytes()
    result = invoke("setup")
    err = cli_error(result)
    assert err.code == ExitCode.USAGE
    assert f"{path}: pufferlib.trainingConfig.gamma: must be in (0, 1]" in err.message
    assert "--force" in err.message
    assert path.read_bytes() == before
    assert sorted(p.name for p in cc_home.iterdir()) == ["config.json"]  # no directories either

    assert invoke("setup", "--force").exit_code == 0
    assert read_json(path)["pufferlib"]["trainingConfig"] == DEFAULT_TRAINING


def test_setup_force_replaces_a_section_that_is_not_an_object(cc_home):
    path = cc_home / "config.json"
    write_json(path, {**FOREIGN, "pufferlib": "yes please"})
    assert cli_error(invoke("setup")).code == ExitCode.USAGE
    assert read_json(path)["pufferlib"] == "yes please"
    assert invoke("setup", "--force").exit_code == 0
    assert read_json(path)["pufferlib"]["enabled"] is True


def test_setup_creates_a_private_config_and_keeps_an_existing_mode(cc_home):
    assert invoke("setup").exit_code == 0
    assert stat.S_IMODE((cc_home / "config.json").stat().st_mode) == 0o600
    path = cc_home / "config.json"
    path.chmod(0o644)
    write_json(path, {**read_json(path), "provider": "local"})
    assert invoke("setup").exit_code == 0
    assert read_json(path)["provider"] == "local"  # unchanged content: not rewritten
    path.write_text(path.read_text().replace('"numLayers": 2', '"numLayers": 3'))
    assert invoke("setup", "--force").exit_code == 0
    assert read_json(path)["pufferlib"]["trainingConfig"]["numLayers"] == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_setup_cuda_fails_without_a_usable_gpu(cc_home, monkeypatch):
    from entrypoint import gpu

    cpu_only = gpu.TorchCudaStatus("2.13.0+cpu", False, None, False, 0)
    monkeypatch.setattr(gpu, "torch_cuda_status", lambda: cpu_only)
    err = cli_error(invoke("setup", "--cuda"))
    assert err.code == ExitCode.DEVICE
    assert "CPU-only build" in err.message
    assert not cc_home.exists()  # checked before anything is created


# ------------------------------------------------------------------------- status


def test_status_json_lists_models_and_the_section(cc_home):
    assert invoke("setup").exit_code == 0
    good = save_model(cc_home / "models" / "cluster_agent.pt", ClusterPolicy(), {"global_step": 123})
    (cc_home / "models" / "old").mkdir()
    truncated = cc_home / "models" / "old" / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:500])
    (cc_home / "models" / "notes.txt").write_text("not a model")

    result = invoke("status", "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["versions"]["torch"] == metadata.version("torch")
    assert report["versions"]["pufferlib-core"] == metadata.version("pufferlib-core")
    assert report["versions"]["gymnasium"] == metadata.version("gymnasium")
    assert report["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert report["home"]["path"] == str(cc_home)
    assert report["config"]["pufferlib"]["enabled"] is True
    assert report["config"]["error"] is None
    assert isinstance(report["gpu"]["torch"]["available"], bool)
    models = {Path(m["path"]).name: m for m in report["models"]}
    assert sorted(models) == ["cluster_agent.pt", "truncated.pt"]
    assert models["cluster_agent.pt"]["global_step"] == 123
    assert models["cluster_agent.pt"]["size_bytes"] == good.stat().st_size
    assert models["cluster_agent.pt"]["created"].startswith("20")
    assert models["cluster_agent.pt"]["error"] is None
    assert models["truncated.pt"]["global_step"] is None
    assert "not a readable model file" in models["truncated.pt"]["error"]


def test_status_shows_a_bad_training_config_and_exits_2(cc_home):
    write_json(cc_home / "config.json", {"pufferlib": {"enabled": True, "trainingConfig": {"numLayers": 0}}})
    result = invoke("status")
    err = cli_error(result)
    assert err.code == ExitCode.USAGE
    assert "pufferlib.trainingConfig.numLayers: must be an integer in [1, 32]" in err.message
    assert "error: " in result.stdout and "numLayers" in result.stdout  # the report is still printed
    assert "torch" in result.stdout and "pufferlib section enabled" in result.stdout


def test_status_without_a_home(cc_home):
    result = invoke("status")
    assert result.exit_code == 0, result.output
    assert "does not exist yet" in result.stdout and "run `cluster-rl setup`" in result.stdout
    assert not cc_home.exists()  # status writes nothing


# ------------------------------------------------------------------------- remove


def set_up_home(cc_home: Path) -> None:
    write_json(cc_home / "config.json", FOREIGN)
    assert invoke("setup").exit_code == 0
    (cc_home / "runs" / "run-1").mkdir()
    (cc_home / "runs" / "run-1" / "events.out.tfevents").write_bytes(b"\0" * 64)
    (cc_home / "checkpoints" / "run-1.pt").write_bytes(b"checkpoint")
    (cc_home / "models" / "cluster_agent.pt").write_bytes(b"model")


def test_remove_refuses_without_a_terminal(cc_home):
    set_up_home(cc_home)
    before = tree(cc_home)
    err = cli_error(invoke("remove"))  # CliRunner's stdin is not a terminal
    assert err.code == ExitCode.USAGE and "--yes" in err.message
    assert tree(cc_home) == before


def test_remove_asks_and_honours_no(cc_home, monkeypatch):
    set_up_home(cc_home)
    before = tree(cc_home)
    monkeypatch.setattr(remove_command, "stdin_is_terminal", lambda: True)
    result = invoke("remove", input="n\n")
    assert result.exit_code == 0
    assert "Go ahead?" in result.output and "nothing removed" in result.output
    assert tree(cc_home) == before

    result = invoke("remove", input="y\n")
    assert result.exit_code == 0, result.output
    assert not (cc_home / "runs").exists() and not (cc_home / "checkpoints").exists()


def test_remove_yes_disables_and_deletes_runs_but_keeps_models(cc_home):
    set_up_home(cc_home)
    section_before = read_json(cc_home / "config.json")["pufferlib"]
    result = invoke("remove", "--yes")
    assert result.exit_code == 0, result.output
    config = read_json(cc_home / "config.json")
    assert {k: config[k] for k in FOREIGN} == FOREIGN
    assert config["pufferlib"] == {**section_before, "enabled": False}
    assert not (cc_home / "runs").exists() and not (cc_home / "checkpoints").exists()
    assert (cc_home / "models" / "cluster_agent.pt").read_bytes() == b"model"
    assert "--purge deletes them" in result.output

    # Again: nothing left to do, and setup brings it all back with the user's values.
    result = invoke("remove")
    assert result.exit_code == 0 and "nothing to remove" in result.output
    assert invoke("setup").exit_code == 0
    assert read_json(cc_home / "config.json")["pufferlib"] == section_before


def test_remove_purge_deletes_models(cc_home):
    set_up_home(cc_home)
    assert invoke("remove", "--purge", "--yes").exit_code == 0
    assert sorted(p.name for p in cc_home.iterdir()) == ["config.json"]
    assert read_json(cc_home / "config.json")["pufferlib"]["enabled"] is False


def test_remove_does_not_follow_symlinks_out_of_the_home(cc_home, tmp_path):
    set_up_home(cc_home)
    elsewhere = tmp_path / "big-disk" / "runs"
    elsewhere.mkdir(parents=True)
    (elsewhere / "keep.txt").write_text("not ours to delete")
    (cc_home / "runs").rename(tmp_path / "old-runs")
    (cc_home / "runs").symlink_to(elsewhere)
    assert invoke("remove", "--yes").exit_code == 0
    assert not (cc_home / "runs").is_symlink()
    assert (elsewhere / "keep.txt").read_text() == "not ours to delete"


def test_remove_with_nothing_set_up_creates_nothing(cc_home):
    result = invoke("remove")
    assert result.exit_code == 0 and "nothing to remove" in result.output
    assert not cc_home.exists()


# ------------------------------------------------------------------------- real subprocesses


def test_help_does_not_import_heavy_modules():
    code = (
        "import json, sys\n"
        "from entrypoint.cli import main\n"
        "codes = [main(argv) for argv in (['--help'], ['status', '--help'], ['setup', '--help'],"
        " ['remove', '--help'])]\n"
        "heavy = ('torch', 'numba', 'boto3', 'kubernetes', 'pufferlib', 'rl.train', 'rl.model')\n"
        "print(json.dumps({'codes': codes, 'loaded': [m for m in heavy if m in sys.modules]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0, 0, 0], "loaded": []}
    for word in ("status", "setup", "remove", "--purge", "--force", "--cuda", "--output"):
        assert word in proc.stdout


def test_setup_status_remove_end_to_end(tmp_path):
    cc_home = tmp_path / "home with space"
    config_path = cc_home / "config.json"
    write_json(config_path, FOREIGN)

    proc = run_cli(cc_home, "setup")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert read_json(config_path)["pufferlib"]["trainingConfig"] == DEFAULT_TRAINING
    written = config_path.read_bytes()
    assert run_cli(cc_home, "setup").returncode == 0
    assert config_path.read_bytes() == written

    save_model(cc_home / "models" / "cluster_agent.pt", ClusterPolicy(), {"global_step": 123})
    (cc_home / "models" / "corrupt.pt").write_bytes(b"PK\x03\x04 definitely not a zip")
    proc = run_cli(cc_home, "status")
    assert proc.returncode == 0, proc.stderr
    assert f"torch            {metadata.version('torch')}" in proc.stdout
    assert f"pufferlib-core   {metadata.version('pufferlib-core')}" in proc.stdout
    assert f"CLUSTER_CODE_HOME {cc_home}" in proc.stdout
    assert "pufferlib section enabled" in proc.stdout
    lines = proc.stdout.splitlines()
    assert any("cluster_agent.pt" in line and "123 steps" in line for line in lines)
    assert any("corrupt.pt" in line and "unreadable:" in line for line in lines)

    proc = run_cli(cc_home, "status", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [m["global_step"] for m in report["models"]] == [123, None]

    (cc_home / "runs" / "run-1").mkdir()
    before = tree(cc_home)
    proc = run_cli(cc_home, "remove")  # stdin is /dev/null: no terminal to ask on
    assert_one_line_error(proc, ExitCode.USAGE, "refusing", "pass --yes")
    assert tree(cc_home) == before

    proc = run_cli(cc_home, "remove", "--yes")
    assert proc.returncode == 0, proc.stderr
    config = read_json(config_path)
    assert {k: config[k] for k in FOREIGN} == FOREIGN
    assert config["pufferlib"]["enabled"] is False
    assert sorted(p.name for p in cc_home.iterdir()) == ["config.json", "models"]


def test_invalid_config_json_end_to_end(tmp_path):
    cc_home = tmp_path / "home"
    config_path = cc_home / "config.json"
    config_path.parent.mkdir()
    config_path.write_text('{"provider": "anthropic",\n  "pufferlib": {"enabled": true,}\n}\n')
    before = tree(cc_home)
    for command in (["setup"], ["setup", "--force"], ["remove", "--yes"]):
        proc = run_cli(cc_home, *command)
        assert_one_line_error(proc, ExitCode.USAGE, str(config_path), "not valid JSON", "line 2")
        assert proc.stdout == ""
        assert tree(cc_home) == before
    proc = run_cli(cc_home, "status", "--output", "json")
    assert_one_line_error(proc, ExitCode.USAGE, "not valid JSON")
    assert "not valid JSON" in json.loads(proc.stdout)["config"]["error"]


def test_setup_cuda_end_to_end(tmp_path):
    from entrypoint.gpu import torch_cuda_status

    cc_home = tmp_path / "home"
    proc = run_cli(cc_home, "setup", "--cuda")
    if torch_cuda_status().available:
        assert proc.returncode == 0, proc.stderr
        assert "can use:" in proc.stdout
    else:
        assert_one_line_error(proc, ExitCode.DEVICE, "setup --cuda", "device cuda")
        assert not cc_home.exists()


def test_remove_prompt_on_a_real_terminal(tmp_path):
    cc_home = tmp_path / "home"
    (cc_home / "runs" / "run-1").mkdir(parents=True)
    (cc_home / "checkpoints").mkdir()
    for answer, deleted in (("n", False), ("y", True)):
        controller, terminal = pty.openpty()
        try:
            os.write(controller, f"{answer}\n".encode())  # waits in the terminal until the prompt reads it
            proc = run_cli(cc_home, "remove", stdin=terminal)
        finally:
            os.close(terminal)
            os.close(controller)
        assert proc.returncode == 0, proc.stderr
        assert "Go ahead? [y/N]" in proc.stdout
        assert (cc_home / "runs").exists() is not deleted
        assert (cc_home / "checkpoints").exists() is not deleted
        assert ("nothing removed" in proc.stdout) is not deleted
