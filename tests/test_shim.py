"""The host shim `cluster-code-rl` (entrypoint/shim.py) against a fake engine (tests/fake_engine).

Every test runs the shim as a real subprocess, the way cluster-code runs it, with PATH pointing at
wrappers named docker/podman (and nvidia-smi where a GPU is wanted). The runs against the real
engine and image are in tests/test_images.py.
"""

import ast
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIM = REPO / "entrypoint" / "shim.py"
FAKE_ENGINE = REPO / "tests" / "fake_engine" / "engine.py"
IMAGE = "localhost/cluster-code-rl:cpu"


class Host:
    """A sandboxed host: a home, a bin dir with fake engines, and a record of the engine's calls."""

    def __init__(self, root: Path):
        self.root = root
        self.bin = root / "bin"
        self.state = root / "engine"
        self.home = root / "cluster-code"
        self.user_home = root / "user"
        for d in (self.bin, self.state, self.user_home):
            d.mkdir()
        self.env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.user_home),
            "CLUSTER_CODE_HOME": str(self.home),
            "FAKE_ENGINE_DIR": str(self.state),
        }
        self.add_engine("docker")
        self.add_engine("podman")

    def add_engine(self, kind: str, name: str | None = None) -> Path:
        path = self.bin / (name or kind)
        path.write_text(f'#!/bin/sh\nFAKE_ENGINE_KIND={kind} exec "{sys.executable}" "{FAKE_ENGINE}" "$@"\n')
        path.chmod(0o755)
        return path

    def remove_engine(self, name: str) -> None:
        (self.bin / name).unlink()

    def add_gpu(self) -> None:
        smi = self.bin / "nvidia-smi"
        smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n")
        smi.chmod(0o755)

    def set_images(self, *refs: str) -> None:
        (self.state / "images").write_text("".join(r + "\n" for r in refs))

    def images(self) -> list[str]:
        path = self.state / "images"
        return path.read_text().split() if path.exists() else []

    def calls(self) -> list[dict]:
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def runs(self) -> list[dict]:
        return [c for c in self.calls() if c.get("argv", [""])[0] == "run"]

    def commands(self, name: str) -> list[list[str]]:
        return [c["argv"] for c in self.calls() if c.get("argv", [""])[0] == name]

    def config(self) -> dict:
        return json.loads((self.home / "config.json").read_text())

    def write_config(self, config: dict) -> None:
        self.home.mkdir(exist_ok=True)
        (self.home / "config.json").write_text(json.dumps(config))

    def set_up(self, variant: str = "cpu", image: str = IMAGE) -> None:
        self.write_config({"pufferlib": {"enabled": True, "image": image, "variant": variant}})
        self.set_images(image)

    def shim(self, *args: str, env: dict | None = None, python: str = sys.executable):
        return subprocess.run(
            [python, str(SHIM), *args],
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.root,
        )


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def run_argv(host: Host) -> list[str]:
    runs = host.runs()
    assert len(runs) == 1, runs
    return runs[0]["argv"]


def flag_values(argv: list[str], flag: str) -> list[str]:
    """The values of an engine flag: only the part of argv before the image counts."""
    engine_part = argv[: argv.index(IMAGE)] if IMAGE in argv else argv
    return [engine_part[i + 1] for i, a in enumerate(engine_part[:-1]) if a == flag]


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --------------------------------------------------------------------------- engine choice


def test_docker_is_used_when_its_daemon_answers(host):
    host.set_up()
    assert host.shim("train", "-e", "1").returncode == 0
    assert host.runs()[0]["kind"] == "docker"


def test_podman_is_used_when_docker_info_fails(host):
    host.set_up()
    result = host.shim("train", "-e", "1", env={"FAKE_ENGINE_INFO_RC": "1"})
    assert result.returncode == 0, result.stderr
    assert host.runs()[0]["kind"] == "podman"


def test_podman_is_used_when_there_is_no_docker(host):
    host.set_up()
    host.remove_engine("docker")
    assert host.shim("train").returncode == 0
    assert host.runs()[0]["kind"] == "podman"


def test_engine_override_wins(host):
    host.set_up()
    engine = host.add_engine("podman", name="my-engine")
    assert host.shim("train", env={"CLUSTER_CODE_RL_ENGINE": str(engine)}).returncode == 0
    assert host.runs()[0]["kind"] == "podman"
    assert host.commands("info") == []  # no probing of docker when told which engine


def test_engine_override_that_does_not_exist(host):
    host.set_up()
    result = host.shim("train", env={"CLUSTER_CODE_RL_ENGINE": "no-such-engine"})
    assert result.returncode == 1
    assert "CLUSTER_CODE_RL_ENGINE=no-such-engine" in one_line(result.stderr)


