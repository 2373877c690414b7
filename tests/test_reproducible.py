"""Two builds of the CPU image from the same tree, with the same SOURCE_DATE_EPOCH, give the same image.

Opt-in (CLUSTER_RL_TEST_REPRODUCIBLE=1): it builds the image twice from scratch, which takes two full
builds' time. When the IDs differ, the failure names the first layer that differs and files in it whose
content or metadata differ.
"""

import json
import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TAGS = ("localhost/cluster-code-rl:repro-a", "localhost/cluster-code-rl:repro-b")

pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(
        os.environ.get("CLUSTER_RL_TEST_REPRODUCIBLE") != "1",
        reason="two full image builds: set CLUSTER_RL_TEST_REPRODUCIBLE=1",
    ),
]


def source_date_epoch() -> int:
    result = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=REPO, capture_output=True, text=True)
    return int(result.stdout.strip() or 0) if result.returncode == 0 else 0


def build(tag: str, epoch: int, log: Path, *extra: str) -> None:
    created = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    env = dict(
        os.environ,
        ENGINE="podman",
        PYTHON=sys.executable,
        SOURCE_DATE_EPOCH=str(epoch),
        CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", str(REPO / "scripts" / "containers.conf")),
        EXTRA_BUILD_ARGS=" ".join(["--timestamp", str(epoch), "--build-arg", f"CREATED={created}", *extra]),
    )
    with open(log, "w") as out:
        result = subprocess.run(
            ["bash", "scripts/build-image.sh", "cpu", tag], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    assert result.returncode == 0, log.read_text()[-3000:]


def image_id(tag: str) -> str:
    return subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True, check=True
    ).stdout.strip()


def layers(tag: str, directory: Path) -> list[Path]:
    """The image's layer tarballs, in order (podman save as a docker archive, unpacked)."""
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / "image.tar"
    subprocess.run(["podman", "save", "--format", "docker-archive", "-o", str(archive), tag], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    manifest = json.loads((directory / "manifest.json").read_text())[0]
    return [directory / layer for layer in manifest["Layers"]]


def members(layer: Path) -> dict[str, tuple]:
    out = {}
    with tarfile.open(layer) as tar:
        for member in tar:
            content = tar.extractfile(member).read() if member.isfile() else member.linkname
            out[member.name] = (member.mode, member.uid, member.gid, member.mtime, member.type, hash(content))
    return out


def test_two_builds_with_the_same_source_date_epoch_are_identical(tmp_path):
    epoch = source_date_epoch()
    build(TAGS[0], epoch, tmp_path / "a.log")
    build(TAGS[1], epoch, tmp_path / "b.log", "--no-cache")
    first, second = image_id(TAGS[0]), image_id(TAGS[1])
    if first == second:
        return
    a_layers, b_layers = layers(TAGS[0], tmp_path / "a"), layers(TAGS[1], tmp_path / "b")
    for index, (a, b) in enumerate(zip(a_layers, b_layers, strict=False)):
        a_members, b_members = members(a), members(b)
        differing = sorted(n for n in a_members.keys() | b_members.keys() if a_members.get(n) != b_members.get(n))
        if differing:
            pytest.fail(f"image IDs differ ({first[:12]} vs {second[:12]}); layer {index} differs in: {differing[:40]}")
    pytest.fail(f"image IDs differ ({first[:12]} vs {second[:12]}) but no layer does: the config differs")
