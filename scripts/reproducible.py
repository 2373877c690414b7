"""Checks that an image builds reproducibly: `scripts/reproducible.py cpu|cuda [--keep]` (`make reproducible`).

Copies the build context (the files git tracks or sees as untracked but not ignored, plus
wheelhouse/*.whl) into two directories with different paths, builds each with podman and without the
layer cache (scripts/build-image.sh VARIANT TAG, EXTRA_BUILD_ARGS=--no-cache), with one
SOURCE_DATE_EPOCH (the environment's, else the last commit's time) and one REVISION (the tree's
commit), and compares the two image IDs. When they differ it names each layer that differs, the
Dockerfile instruction that made it and the files that differ in it (content, mode, owner, time or
presence), or the config fields when no layer differs.

The two tags (localhost/cluster-code-rl:repro-VARIANT-PID-1 and -2) are removed afterwards unless
--keep is given. The images are untagged, not removed (removing one also removes the layers of its
last stage from the cache), so a later build of the same tree with the same SOURCE_DATE_EPOCH (`make
image`) reuses every layer; `podman image prune` frees them.

Exit codes: 0 the same image ID; 1 different IDs; 2 bad usage, or no podman or git; 3 a build failed
(the end of its log goes to stderr).
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_FILES = 40  # differing files named per layer
MAX_LAYERS = 3  # differing layers examined


class Failure(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise Failure(f"git {' '.join(args)}: {result.stderr.strip() or 'failed'} (the check needs a git tree)", 2)
    return result.stdout


def context_files(repo: Path) -> list[str]:
    """What a build context of this tree holds: files git tracks or would track, and the wheelhouse."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    names = {name for name in listed.split("\0") if name and os.path.lexists(repo / name)}
    names |= {path.relative_to(repo).as_posix() for path in (repo / "wheelhouse").glob("*.whl")}
    return sorted(names)


def copy_context(repo: Path, destination: Path) -> None:
    for name in context_files(repo):
        source, target = repo / name, destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif name.endswith(".whl"):
            try:
                os.link(source, target)  # big and never written to: a hard link where possible
            except OSError:
                shutil.copy2(source, target)
        else:
            shutil.copy2(source, target)


def build(context: Path, variant: str, tag: str, env: dict, log: Path) -> float:
    start = time.monotonic()
    with open(log, "w") as out:
        result = subprocess.run(
            ["bash", str(context / "scripts" / "build-image.sh"), variant, tag],
            cwd=context,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-40:])
        raise Failure(f"{tail}\nreproducible: the build in {context} failed (exit {result.returncode})", 3)
    return time.monotonic() - start


def podman(*args: str, capture: bool = True) -> str:
    result = subprocess.run(["podman", *args], capture_output=capture, text=True)
    if result.returncode != 0:
        raise Failure(f"podman {' '.join(args)}: {(result.stderr or '').strip()}", 2)
    return result.stdout or ""


def inspect(tag: str) -> dict:
    return json.loads(podman("image", "inspect", tag))[0]


def layer_instructions(info: dict) -> list[str]:
    """The Dockerfile instruction behind each layer (the history entries that made a layer)."""
    return [entry.get("created_by", "") for entry in info.get("History", []) if not entry.get("empty_layer")]


def members(layer: Path) -> dict[str, tuple]:
    """Each entry of a layer tarball: (type, mode, uid, gid, mtime, sha256 of the content or link target)."""
    out = {}
    with tarfile.open(layer) as tar:
        for member in tar:
            if member.isfile():
                digest = hashlib.file_digest(tar.extractfile(member), "sha256").hexdigest()
            else:
                digest = member.linkname
            out[member.name] = (member.type, member.mode, member.uid, member.gid, member.mtime, digest)
    return out


FIELDS = ("type", "mode", "owner", "owner", "time", "content")


def differing_members(a: Path, b: Path) -> list[str]:
    """The entries of two layer tarballs that differ, each with what differs, sorted by name."""
    first, second = members(a), members(b)
    out = []
    for name in sorted(first.keys() | second.keys()):
        x, y = first.get(name), second.get(name)
        if x == y:
            continue
        if x is None or y is None:
            out.append(f"{name} (only in the {'second' if x is None else 'first'} image)")
            continue
        what = sorted({field for field, u, v in zip(FIELDS, x, y, strict=True) if u != v})
        out.append(f"{name} ({', '.join(what)})")
    return out


