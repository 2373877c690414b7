"""The hash-locked requirement files the images install from: requirements/*.txt, made by scripts/lock.sh."""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LOCKS = {"cpu": REPO / "requirements" / "cpu.txt", "cuda": REPO / "requirements" / "cuda.txt"}
CUDA_BUILD_LOCK = REPO / "requirements" / "cuda-build.txt"
ENTRY_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)(?P<rest>.*)$")
HASH_RE = re.compile(r"--hash=sha256:([0-9a-f]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    """`name==version` lines (comments and blank lines skipped) as {canonical name: version}."""
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==", 1)
            out[canonical(re.sub(r"\[.*\]", "", name))] = version
    return out


def parse_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{canonical name: (version, [sha256 hex, ...])} of a hash-locked requirements file."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").rstrip() + " "
        if not line.rstrip().endswith("\\"):
            if current.strip():
                logical.append(current.strip())
            current = ""
    entries = {}
    for line in logical:
        match = ENTRY_RE.match(line)
        assert match, f"{path.name}: not an exact pin: {line[:80]}"
        entries[canonical(match["name"])] = (match["version"], HASH_RE.findall(match["rest"]))
    return entries


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def runtime_pins() -> dict[str, str]:
    return pins(pyproject()["project"]["dependencies"])


def require_pypi() -> None:
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=20)
    except OSError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PyPI is unreachable ({exc}); CI must check the locks against it")
        pytest.skip(f"PyPI is unreachable: {exc}")


def lock_script(*args: str, project: Path = REPO) -> subprocess.CompletedProcess:
    uv = Path(sys.executable).parent / "uv"
    env = dict(os.environ, UV=str(uv if uv.exists() else shutil.which("uv") or "uv"))
    env["WHEELHOUSE"] = str(REPO / "wheelhouse")
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "lock.sh"), *args, "--project", str(project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def project_copy(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "requirements", tmp_path / "requirements")
    return tmp_path


@pytest.mark.parametrize("variant", LOCKS)
def test_every_entry_is_an_exact_pin_with_sha256_hashes(variant):
    entries = parse_lock(LOCKS[variant])
    assert len(entries) > 50
    for name, (version, hashes) in entries.items():
        assert hashes, f"{variant}: {name}=={version} has no hash"
        assert all(len(h) == 64 for h in hashes), name


@pytest.mark.parametrize("variant", LOCKS)
def test_lock_pins_what_pyproject_and_build_in_pin(variant):
    entries = parse_lock(LOCKS[variant])
    wanted = runtime_pins() | pins((REPO / "requirements" / "build.in").read_text().splitlines())
    if variant == "cpu":
        wanted["torch"] += "+cpu"
    for name, version in wanted.items():
        assert name in entries, f"{variant} lock lacks {name}: run make lock"
        assert entries[name][0] == version, f"{variant} lock pins {name}=={entries[name][0]}, wanted {version}"


def test_cpu_override_is_pyprojects_torch_with_the_cpu_label():
    override = pins((REPO / "requirements" / "cpu.in").read_text().splitlines())
    assert override == {"torch": runtime_pins()["torch"] + "+cpu"}


def test_cpu_lock_carries_no_cuda_and_cuda_lock_has_pypis_torch():
    cpu, cuda = parse_lock(LOCKS["cpu"]), parse_lock(LOCKS["cuda"])
    cuda_only = {n for n in cpu if n.startswith(("nvidia-cu", "cuda-")) or n == "triton"}
    assert not cuda_only, f"CUDA packages in the CPU lock: {sorted(cuda_only)}"
    assert cuda["torch"][0] == runtime_pins()["torch"]
    assert any(n.startswith("nvidia-cublas") for n in cuda) and "triton" in cuda
    # The CPU lock holds at least the +cpu wheel the host's pip resolves (Linux x86_64, CPython 3.11).
    wheel = next((REPO / "wheelhouse").glob(f"torch-{cpu['torch'][0]}-cp311-*x86_64.whl"), None)
    if wheel is not None:
        assert hashlib.sha256(wheel.read_bytes()).hexdigest() in cpu["torch"][1]


@pytest.mark.parametrize("variant", LOCKS)
def test_dev_tools_stay_out_of_the_image_locks(variant):
    dev = pins(pyproject()["project"]["optional-dependencies"]["dev"])
    leaked = set(dev) & set(parse_lock(LOCKS[variant]))
    assert not leaked, f"dev tools in the {variant} image lock: {sorted(leaked)}"


@pytest.mark.parametrize("variant", LOCKS)
def test_lock_header_says_where_torch_and_pufferlib_come_from(variant):
    lines = LOCKS[variant].read_text().splitlines()
    header = " ".join(line.lstrip("# ") for line in lines[: next(i for i, x in enumerate(lines) if x[:1] != "#")])
    assert header.startswith("Hash-locked dependencies of the")
    assert "make lock" in header and "torch is " in header
    assert "pufferlib-core is pinned by the hash of its PyPI sdist" in header


@pytest.mark.parametrize("variant", LOCKS)
def test_pufferlib_sdist_hash_is_the_flakes(variant):
    source = json.loads((REPO / "nix" / "pypi-sources.json").read_text())["pufferlib-core"]
    flake_hex = base64.b64decode(source["hash"].removeprefix("sha256-")).hex()
    version, hashes = parse_lock(LOCKS[variant])["pufferlib-core"]
    assert (version, hashes) == (source["version"], [flake_hex])


def test_cuda_build_lock_is_the_compiler_at_the_runtimes_cuda_version():
    """cuda-build.txt: nvcc and its parts, hash-pinned, at the CUDA version of cuda.txt, with nothing of cuda.txt."""
    build, runtime = parse_lock(CUDA_BUILD_LOCK), parse_lock(LOCKS["cuda"])
    assert {"nvidia-cuda-nvcc", "nvidia-nvvm", "nvidia-cuda-crt"} <= set(build)
    assert not set(build) & set(runtime), "cuda-build.txt repeats packages of cuda.txt"
    for name, (_version, hashes) in build.items():
        assert hashes and all(len(h) == 64 for h in hashes), name
    # One CUDA: the toolkit cuda-build.in asks for is the one torch's lock pins, and nvcc is its 13.0.
    wanted = pins((REPO / "requirements" / "cuda-build.in").read_text().splitlines())["cuda-toolkit"]
    assert runtime["cuda-toolkit"][0].removesuffix(".0") == wanted.removesuffix(".0")
    assert build["nvidia-cuda-nvcc"][0].startswith("13.0.")
    assert build["nvidia-cuda-crt"][0] == build["nvidia-cuda-nvcc"][0]


def test_lock_script_rejects_an_unknown_flag():
    result = subprocess.run(["bash", str(REPO / "scripts" / "lock.sh"), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("usage: scripts/lock.sh")


def test_locks_are_up_to_date_with_their_inputs():
    require_pypi()
    result = lock_script("--check")
    assert result.returncode == 0, result.stderr


def test_lock_check_fails_when_a_pyproject_pin_changes(tmp_path):
    require_pypi()
    project = project_copy(tmp_path)
    text = (project / "pyproject.toml").read_text()
    rich = runtime_pins()["rich"]
    (project / "pyproject.toml").write_text(text.replace(f'"rich=={rich}"', '"rich==14.0.0"'))
    result = lock_script("--check", project=project)
    assert result.returncode == 1
    assert "requirements/cpu.txt is out of date" in result.stderr
    assert "requirements/cuda.txt is out of date" in result.stderr
    assert "cuda-build.txt" not in result.stderr  # rich is no build tool
    assert "> rich==14.0.0" in result.stderr
    assert (project / "requirements" / "cpu.txt").read_text() == LOCKS["cpu"].read_text()  # --check writes nothing


def test_lock_check_fails_when_a_torch_wheel_hash_is_missing(tmp_path):
    require_pypi()
    project = project_copy(tmp_path)
    lock = project / "requirements" / "cpu.txt"
    torch_hashes = parse_lock(lock)["torch"][1]
    text = lock.read_text()
    for digest in torch_hashes:
        text = text.replace(digest, "0" * 64)
    lock.write_text(text)
    result = lock_script("--check", project=project)
    assert result.returncode == 1
    assert "requirements/cpu.txt lacks the hashes of torch wheels" in result.stderr
    assert "cuda.txt" not in result.stderr


def test_relock_rewrites_a_stale_lock(tmp_path):
    require_pypi()
    project = project_copy(tmp_path)
    text = (project / "pyproject.toml").read_text()
    rich = runtime_pins()["rich"]
    (project / "pyproject.toml").write_text(text.replace(f'"rich=={rich}"', '"rich==14.0.0"'))
    result = lock_script(project=project)
    assert result.returncode == 0, result.stderr
    relocked = parse_lock(project / "requirements" / "cpu.txt")
    assert relocked["rich"][0] == "14.0.0"
    unchanged = {n: v for n, (v, _) in parse_lock(LOCKS["cpu"]).items() if n != "rich"}
    assert {n: v for n, (v, _) in relocked.items() if n in unchanged} == unchanged  # other pins were kept
    assert not list((project / "requirements").glob("*.tmp"))
    assert lock_script("--check", project=project).returncode == 0
