"""Reproducible images: scripts/reproducible.py, which builds an image twice without the layer cache from
two copies of the tree and compares the image IDs, and scripts/image/record.py, which makes the venv's
RECORD files list what the image ships.

`.ci/run` runs the check for the CPU image (`make reproducible`) on every run. Here, its parts are
tested on small inputs; the two full builds run only when CLUSTER_RL_TEST_REPRODUCIBLE names the
variants to check (`1` or `cpu`, `cuda`, `cpu,cuda`), as they take two full builds' time each.
"""

import base64
import csv
import hashlib
import importlib.util
import io
import os
import py_compile
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reproducible = load(REPO / "scripts" / "reproducible.py")
record = load(REPO / "scripts" / "image" / "record.py")


# --------------------------------------------------------------------------- comparing layers


def layer(path: Path, entries: dict[str, tuple[bytes, int, int]]) -> Path:
    """A layer tarball of regular files: name -> (content, mode, mtime)."""
    with tarfile.open(path, "w") as tar:
        for name, (content, mode, mtime) in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), mode, mtime
            tar.addfile(info, io.BytesIO(content))
    return path


def test_differing_members_names_each_file_and_what_differs(tmp_path):
    same = (b"same", 0o644, 1)
    a = layer(
        tmp_path / "a.tar",
        {"same": same, "so": (b"\x7fELF one", 0o755, 1), "pyc": (b"x", 0o644, 1), "gone": (b"", 0o644, 1)},
    )
    b = layer(
        tmp_path / "b.tar",
        {"same": same, "so": (b"\x7fELF two", 0o755, 1), "pyc": (b"x", 0o600, 2), "new": (b"", 0o644, 1)},
    )
    assert reproducible.differing_members(a, b) == [
        "gone (only in the first image)",
        "new (only in the second image)",
        "pyc (mode, time)",
        "so (content)",
    ]
    assert reproducible.differing_members(a, a) == []


# --------------------------------------------------------------------------- the copied context


def run_git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_the_context_copy_holds_what_a_build_context_of_the_tree_holds(tmp_path):
    repo = tmp_path / "repo"
    (repo / "rl").mkdir(parents=True)
    (repo / "wheelhouse").mkdir()
    (repo / ".venv").mkdir()
    (repo / ".gitignore").write_text(".venv/\nwheelhouse/\n*.pyc\n")
    (repo / "rl" / "env.py").write_text("tracked\n")
    (repo / "rl" / "removed.py").write_text("tracked, then deleted\n")
    run_git(repo, "init", "-q")
    run_git(repo, "add", ".")
    run_git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    (repo / "rl" / "removed.py").unlink()
    (repo / "rl" / "env.py").write_text("changed, not committed\n")
    (repo / "rl" / "new.py").write_text("untracked\n")
    (repo / "rl" / "env.pyc").write_bytes(b"ignored")
    (repo / ".venv" / "python").write_text("ignored")
    (repo / "wheelhouse" / "torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl").write_bytes(b"wheel")
    (repo / "wheelhouse" / "notes.txt").write_text("ignored, not a wheel")

    copy = tmp_path / "copy"
    reproducible.copy_context(repo, copy)
    files = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "rl/env.py",
        "rl/new.py",
        "wheelhouse/torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl",
    ]
    assert (copy / "rl" / "env.py").read_text() == "changed, not committed\n"


def test_ci_runs_the_check_for_the_cpu_image_before_the_suite():
    run = (REPO / ".ci" / "run").read_text()
    assert "\nmake reproducible\n" in run and run.index("\nmake reproducible\n") < run.index("\nmake test\n")
    assert "export SOURCE_DATE_EPOCH" in run  # make test's CPU build then reuses the check's layers
    makefile = (REPO / "Makefile").read_text()
    assert "VARIANT ?= cpu" in makefile and "scripts/reproducible.py $(VARIANT)" in makefile


def test_the_check_refuses_an_unknown_variant():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "reproducible.py"), "gpu"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "invalid choice: 'gpu'" in result.stderr


# --------------------------------------------------------------------------- RECORD files


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_record_lists_the_files_as_shipped(tmp_path):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    package, dist_info, bin_dir = site / "pkg", site / "pkg-1.0.dist-info", tmp_path / "bin"
    for directory in (package, dist_info, bin_dir):
        directory.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    (package / "_C.so").write_bytes(b"stripped")  # RECORD says unstripped
    (bin_dir / "tool").write_text("#!/opt/venv/bin/python\n")
    (dist_info / "METADATA").write_text("Name: pkg\n")
    rows = [
        ("pkg/__init__.py", record_hash(b"x = 1\n"), "6"),
        ("pkg/__pycache__/__init__.cpython-311.pyc", "", ""),  # pip's entry; no .pyc is shipped
        ("pkg/_C.so", record_hash(b"unstripped"), "10"),
        ("pkg/tests/test_pkg.py", record_hash(b"cut"), "3"),  # removed by the image's slimming
        ("../../../bin/tool", record_hash(b"#!/opt/venv/bin/python\n"), "23"),
        ("pkg-1.0.dist-info/METADATA", record_hash(b"Name: pkg\n"), "10"),
        ("pkg-1.0.dist-info/RECORD", "", ""),
    ]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    (dist_info / "RECORD").write_text(out.getvalue(), newline="")
    py_compile.compile(
        str(package / "__init__.py"), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, doraise=True
    )
    pyc = Path(importlib.util.cache_from_source(str(package / "__init__.py")))

    assert record.rewrite(site, dist_info / "RECORD") == (1, 1)
    text = (dist_info / "RECORD").read_bytes().decode()
    assert text.endswith("\r\n")  # csv's line ends, as pip writes them
    got = list(csv.reader(io.StringIO(text)))
    pyc_name = pyc.relative_to(site).as_posix()
    assert got == sorted(
        [
            ["../../../bin/tool", record_hash(b"#!/opt/venv/bin/python\n"), "23"],
            ["pkg-1.0.dist-info/METADATA", record_hash(b"Name: pkg\n"), "10"],
            ["pkg-1.0.dist-info/RECORD", "", ""],
            ["pkg/__init__.py", record_hash(b"x = 1\n"), "6"],
            [pyc_name, record_hash(pyc.read_bytes()), str(pyc.stat().st_size)],
            ["pkg/_C.so", record_hash(b"stripped"), "8"],
        ]
    )
    before = (dist_info / "RECORD").read_bytes()
    assert record.rewrite(site, dist_info / "RECORD") == (0, 1)
    assert (dist_info / "RECORD").read_bytes() == before  # the same bytes every time


# --------------------------------------------------------------------------- two full builds (opt-in)


def variants_to_build() -> list[str]:
    value = os.environ.get("CLUSTER_RL_TEST_REPRODUCIBLE", "")
    return ["cpu"] if value == "1" else [v for v in value.split(",") if v in ("cpu", "cuda")]


@pytest.mark.container
@pytest.mark.parametrize("variant", ["cpu", "cuda"])
def test_two_builds_without_the_layer_cache_in_different_directories_are_identical(variant):
    if variant not in variants_to_build():
        pytest.skip(
            f"two full {variant} image builds: set CLUSTER_RL_TEST_REPRODUCIBLE={variant} (CI runs `make reproducible`)"
        )
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "reproducible.py"), variant],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    ids = [line.split()[2] for line in result.stdout.splitlines() if line.startswith("build ")]
    assert len(ids) == 2 and ids[0] == ids[1]