def save_layers(tag: str, directory: Path, indexes: list[int]) -> dict[int, Path]:
    """The layer tarballs at these indexes, from `podman save` (docker archive)."""
    directory.mkdir(parents=True)
    archive = directory / "image.tar"
    podman("save", "--format", "docker-archive", "-o", str(archive), tag)
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        out = {}
        for index in indexes:
            target = directory / f"layer-{index}.tar"
            with open(target, "wb") as f:
                shutil.copyfileobj(tar.extractfile(manifest["Layers"][index]), f)
            out[index] = target
    archive.unlink()
    return out


def explain(tags: tuple[str, str], work: Path) -> str:
    """What differs between two images: the layers and files, or the config when no layer does."""
    infos = [inspect(tag) for tag in tags]
    layers = [info["RootFS"]["Layers"] for info in infos]
    if len(layers[0]) != len(layers[1]):
        return f"the images have {len(layers[0])} and {len(layers[1])} layers"
    differing = [i for i, (x, y) in enumerate(zip(*layers, strict=True)) if x != y]
    if not differing:
        skip = {"Id", "Digest", "RepoTags", "RepoDigests", "NamesHistory"}
        keys = sorted(
            k for k in infos[0].keys() | infos[1].keys() if k not in skip and infos[0].get(k) != infos[1].get(k)
        )
        return f"no layer differs; the image configs differ in: {', '.join(keys) or '(nothing podman shows)'}"
    examined = differing[:MAX_LAYERS]
    saved = [save_layers(tag, work / f"save-{n}", examined) for n, tag in enumerate(tags)]
    instructions = layer_instructions(infos[0])
    lines = [f"layers that differ: {differing} of {len(layers[0])}"]
    for index in examined:
        instruction = instructions[index] if index < len(instructions) else "?"
        files = differing_members(saved[0][index], saved[1][index])
        lines.append(f"layer {index} ({instruction[:160]}): {len(files)} entries differ")
        lines += [f"  {entry}" for entry in files[:MAX_FILES]]
        if len(files) > MAX_FILES:
            lines.append(f"  ... and {len(files) - MAX_FILES} more")
        for path in (saved[0][index], saved[1][index]):
            path.unlink()
    return "\n".join(lines)


def check(variant: str, keep: bool) -> int:
    if shutil.which("podman") is None:
        raise Failure("podman is not installed (the check builds with podman's --timestamp)", 2)
    revision = git("rev-parse", "HEAD").strip()
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or git("log", "-1", "--format=%ct").strip()
    extra = " ".join(filter(None, [os.environ.get("EXTRA_BUILD_ARGS", ""), "--no-cache"]))
    env = dict(
        os.environ,
        ENGINE="podman",
        SOURCE_DATE_EPOCH=epoch,
        REVISION=revision,
        EXTRA_BUILD_ARGS=extra,
        PYTHON=os.environ.get("PYTHON", sys.executable),
    )
    tags = (
        f"localhost/cluster-code-rl:repro-{variant}-{os.getpid()}-1",
        f"localhost/cluster-code-rl:repro-{variant}-{os.getpid()}-2",
    )
    work = Path(tempfile.mkdtemp(prefix="cluster-rl-repro-"))
    built = []
    try:
        # Two contexts whose paths differ in name and depth, both copied before either build starts, so
        # that an edit to the tree during the first build reaches neither.
        contexts = (work / "one", work / "second-build" / "context")
        for context in contexts:
            copy_context(REPO, context)
        ids = []
        for n, (context, tag) in enumerate(zip(contexts, tags, strict=True), start=1):
            print(
                f"reproducible: build {n} of the {variant} image in {context} (--no-cache)", file=sys.stderr, flush=True
            )
            seconds = build(context, variant, tag, env, work / f"build-{n}.log")
            built.append(tag)
            ids.append(inspect(tag)["Id"])
            print(f"build {n}: {ids[-1]} ({seconds:.0f} s)", flush=True)
        if ids[0] == ids[1]:
            print(f"reproducible: the two {variant} builds give the same image ID (SOURCE_DATE_EPOCH={epoch})")
            return 0
        print(f"reproducible: the two {variant} builds differ (SOURCE_DATE_EPOCH={epoch})\n{explain(tags, work)}")
        return 1
    finally:
        if built and not keep:
            for tag in built:
                subprocess.run(["podman", "untag", tag, tag], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Build an image twice without the layer cache and compare.")
    parser.add_argument("variant", choices=["cpu", "cuda"])
    parser.add_argument("--keep", action="store_true", help="keep both images (tagged ...-1 and ...-2)")
    args = parser.parse_args()
    try:
        sys.exit(check(args.variant, args.keep))
    except Failure as failure:
        print(f"reproducible: {failure}" if failure.code != 3 else str(failure), file=sys.stderr)
        sys.exit(failure.code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
