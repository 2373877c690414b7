"""Recorded trajectories: for fixed seeds and actions the simulator gives the same outputs, bit for bit.

The other simulator tests check behaviour fault by fault; this one pins every output of a few hundred
steps of random actions over 256 clusters of several scenarios (observations, rewards, episode
ends, reward parts, the true state and the record of finished episodes), so that a change meant only
to make the kernels faster cannot change a trajectory unnoticed. The digests were recorded on
x86-64 with the locked numba. A changed digest means a changed trajectory: re-record
(`python tests/test_sim_trajectories.py` prints the digests) only with a change of behaviour that
is meant, and say so in its commit.
"""

import hashlib
import platform

import numpy as np
import pytest

from rl.sim import core
from rl.sim.scenario import ScenarioConfig
from rl.state import OBS_SIZE

NUM_CLUSTERS = 256
STEPS = 300
WAIT = 14

# name: (scenario settings, seed, how the agent names faults, auto_reset, share of WAITs)
CASES = {
    "default": ({}, 11, "revealed", True, 0.0),
    "busy": (
        {"max_nodes": 40, "new_fault_rate": 0.2, "cascade_chance": 0.6, "min_faults": 3, "max_faults": 4},
        12,
        "random",
        True,
        0.3,
    ),
    "large": (
        {"min_nodes": 300, "max_nodes": 1000, "max_deployments": 500, "max_replicas": 40},
        13,
        "revealed",
        True,
        0.1,
    ),
    "short": ({"max_steps": 15, "min_faults": 0, "max_faults": 2}, 14, "active_or_revealed", False, 0.2),
}

RECORDED = {
    "default": "1dbcb68fc4392a387bf791dfdd9ac758cc85f6c9668db9a88b77d98d3904883e",
    "busy": "2104d0ac097f42dd9119822d9c13e2cacca2d1c9f9a3838a553db47e4a39426b",
    "large": "44baf4d2acf56bc03839c284be1157b49387947aa3b1bd66e189a10ba3128f9b",
    "short": "fa719993f0cbdb77cbf890c212b1befa319c0f0101e96915e5f5dd79a12ece7e",
}

# Every array of the state that a step writes, besides the caller's buffers.
HASHED_STATE = (
    "shape",
    "active",
    "revealed",
    "caused",
    "size",
    "timer",
    "events",
    "truth",
    "usage",
    "seen",
    "health",
    "episode_return",
    "harmful",
    "reward_parts",
    "step_harmful",
    "resolved_now",
    "outcome",
    "final_return",
    "final_length",
    "final_harmful",
    "final_health",
    "final_active",
)


def trajectory_digest(name: str) -> str:
    settings, seed, naming, auto_reset, wait_share = CASES[name]
    n = NUM_CLUSTERS
    batch = core.ClusterBatch(n, ScenarioConfig(**settings))
    batch.seed(seed)
    obs = np.zeros((n, OBS_SIZE), np.float32)
    rewards, terminals, truncations = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
    batch.reset(obs)
    digest = hashlib.sha256(obs.tobytes())
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        actions = np.where(rng.random(n) < wait_share, WAIT, rng.integers(0, 15, n))
        if naming == "random":
            named = rng.integers(0, core.FAULT_MASK_SIZE, n)
        elif naming == "active_or_revealed":
            named = np.where(rng.random(n) < 0.5, batch.active, batch.revealed)
        else:
            named = None
        batch.step(actions, obs, rewards, terminals, truncations, auto_reset=auto_reset, named=named)
        for array in (obs, rewards, terminals, truncations, *(getattr(batch.state, k) for k in HASHED_STATE)):
            digest.update(array.tobytes())
    return digest.hexdigest()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="digests recorded on x86-64 (last-bit float results)")
@pytest.mark.parametrize("name", sorted(CASES))
def test_trajectories_are_the_recorded_ones(name):
    assert trajectory_digest(name) == RECORDED[name]


if __name__ == "__main__":
    for case in CASES:
        print(f'    "{case}": "{trajectory_digest(case)}",')