def test_no_engine_says_what_to_install(host, tmp_path):
    host.set_up()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = host.shim("train", env={"PATH": str(empty)})
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("cluster-code-rl: no container engine found")
    assert "Docker" in line and "Podman" in line


# --------------------------------------------------------------------------- setup and config.json


def test_setup_pulls_the_published_cpu_image_and_writes_config(host):
    result = host.shim("setup")
    assert result.returncode == 0, result.stderr
    ref = f"ghcr.io/cluster-code/cluster-code-rl:{pyproject_version()}-cpu"
    assert host.commands("pull") == [["pull", ref]]
    section = host.config()["pufferlib"]
    assert section["enabled"] is True
    assert section["image"] == ref
    assert section["variant"] == "cpu"
    assert section["modelPath"] == str(host.home / "models")  # cluster-code reads a directory there
    assert section["pythonPath"] == str(host.home / "pufferlib-env" / "bin" / "python")
    assert section["envPath"] == str(host.home / "pufferlib-env")
    assert isinstance(section["trainingConfig"], dict)
    assert (host.home / "models").is_dir()


def test_setup_finishes_with_the_images_own_setup(host):
    host.set_images(IMAGE)
    assert host.shim("setup", "--image", IMAGE).returncode == 0
    argv = run_argv(host)
    assert argv[argv.index(IMAGE) :] == [IMAGE, "setup"]
    assert flag_values(argv, "-v") == [f"{host.home}:{host.home}"]
    assert f"CLUSTER_CODE_HOME={host.home}" in flag_values(argv, "-e")
    assert "CLUSTER_RL_PROG=cluster-code-rl" in flag_values(argv, "-e")
    assert flag_values(argv, "-u") == [f"{os.getuid()}:{os.getgid()}"]


def test_setup_fails_with_the_images_setup(host):
    host.set_images(IMAGE)
    result = host.shim("setup", "--image", IMAGE, env={"FAKE_ENGINE_RUN_RC": "2"})
    assert result.returncode == 2
    assert host.config()["pufferlib"]["image"] == IMAGE  # what the shim did stays done


def test_setup_keeps_every_other_key_and_leaves_no_temp_file(host):
    host.write_config(
        {
            "provider": {"name": "anthropic", "model": "x"},
            "theme": "dark",
            "pufferlib": {"modelPath": "/srv/models/agent.pt", "trainingConfig": {"episodes": 7}, "extra": 1},
        }
    )
    assert host.shim("setup", "--image", IMAGE).returncode == 0
    config = host.config()
    assert config["provider"] == {"name": "anthropic", "model": "x"}
    assert config["theme"] == "dark"
    section = config["pufferlib"]
    assert section["modelPath"] == "/srv/models/agent.pt"
    assert section["trainingConfig"] == {"episodes": 7}
    assert section["extra"] == 1
    assert sorted(p.name for p in host.home.iterdir()) == ["config.json", "models", "pufferlib-env"]
    assert sorted(p.name for p in (host.home / "pufferlib-env" / "bin").iterdir()) == ["python"]


