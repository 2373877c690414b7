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


@pytest.fixture(scope="session")
def good_model(tmp_path_factory):
    """A model that has learned the task on the tests' small scenario (episodes of 30 steps): the
    network fitted to the expert runbook's demonstrations (`rl.imitation`, the kickstart that
    training starts with), long enough to resolve most clusters greedily. About ten seconds, once."""
    import torch

    from rl import imitation
    from rl.model import build_policy, save_model
    from rl.train import TrainConfig
    from rl.train_config import training_scenario

    config = TrainConfig(num_envs=128, scenario=training_scenario(max_steps=30))
    torch.manual_seed(0)
    policy = build_policy(config.hidden_size, config.num_layers, config.lstm)
    policy.diagnosis_weight = config.diagnosis_coefficient
    data = imitation.demonstrations(config.num_envs, config.num_steps, 16, config.scenario, 1 << 40, config.gamma)
    imitation.imitate(
        policy,
        data,
        epochs=30,
        minibatch_segments=64,
        learning_rate=config.learning_rate,
        value_coefficient=config.value_coefficient,
        max_grad_norm=config.max_grad_norm,
        generator=torch.Generator().manual_seed(0),
    )
    path = tmp_path_factory.mktemp("good-model") / "cluster_agent.pt"
    save_model(path, policy, {"global_step": 0, "seed": 0, "run_id": "imitation"})
    return path
