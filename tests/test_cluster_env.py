"""`cluster_env`: cluster-code's import name for the environment, served by `rl.ClusterEnv`.

The loops below are those of the scripts cluster-code (as released) writes for `rl train` and
`rl diagnose`, cut to what they ask of the module; tests/test_images.py runs such scripts through
the host shim's pythonPath in the image.
"""

import tomllib
from pathlib import Path

import numpy as np

import rl
from cluster_env import ClusterAction, ClusterEnv, ClusterState

REPO = Path(__file__).resolve().parent.parent


def test_the_import_cluster_codes_scripts_do_resolves_to_our_env():
    assert issubclass(ClusterEnv, rl.ClusterEnv)
    assert ClusterAction is rl.ClusterAction
    assert ClusterState is rl.ClusterState
    env = ClusterEnv(simulation_mode=True, max_steps=5)
    assert env.OBS_DIM == env.observation_space.shape[0] == 18
    assert env.NUM_ACTIONS == env.action_space.n == len(ClusterAction) == 15


def test_cluster_codes_inference_loop_runs_on_the_simulator():
    env = ClusterEnv(simulation_mode=True, max_steps=5, context=None)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    assert obs.shape == (ClusterEnv.OBS_DIM,) and obs.dtype == np.float32
    assert isinstance(info.get("issues", []), list) and info["issues"]
    for _ in range(5):
        action = env.action_space.sample()
        assert ClusterAction(action).name
        obs, reward, terminated, truncated, info = env.step(action)
        assert isinstance(reward, float)
        assert isinstance(info.get("action_result", {}).get("message"), str)
        if terminated or truncated:
            break
    assert truncated or terminated
    assert info.get("total_reward") is not None


def test_the_module_is_packaged_into_the_images():
    with open(REPO / "pyproject.toml", "rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    assert "cluster_env" in setuptools["py-modules"]
    for dockerfile in ("Dockerfile", "Dockerfile.cuda"):
        assert "COPY cluster_env.py /build/src/" in (REPO / dockerfile).read_text(), dockerfile
    assert "./cluster_env.py" in (REPO / "flake.nix").read_text()
