"""scripts/gpu-check.sh on a machine without a GPU (this one, CI's): it must fail clearly, in one line,
with exit 3 and a JSON summary that says why; and `make gpu-wheels`' carried set.

What it does on a GPU machine is unverified here (see docs/gpus.md, "GPU check").
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu-check.sh"
NO_DRIVER = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."


def fake_nvidia_smi(directory: Path, stdout: str, code: int) -> Path:
    directory.mkdir(exist_ok=True)
    smi = directory / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\ncat <<'OUT'\n{stdout}\nOUT\nexit {code}\n")
    smi.chmod(0o755)
    return directory


def gpu_check(tmp_path: Path, path: str, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    summary = tmp_path / "summary.json"
    env = dict(os.environ, PATH=path, GPU_CHECK_PYTHON=sys.executable)
    env.pop("OUT", None)
    result = subprocess.run(
        ["bash", str(SCRIPT), "--python", sys.executable, "--summary", str(summary), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    return result, json.loads(summary.read_text()) if summary.exists() else None


def assert_fails_clearly(result, summary, reason: str):
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"gpu-check: {summary['error']}" and reason in lines[0]
    assert summary["ok"] is False and summary["schema"] == 1 and summary["steps"] == {}
    assert set(summary) == {"schema", "ok", "error", "started", "seconds", "host", "steps"}


def test_no_nvidia_smi_fails_clearly(tmp_path):
    result, summary = gpu_check(tmp_path, f"{tmp_path / 'empty'}:/usr/bin:/bin")
    assert_fails_clearly(result, summary, "nvidia-smi not found")


def test_nvidia_smi_without_a_driver_fails_clearly(tmp_path):
    fake = fake_nvidia_smi(tmp_path / "bin", NO_DRIVER, 9)
    result, summary = gpu_check(tmp_path, f"{fake}:/usr/bin:/bin")
    assert_fails_clearly(result, summary, f"nvidia-smi lists no GPU ({NO_DRIVER})")


def test_a_gpu_with_a_cpu_only_torch_fails_clearly(tmp_path):
    """nvidia-smi lists a GPU, but this machine's torch is the CPU build: nothing to check on."""
    fake = fake_nvidia_smi(tmp_path / "bin", "NVIDIA H200, 580.159.04, 143771, 9.0", 0)
    result, summary = gpu_check(tmp_path, f"{fake}:/usr/bin:/bin")
    import torch

    if torch.version.cuda is None:
        assert_fails_clearly(result, summary, "is a CPU-only build")
    else:  # a CUDA torch without a GPU (the fake lied)
        assert_fails_clearly(result, summary, "cannot use the GPU")


def test_bad_arguments_exit_2(tmp_path):
    result, summary = gpu_check(tmp_path, "/usr/bin:/bin", "--train-seconds", "soon")
    assert result.returncode == 2 and summary is None
    assert "--train-seconds" in result.stderr


def lock_hashes() -> set[str]:
    return set(re.findall(r"--hash=sha256:([0-9a-f]{64})", (REPO / "requirements" / "cuda.txt").read_text()))


def test_gpu_wheels_are_ignored_and_stay_out_of_image_builds():
    assert "gpu-wheels/" in (REPO / ".gitignore").read_text().splitlines()
    assert "gpu-wheels" in (REPO / ".dockerignore").read_text().splitlines()
    assert re.search(r"^gpu-wheels:", (REPO / "Makefile").read_text(), re.MULTILINE)


def test_gpu_wheels_fetches_a_hash_checked_set_under_60_mib(tmp_path):
    import urllib.request

    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=20)
    except OSError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PyPI is unreachable ({exc})")
        pytest.skip(f"PyPI is unreachable: {exc}")
    out = tmp_path / "wheels"
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu-wheels.sh"), str(out)],
        env=dict(os.environ, PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted(out.iterdir())
    names = {f.name.split("-")[0].lower() for f in files}
    assert {"pufferlib_core", "gymnasium", "kubernetes", "boto3", "setuptools"} <= names
    assert not names & {"torch", "numpy", "numba", "triton"}  # the GPU machine has those
    assert all(f.name.endswith(".tar.gz") or "cp312" in f.name or "-none-" in f.name for f in files)
    hashes = lock_hashes()
    for f in files:
        assert hashlib.sha256(f.read_bytes()).hexdigest() in hashes, f.name
    assert sum(f.stat().st_size for f in files) < 60 * 2**20
