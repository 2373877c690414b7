"""flake.nix and flake.lock: what can be checked without a Nix store or binary cache.

Nix cannot fetch nixpkgs or build here, so: the Nix files parse (nix-instantiate from Debian's nix-bin),
the flake's pure parts evaluate, flake.lock is well formed and matches the flake's inputs, and every
PyPI artifact the flake pins is downloaded from PyPI and hashed (by Python and by nix-hash) to the hash
the flake holds. The nixpkgs narHash itself can only be checked where GitHub answers (`nix flake
metadata`, the nix workflow).
"""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NIX_FILES = [REPO / "flake.nix", REPO / "nix" / "lib.nix"]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found (Debian package nix-bin; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def nix_eval(expression: str):
    result = subprocess.run(
        [tool("nix-instantiate"), "--eval", "--strict", "--json", "-E", expression],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def flake_lock() -> dict:
    return json.loads((REPO / "flake.lock").read_text())


def pypi_sources() -> dict:
    return json.loads((REPO / "nix" / "pypi-sources.json").read_text())


def sri_to_hex(sri: str) -> str:
    algorithm, _, digest = sri.partition("-")
    assert algorithm == "sha256"
    raw = base64.b64decode(digest, validate=True)
    assert len(raw) == 32
    return raw.hex()


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: p.name)
def test_nix_files_parse(path):
    result = subprocess.run([tool("nix-instantiate"), "--parse", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_parse_check_catches_a_syntax_error(tmp_path):
    broken = tmp_path / "flake.nix"
    broken.write_text((REPO / "flake.nix").read_text().replace("outputs =", "outputs = = ", 1))
    result = subprocess.run([tool("nix-instantiate"), "--parse", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "syntax error" in result.stderr


def test_flake_inputs_and_outputs_signature():
    flake = nix_eval(
        "let f = import ./flake.nix; in { inherit (f) description inputs; args = builtins.functionArgs f.outputs; }"
    )
    assert flake["inputs"] == {"nixpkgs": {"url": "github:NixOS/nixpkgs/nixos-25.11"}}
    assert flake["args"] == {"self": False, "nixpkgs": False}
    assert "cluster-code-rl" in flake["description"]


def test_flake_lock_pins_the_flakes_nixpkgs_input():
    lock = flake_lock()
    assert lock["version"] == 7
    root = lock["nodes"][lock["root"]]
    assert root["inputs"] == {"nixpkgs": "nixpkgs"}
    node = lock["nodes"]["nixpkgs"]
    owner, repo, ref = "github:NixOS/nixpkgs/nixos-25.11".removeprefix("github:").split("/")
    assert node["original"] == {"owner": owner, "repo": repo, "ref": ref, "type": "github"}
    locked = node["locked"]
    assert locked["type"] == "github" and (locked["owner"], locked["repo"]) == (owner, repo)
    assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"])
    assert isinstance(locked["lastModified"], int) and locked["lastModified"] > 1_700_000_000
    sri_to_hex(locked["narHash"])


def test_nar_hash_converts_to_the_nix_base32_the_nix_tools_print():
    hex_digest = sri_to_hex(flake_lock()["nodes"]["nixpkgs"]["locked"]["narHash"])
    result = subprocess.run(
        [tool("nix-hash"), "--type", "sha256", "--to-base32", hex_digest], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # The same revision's tarball hash as `builtins.fetchTarball` users pin it (nix base32).
    assert result.stdout.strip() == "0ml5dr3n887vyr5j4hh05d83yw05xlgrkmw5bv0zdqk9d0m2phk6"


def test_runtime_dependencies_follow_pyproject():
    names = nix_eval("(import ./nix/lib.nix).runtimeNames ./pyproject.toml")
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert names == [re.split(r"[=<>!~\[; ]", d, maxsplit=1)[0] for d in dependencies]


def test_runtime_dependencies_take_overrides_before_the_package_set():
    packages = nix_eval(
        "(import ./nix/lib.nix).runtimeDependencies ./pyproject.toml"
        ' (builtins.listToAttrs (map (n: { name = n; value = "nixpkgs:" + n; })'
        " ((import ./nix/lib.nix).runtimeNames ./pyproject.toml)))"
        ' { pufferlib-core = "built-here"; }'
    )
    assert "built-here" in packages and "nixpkgs:pufferlib-core" not in packages
    assert "nixpkgs:torch" in packages and len(packages) == len(set(packages))


@pytest.mark.parametrize(
    ("requirement", "name"),
    [("numpy==2.4.6", "numpy"), ("moto[server]==5.2.5", "moto"), ("nvidia-ml-py==13.615.71", "nvidia-ml-py")],
)
def test_requirement_name(requirement, name):
    assert nix_eval(f'(import ./nix/lib.nix).requirementName "{requirement}"') == name


def test_pypi_sources_are_pyprojects_pins():
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for project, source in pypi_sources().items():
        assert f"{project}=={source['version']}" in dependencies
        # fetchPypi asks for PNAME-VERSION.tar.gz
        assert source["filename"] == f"{source['pname']}-{source['version']}.tar.gz"


@pytest.mark.parametrize("project", sorted(pypi_sources()))
def test_pinned_hash_is_the_pypi_artifacts(project, tmp_path):
    source = pypi_sources()[project]
    request = urllib.request.Request(
        f"https://pypi.org/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        index = json.load(urllib.request.urlopen(request, timeout=60))
    except OSError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PyPI is unreachable: {exc}")
        pytest.skip(f"PyPI is unreachable: {exc}")
    files = {f["filename"]: f for f in index["files"]}
    assert source["filename"] in files, f"PyPI has no {source['filename']}"
    entry = files[source["filename"]]
    artifact = tmp_path / source["filename"]
    with urllib.request.urlopen(entry["url"], timeout=300) as response:
        artifact.write_bytes(response.read())

    pinned = sri_to_hex(source["hash"])
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == pinned
    assert entry["hashes"]["sha256"] == pinned
    # Nix's own hash of the file, in the nix base32 form `nix-prefetch-url` and hash mismatches print.
    flat = subprocess.run(
        [tool("nix-hash"), "--type", "sha256", "--flat", "--base32", str(artifact)], capture_output=True, text=True
    )
    converted = subprocess.run(
        [tool("nix-hash"), "--type", "sha256", "--to-base32", pinned], capture_output=True, text=True
    )
    assert flat.returncode == 0 and flat.stdout.strip() == converted.stdout.strip()