def test_setup_moves_an_old_venv_at_cluster_codes_default_path_aside(host):
    venv = host.home / "pufferlib-env"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\n")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    host.write_config(
        {
            "keep": [1, 2],
            "pufferlib": {
                "enabled": True,
                "pythonPath": str(venv / "bin" / "python"),
                "envPath": str(venv),
                "modelPath": "/old/models",
                "trainingConfig": {"episodes": 50, "simulation": False},
            },
        }
    )
    result = host.shim("setup", "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    config = host.config()
    section = config["pufferlib"]
    assert section["pythonPath"] == str(venv / "bin" / "python") and section["envPath"] == str(venv)
    assert "cluster-code-rl python wrapper" in (venv / "bin" / "python").read_text()
    assert section["modelPath"] == "/old/models"
    assert section["trainingConfig"] == {"episodes": 50, "simulation": False}
    assert section["image"] == IMAGE and section["enabled"] is True
    assert config["keep"] == [1, 2]
    moved = host.home / "pufferlib-env.venv-old"
    assert (moved / "pyvenv.cfg").read_text() == "home = /usr/bin\n"
    assert f"moved the old virtualenv from {venv} to {moved}" in result.stdout


def test_setup_leaves_a_venv_elsewhere_in_place_and_says_so(host, tmp_path):
    venv = tmp_path / "my-venv"
    (venv / "bin").mkdir(parents=True)
    host.write_config({"pufferlib": {"pythonPath": str(venv / "bin" / "python"), "envPath": str(venv)}})
    result = host.shim("setup", "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    assert host.config()["pufferlib"]["envPath"] == str(host.home / "pufferlib-env")
    assert venv.is_dir()
    assert f"the old virtualenv at {venv} is no longer used" in result.stdout


def test_setup_again_rewrites_its_own_wrapper_and_moves_nothing(host):
    host.set_images(IMAGE)
    assert host.shim("setup", "--image", IMAGE).returncode == 0
    result = host.shim("setup", "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    assert "moved" not in result.stdout and "old virtualenv" not in result.stdout
    assert sorted(p.name for p in host.home.iterdir()) == ["config.json", "models", "pufferlib-env"]


def test_setup_replaces_the_model_file_path_it_used_to_write_with_the_directory(host):
    host.write_config({"pufferlib": {"modelPath": str(host.home / "models" / "cluster_agent.pt")}})
    assert host.shim("setup", "--image", IMAGE).returncode == 0
    assert host.config()["pufferlib"]["modelPath"] == str(host.home / "models")


def test_setup_messages_name_host_paths(host):
    result = host.shim("setup", "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    assert str(host.home / "config.json") in result.stdout
    assert str(host.home / "pufferlib-env" / "bin" / "python") in result.stdout
    assert "/data" not in result.stdout


def test_setup_refuses_a_broken_config_and_changes_nothing(host):
    host.home.mkdir()
    (host.home / "config.json").write_text("{not json")
    result = host.shim("setup")
    assert result.returncode == 2
    assert "config.json" in one_line(result.stderr)
    assert (host.home / "config.json").read_text() == "{not json"
    assert host.commands("pull") == []


def test_setup_refuses_a_pufferlib_value_that_is_not_an_object(host):
    host.write_config({"pufferlib": "yes"})
    result = host.shim("setup", "--image", IMAGE)
    assert result.returncode == 2
    assert "pufferlib" in one_line(result.stderr)
    assert host.config() == {"pufferlib": "yes"}


def test_setup_writes_through_a_symlinked_config(host, tmp_path):
    real = tmp_path / "dotfiles" / "config.json"
    real.parent.mkdir()
    real.write_text('{"theme": "dark", "name": "Zoë"}')
    host.home.mkdir()
    (host.home / "config.json").symlink_to(real)
    assert host.shim("setup", "--image", IMAGE).returncode == 0
    assert (host.home / "config.json").is_symlink()
    config = json.loads(real.read_text(encoding="utf-8"))
    assert config["name"] == "Zoë" and config["pufferlib"]["image"] == IMAGE
    assert "Zoë" in real.read_text(encoding="utf-8")


def test_setup_with_a_present_image_does_not_pull(host):
    host.set_images(IMAGE)
    result = host.shim("setup", "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    assert host.commands("pull") == []
    assert host.config()["pufferlib"]["image"] == IMAGE


def test_setup_pulls_a_given_image_that_is_absent(host):
    result = host.shim("setup", "--image", "registry.example/rl:1")
    assert result.returncode == 0, result.stderr
    assert host.commands("pull") == [["pull", "registry.example/rl:1"]]


def test_setup_force_pulls_again(host):
    host.set_images(IMAGE)
    assert host.shim("setup", "--image", IMAGE, "--force").returncode == 0
    assert host.commands("pull") == [["pull", IMAGE]]


def test_setup_reports_a_failed_pull(host):
    result = host.shim("setup", env={"FAKE_ENGINE_PULL_RC": "1"})
    assert result.returncode == 1
    assert "pull" in one_line(result.stderr)
    assert not (host.home / "config.json").exists()


@pytest.mark.skipif(
    os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi") is not None, reason="this host has an NVIDIA GPU"
)
def test_setup_cuda_without_a_gpu_exits_6_unless_forced(host):
    result = host.shim("setup", "--cuda")
    assert result.returncode == 6
    assert "GPU" in one_line(result.stderr)
    assert host.commands("pull") == []
    result = host.shim("setup", "--cuda", "--force")
    assert result.returncode == 0, result.stderr
    assert host.config()["pufferlib"]["variant"] == "cuda"


def test_setup_cuda_with_a_gpu_pulls_the_cuda_image(host):
    host.add_gpu()
    assert host.shim("setup", "--cuda").returncode == 0
    ref = f"ghcr.io/cluster-code/cluster-code-rl:{pyproject_version()}-cuda"
    assert host.commands("pull") == [["pull", ref]]
    assert host.config()["pufferlib"]["variant"] == "cuda"
    argv = run_argv(host)
    assert argv[-3:] == [ref, "setup", "--cuda"]
    assert flag_values(argv, "--gpus") == ["all"]


def test_setup_build_uses_the_checkouts_build_script(host, tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "Dockerfile").write_text("FROM scratch\n")
    log = tmp_path / "build.log"
    (checkout / "scripts" / "build-image.sh").write_text(
        f'#!/bin/sh\necho "$ENGINE $@ $(pwd)" > {log}\n"$ENGINE" build -t "$2" .\n'
    )
    result = host.shim("setup", "--build", str(checkout))
    assert result.returncode == 0, result.stderr
    engine, variant, tag, cwd = log.read_text().split()
    assert (Path(engine).name, variant, tag, cwd) == ("docker", "cpu", IMAGE, str(checkout))
    assert host.config()["pufferlib"]["image"] == IMAGE


def test_setup_build_without_a_script_runs_the_engines_build(host, tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "Dockerfile").write_text("FROM scratch\n")
    assert host.shim("setup", "--build", str(checkout)).returncode == 0
    assert host.commands("build") == [["build", "-f", str(checkout / "Dockerfile"), "-t", IMAGE, str(checkout)]]


def test_setup_build_of_a_directory_that_is_no_checkout(host, tmp_path):
    result = host.shim("setup", "--build", str(tmp_path))
    assert result.returncode == 2
    assert "not a cluster-code-rl checkout" in one_line(result.stderr)


def test_setup_rejects_unknown_flags_in_one_line(host):
    result = host.shim("setup", "--bogus")
    assert result.returncode == 2
    assert "--bogus" in one_line(result.stderr)


# --------------------------------------------------------------------------- container runs


def test_train_runs_the_image_as_the_user_with_the_home_mounted(host):
    host.set_up()
    result = host.shim("train", "-e", "2", "-s", "3", "-v", "--lr", "0.001")
    assert result.returncode == 0, result.stderr
    argv = run_argv(host)
    assert argv[:3] == ["run", "--rm", "--init"]
    assert flag_values(argv, "-u") == [f"{os.getuid()}:{os.getgid()}"]
    assert flag_values(argv, "-v") == [f"{host.home}:{host.home}"]  # the host's paths, inside too
    assert flag_values(argv, "-w") == [str(host.home)]
    assert argv[argv.index(IMAGE) :] == [IMAGE, "train", "-e", "2", "-s", "3", "-v", "--lr", "0.001"]
    assert "-it" not in argv and "-t" not in argv
    assert "KUBECONFIG" not in " ".join(argv)
    assert "--gpus" not in argv and "--device" not in argv


def test_rootless_podman_keeps_the_users_id(host, monkeypatch):
    sys.path.insert(0, str(REPO / "entrypoint"))
    try:
        import shim
    finally:
        sys.path.pop(0)
    monkeypatch.setenv("CLUSTER_CODE_HOME", str(host.home))
    monkeypatch.setattr(shim.os, "geteuid", lambda: 1000)
    podman = shim.container_run_args(shim.Engine("podman", "podman"), IMAGE, "cpu", ["train"], False, False)
    docker = shim.container_run_args(shim.Engine("docker", "docker"), IMAGE, "cpu", ["train"], False, False)
    assert "--userns=keep-id" in podman
    assert "--userns=keep-id" not in docker


def test_only_aws_and_cluster_code_variables_reach_the_container(host):
    host.set_up()
    env = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret-value",
        "CLUSTER_CODE_LOG": "debug",
        "GITHUB_TOKEN": "ghp_should_not_pass",
        "SECRET": "nope",
    }
    assert host.shim("diagnose", env=env).returncode == 0
    run = host.runs()[0]
    passed = [v for v in flag_values(run["argv"], "-e") if "=" not in v]
    assert sorted(passed) == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "CLUSTER_CODE_LOG"]
    set_here = [v for v in flag_values(run["argv"], "-e") if "=" in v]
    assert sorted(set_here) == [f"CLUSTER_CODE_HOME={host.home}", "CLUSTER_RL_PROG=cluster-code-rl"]
    assert run["env"] == {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret-value",
        "CLUSTER_CODE_LOG": "debug",
    }
    joined = " ".join(run["argv"])
    for value in ("secret-value", "AKIDEXAMPLE", "ghp_should_not_pass", "GITHUB_TOKEN"):
        assert value not in joined


def test_kubeconfig_is_mounted_read_only_only_with_no_simulation(host, tmp_path):
    host.set_up()
    kubeconfig = tmp_path / "kube" / "config"
    kubeconfig.parent.mkdir()
    kubeconfig.write_text("apiVersion: v1\n")
    env = {"KUBECONFIG": str(kubeconfig)}
    assert host.shim("diagnose", env=env).returncode == 0
    assert host.shim("diagnose", "--no-simulation", "-s", "5", env=env).returncode == 0
    simulated, real = (r["argv"] for r in host.runs())
    assert flag_values(simulated, "-v") == [f"{host.home}:{host.home}"]
    assert not any(v.startswith("KUBECONFIG") for v in flag_values(simulated, "-e"))
    assert flag_values(real, "-v") == [f"{host.home}:{host.home}", f"{kubeconfig}:{kubeconfig}:ro"]
    assert f"KUBECONFIG={kubeconfig}" in flag_values(real, "-e")
    assert real[real.index(IMAGE) :] == [IMAGE, "diagnose", "--no-simulation", "-s", "5"]


def test_default_kubeconfig_is_the_users(host):
    host.set_up()
    default = host.user_home / ".kube" / "config"
    default.parent.mkdir()
    default.write_text("apiVersion: v1\n")
    assert host.shim("train", "--no-simulation").returncode == 0
    assert f"{default}:{default}:ro" in flag_values(run_argv(host), "-v")


def test_no_simulation_without_a_kubeconfig_exits_5(host):
    host.set_up()
    result = host.shim("diagnose", "--no-simulation", env={"KUBECONFIG": str(host.root / "missing")})
    assert result.returncode == 5
    assert "kubeconfig" in one_line(result.stderr)
    assert host.runs() == []


def test_model_outside_the_home_is_mounted_read_only(host, tmp_path):
    host.set_up()
    model = tmp_path / "elsewhere" / "agent.pt"
    model.parent.mkdir()
    model.write_bytes(b"model")
    assert host.shim("diagnose", "-m", str(model), "--output", "json").returncode == 0
    argv = run_argv(host)
    assert f"{model}:{model}:ro" in flag_values(argv, "-v")
    assert argv[argv.index(IMAGE) :] == [IMAGE, "diagnose", "-m", str(model), "--output", "json"]


def test_model_inside_the_home_needs_no_mount(host):
    host.set_up()
    model = host.home / "models" / "cluster_agent.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"model")
    assert host.shim("diagnose", f"--model={model}").returncode == 0
    argv = run_argv(host)
    assert flag_values(argv, "-v") == [f"{host.home}:{host.home}"]
    assert argv[-2:] == ["--model", str(model)]


def test_relative_model_path_is_taken_from_the_working_directory(host):
    host.set_up()
    (host.root / "agent.pt").write_bytes(b"model")  # the shim runs in host.root
    assert host.shim("evaluate", "-m", "agent.pt").returncode == 0
    model = host.root / "agent.pt"
    argv = run_argv(host)
    assert f"{model}:{model}:ro" in flag_values(argv, "-v")
    assert argv[-2:] == ["-m", str(model)]


def test_host_paths_where_the_image_keeps_its_own_files_are_mounted_elsewhere(host, tmp_path):
    sys.path.insert(0, str(REPO / "entrypoint"))
    try:
        import shim
    finally:
        sys.path.pop(0)
    assert shim.container_view("/home/me/.cluster-code") == "/home/me/.cluster-code"
    assert shim.container_view("/tmp/x/agent.pt") == "/tmp/x/agent.pt"
    for path in ("/", "/tmp", "/opt/venv/models", "/usr/local/share/cc", "/data", "/data/x", "/etc/kube"):
        assert shim.container_view(path) is None, path
    assert shim.container_view("/database/x") == "/database/x"  # a prefix of a name is not a parent
    assert shim.home_view("/opt/cluster-code") == "/data"


def test_s3_model_uri_is_passed_as_it_is(host):
    host.set_up()
    assert host.shim("diagnose", "-m", "s3://bucket/models/agent.pt").returncode == 0
    assert run_argv(host)[-2:] == ["-m", "s3://bucket/models/agent.pt"]


def test_missing_model_file_exits_3(host):
    host.set_up()
    result = host.shim("diagnose", "-m", "/nowhere/agent.pt")
    assert result.returncode == 3
    assert "/nowhere/agent.pt" in one_line(result.stderr)
    assert host.runs() == []


def test_cuda_variant_asks_docker_for_all_gpus(host):
    host.set_up(variant="cuda")
    assert host.shim("train").returncode == 0
    argv = run_argv(host)
    assert flag_values(argv, "--gpus") == ["all"]
    assert "--device" not in argv


def test_cuda_variant_asks_podman_for_the_cdi_device(host):
    host.set_up(variant="cuda")
    assert host.shim("train", env={"FAKE_ENGINE_INFO_RC": "1"}).returncode == 0
    argv = run_argv(host)
    assert flag_values(argv, "--device") == ["nvidia.com/gpu=all"]
    assert "--gpus" not in argv


@pytest.mark.parametrize("code", [0, 3, 75, 130])
def test_the_containers_exit_code_is_the_shims(host, code):
    host.set_up()
    assert host.shim("train", env={"FAKE_ENGINE_RUN_RC": str(code)}).returncode == code


def test_interactive_terminal_gets_it(host):
    host.set_up()
    pid, fd = pty.fork()
    if pid == 0:  # child: stdin and stdout are the pty
        os.environ.clear()
        os.environ.update(host.env)
        os.execv(sys.executable, [sys.executable, str(SHIM), "train", "-e", "1"])
    output = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    run = host.runs()[0]
    assert "-it" in run["argv"]
    assert run["stdin_tty"] is True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_shim_reaches_the_engine_once(host, signum):
    host.set_up()
    proc = subprocess.Popen(
        [sys.executable, str(SHIM), "train"],
        env={**host.env, "FAKE_ENGINE_RUN_WAIT": "1"},
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as under cluster-code
    )
    running = host.state / "running"
    deadline = time.monotonic() + 30
    while not running.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.exists()
    os.killpg(proc.pid, signum)  # what a terminal or a supervisor sends: the whole group
    assert proc.wait(timeout=30) == 128 + signum
    assert [c["signals"] for c in host.calls() if "signals" in c] == [[signum]]


def test_commands_need_setup_first(host):
    result = host.shim("train")
    assert result.returncode == 1
    assert "setup" in one_line(result.stderr)


def test_unknown_command_is_a_usage_error(host):
    result = host.shim("frobnicate")
    assert result.returncode == 2
    assert "frobnicate" in one_line(result.stderr)


# --------------------------------------------------------------------------- cluster-code's pythonPath


def import_shim():
    sys.path.insert(0, str(REPO / "entrypoint"))
    try:
        import shim
    finally:
        sys.path.pop(0)
    return shim


def after_image(argv: list[str]) -> list[str]:
    return argv[argv.index(IMAGE) + 1 :]


def test_python_runs_a_script_outside_the_home_with_its_directory_mounted(host, tmp_path):
    host.set_up()
    script = tmp_path / "scripts" / "train.py"
    script.parent.mkdir()
    script.write_text("print('hi')\n")
    result = host.shim("python", "-u", "scripts/train.py", "--flag", "x")  # relative to the shim's cwd
    assert result.returncode == 0, result.stderr
    argv = run_argv(host)
    engine_part = argv[: argv.index(IMAGE)]
    assert engine_part[-2:] == ["--entrypoint", "python"]
    assert "-i" in engine_part
    assert flag_values(argv, "-u") == [f"{os.getuid()}:{os.getgid()}"]
    assert flag_values(argv, "-v") == [f"{host.home}:{host.home}", f"{script.parent}:{script.parent}"]
    assert flag_values(argv, "-w") == [str(script.parent)]  # the caller's cwd is not mounted
    assert f"CLUSTER_CODE_HOME={host.home}" in flag_values(argv, "-e")
    assert after_image(argv) == ["-u", str(script), "--flag", "x"]


def test_python_as_cluster_code_runs_it_script_in_the_env_dir_cwd_there(host):
    host.set_up()
    env_dir = host.home / "pufferlib-env"
    env_dir.mkdir(parents=True)
    script = env_dir / "train_cluster_agent.py"
    script.write_text("")
    result = subprocess.run(
        [sys.executable, str(SHIM), "python", str(script)],
        env=host.env,
        cwd=env_dir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    argv = run_argv(host)
    assert flag_values(argv, "-v") == [f"{host.home}:{host.home}"]  # inside the home: no second mount
    assert flag_values(argv, "-w") == [str(env_dir)]
    assert after_image(argv) == [str(script)]


def test_python_probes_mount_only_the_home(host):
    host.set_up()
    code = "import pufferlib; print(pufferlib.__version__)"
    assert host.shim("python", "-c", code).returncode == 0
    assert host.shim("python", "--version").returncode == 0
    probe, version = (r["argv"] for r in host.runs())
    assert flag_values(probe, "-v") == [f"{host.home}:{host.home}"]
    assert flag_values(probe, "-w") == [str(host.home)]
    assert after_image(probe) == ["-c", code]
    assert after_image(version) == ["--version"]


def test_python_script_where_the_image_keeps_its_files_is_mounted_at_script(host, monkeypatch):
    shim = import_shim()
    monkeypatch.setenv("CLUSTER_CODE_HOME", str(host.home))
    engine = shim.Engine("podman", "podman")
    args = shim.python_run_args(engine, IMAGE, "cpu", ["/usr/bin/this.py"], False)  # /usr is the image's
    assert "/usr/bin:/script" in args
    assert args[args.index(IMAGE) + 1 :] == ["/script/this.py"]
    args = shim.python_run_args(engine, IMAGE, "cpu", ["/x.py"], False)
    assert not any(a.endswith(":/script") or a.startswith("/:") for a in args)
    assert args[-1] == "/x.py"


def test_python_exit_code_is_the_containers(host):
    host.set_up()
    assert host.shim("python", "-c", "raise SystemExit(3)", env={"FAKE_ENGINE_RUN_RC": "3"}).returncode == 3


def test_python_needs_setup_first(host):
    result = host.shim("python", "--version")
    assert result.returncode == 1
    assert "setup" in one_line(result.stderr)
    assert host.runs() == []


@pytest.mark.parametrize(
    ("argv", "index"),
    [
        (["train.py"], 0),
        (["-u", "train.py", "-c"], 1),
        (["-W", "ignore", "-X", "dev", "t.py"], 4),
        (["-Wignore", "-Xdev", "t.py"], 2),
        (["--check-hash-based-pycs", "never", "t.py"], 2),
        (["-I", "--", "t.py"], 2),
        (["-c", "print(1)", "t.py"], None),
        (["-uc", "print(1)"], None),
        (["-m", "pip"], None),
        (["-"], None),
        (["--version"], None),
        ([], None),
    ],
)
def test_the_script_in_a_python_command_line(argv, index):
    assert import_shim()._script_index(argv) == index


def test_setup_writes_a_wrapper_that_runs_the_images_python(host):
    host.set_images(IMAGE)
    assert host.shim("setup", "--image", IMAGE).returncode == 0
    python = Path(host.config()["pufferlib"]["pythonPath"])
    assert os.access(python, os.X_OK)
    # cluster-code runs it with its own environment: no CLUSTER_CODE_HOME, the user's cwd.
    env = {k: v for k, v in host.env.items() if k != "CLUSTER_CODE_HOME"}
    result = subprocess.run(
        [str(python), "-c", "import torch"], env=env, cwd=host.user_home, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    argv = host.runs()[-1]["argv"]
    assert after_image(argv) == ["-c", "import torch"]
    assert argv[argv.index(IMAGE) - 1] == "python"
    assert flag_values(argv, "-v") == [f"{host.home}:{host.home}"]
    status = host.shim("status")
    assert f"python:   {python} (cluster-code's pythonPath" in status.stdout


def test_the_wrapper_keeps_the_engine_setup_chose(host):
    host.set_images(IMAGE)
    assert host.shim("setup", "--image", IMAGE, env={"FAKE_ENGINE_INFO_RC": "1"}).returncode == 0  # podman
    python = host.config()["pufferlib"]["pythonPath"]
    before = len(host.calls())
    result = subprocess.run([python, "--version"], env=host.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    calls = host.calls()[before:]
    assert {c["kind"] for c in calls} == {"podman"}
    assert not any(c["argv"][:1] == ["info"] for c in calls)  # no engine detection on every probe


# --------------------------------------------------------------------------- status and remove


def test_status_reports_engine_image_gpu_models_then_the_containers_status(host):
    host.set_up()
    (host.home / "models").mkdir()
    (host.home / "models" / "cluster_agent.pt").write_bytes(b"x" * 2000)
    host.add_gpu()
    result = host.shim("status", env={"FAKE_ENGINE_RUN_RC": "0"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Docker version 27.3.1" in out
    assert f"{IMAGE} (cpu), present" in out
    assert "NVIDIA H200" in out
    assert "cluster_agent.pt" in out
    assert "python:   none for cluster-code" in out  # set_up() wrote config.json only
    assert run_argv(host)[-2:] == [IMAGE, "status"]


def test_status_when_not_set_up_exits_1_without_running_anything(host):
    result = host.shim("status")
    assert result.returncode == 1
    assert "not set up" in result.stdout
    assert host.runs() == []


def test_status_when_the_image_is_missing(host):
    host.set_up()
    host.set_images()
    result = host.shim("status")
    assert result.returncode == 1
    assert "missing" in result.stdout
    assert host.runs() == []


def test_remove_without_yes_and_without_a_terminal_refuses(host):
    host.set_up()
    result = host.shim("remove")
    assert result.returncode == 2
    assert "--yes" in one_line(result.stderr)
    assert host.images() == [IMAGE]
    assert host.config()["pufferlib"]["enabled"] is True


def test_remove_keeps_models_unless_purged(host):
    host.write_config({"other": 1, "pufferlib": {"enabled": True, "image": IMAGE, "variant": "cpu"}})
    host.set_images(IMAGE)
    model = host.home / "models" / "cluster_agent.pt"
    for path in (model, host.home / "runs" / "run-1" / "events", host.home / "checkpoints" / "c.pt"):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    result = host.shim("remove", "--yes")
    assert result.returncode == 0, result.stderr
    assert host.commands("rmi") == [["rmi", IMAGE]]
    assert host.images() == []
    config = host.config()
    assert config["pufferlib"]["enabled"] is False and config["other"] == 1
    assert model.exists()
    assert not (host.home / "runs").exists() and not (host.home / "checkpoints").exists()
    assert "kept the models" in result.stdout
    assert host.shim("remove", "--purge", "--yes").returncode == 0
    assert not model.parent.exists()
    assert host.config()["other"] == 1


def test_remove_undoes_the_python_wrapper(host):
    host.set_images(IMAGE)
    assert host.shim("setup", "--image", IMAGE).returncode == 0
    result = host.shim("remove", "--yes")
    assert result.returncode == 0, result.stderr
    assert not (host.home / "pufferlib-env").exists()
    section = host.config()["pufferlib"]
    assert "pythonPath" not in section and "envPath" not in section
    assert section["enabled"] is False
    assert f"deleted {host.home / 'pufferlib-env'}" in result.stdout


def test_remove_leaves_a_venv_that_is_not_ours(host, tmp_path):
    venv = host.home / "pufferlib-env"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\n")
    host.write_config(
        {"pufferlib": {"enabled": True, "pythonPath": str(venv / "bin" / "python"), "envPath": str(venv)}}
    )
    result = host.shim("remove", "--yes")
    assert result.returncode == 0, result.stderr
    assert (venv / "bin" / "python").exists()


def test_remove_does_not_follow_a_symlinked_directory(host, tmp_path):
    host.set_up()
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (host.home / "runs").symlink_to(elsewhere)
    assert host.shim("remove", "--yes").returncode == 0
    assert not (host.home / "runs").exists()
    assert (elsewhere / "keep.txt").read_text() == "keep"


# --------------------------------------------------------------------------- the file itself


def pyproject_version() -> str:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def test_version_matches_the_project(host):
    result = host.shim("--version")
    assert result.stdout.strip() == f"cluster-code-rl {pyproject_version()}"


def test_console_script_is_declared():
    with open(REPO / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts["cluster-code-rl"] == "entrypoint.shim:main"


def test_shim_is_python_3_8_syntax_and_standard_library_only():
    tree = ast.parse(SHIM.read_text(), feature_version=(3, 8))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def python38() -> str | None:
    """A Python 3.8 interpreter if this machine has one (on PATH, or one pyenv installed)."""
    candidates = [shutil.which("python3.8"), *sorted(Path.home().glob(".pyenv/versions/3.8*/bin/python3.8"))]
    for candidate in candidates:
        if candidate and subprocess.run([str(candidate), "-c", "pass"], capture_output=True).returncode == 0:
            return str(candidate)
    return None


@pytest.mark.skipif(python38() is None, reason="no Python 3.8 on this machine")
def test_shim_runs_under_python_3_8(host):
    host.set_up()
    result = host.shim("train", "-e", "1", python=python38())
    assert result.returncode == 0, result.stderr
    assert run_argv(host)[-3:] == ["train", "-e", "1"]


# --------------------------------------------------------------------------- the image's hints, through the shim


@pytest.mark.parametrize(
    ("prog", "shown"), [("cluster-code-rl", "cluster-code-rl"), (None, "cluster-rl"), ("rm -rf", "cluster-rl")]
)
def test_the_images_hints_name_the_command_the_shim_says_the_user_types(tmp_path, prog, shown):
    from tests.conftest import run_cli

    env = {"CLUSTER_CODE_HOME": str(tmp_path / "home")}
    if prog:
        env["CLUSTER_RL_PROG"] = prog
    result = run_cli("status", env=env)
    assert result.returncode == 0, result.stderr
    assert f"run `{shown} setup`" in result.stdout
    assert f"run `{shown} train`" in result.stdout
