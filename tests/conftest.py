"""Shared fixtures. Test helpers (kube_server, s3_server) are imported from this directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh $CLUSTER_CODE_HOME for one test."""
    path = tmp_path / "cluster-code"
    monkeypatch.setenv("CLUSTER_CODE_HOME", str(path))
    return path


def run_cli(*args, env=None, input=None, timeout=300, cwd=None):
    """Run `cluster-rl` in a real subprocess (stdout is a pipe, so not a TTY)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "entrypoint.cli", *map(str, args)],
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
    )


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """A model file from a short real training run (shared by the tests that only need a valid model)."""
    from rl.model import save_model
    from rl.sim.scenario import ScenarioConfig
    from rl.train import TrainConfig, train

    config = TrainConfig(
        total_steps=64 * 32 * 4, num_envs=64, num_steps=32, minibatch_size=1024, scenario=ScenarioConfig(max_steps=30)
    )
    result = train(config, run_id="fixture")
    path = tmp_path_factory.mktemp("model") / "cluster_agent.pt"
    save_model(path, result.policy, {"global_step": result.global_step, "seed": 0})
    return path
