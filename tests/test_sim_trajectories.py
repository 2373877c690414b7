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

from rl.sim.batch import ClusterBatch, step_buffers
from rl.sim.layout import ALL_FAULTS_MASK
from rl.sim.scenario import ScenarioConfig

NUM_CLUSTERS = 256
STEPS = 300
WAIT = 14

# name: (scenario settings, seed, how the agent names faults, auto_reset, share of WAITs)
CASES = {
    "default": ({}, 11, "revealed", True, 0.02),
    "busy": (
        {"max_nodes": 40, "new_fault_rate": 0.2, "cascade_chance": 0.6, "min_faults": 3, "max_faults": 4},
        12,
        "random",
        True,
        0.3,
    ),
    "large": (
        {"min_nodes": 300, "max_nodes": 1000, "read_only_share": 0.5, "metrics_share": 0.5, "background": 2.0},
        13,
        "revealed",
        True,
        0.1,
    ),
    "short": ({"max_steps": 15, "min_faults": 0, "max_faults": 2}, 14, "active_or_revealed", False, 0.2),
}

RECORDED = {
    "default": "ab4ecb6c8361c1f9a6238cbd265ec790c669624cde59479eae8d9e9cba0667a8",
    "busy": "49f37a332532058bc61168771ae5981174ea53fbc75fca0b7f931d04e9c5d1fd",
    "large": "3225d78836cc4a8ec4fa5ade6450b30a7318aa810a8afc2bb7bc9074b620bed9",
    "short": "3b947755e2a6bb16983b555fb7a9ead98872b861e66c72997c0612dd0e56cf6e",
}

# Every array of the state that a step writes, besides the caller's buffers.
HASHED_STATE = (
    "shape",
    "conditions",
    "active",
    "revealed",
    "caused",
    "size",
    "timer",
    "events",
    "background",
    "retrying",
    "truth",
    "usage",
    "found",
    "shown",
    "seen",
    "seen_found",
    "fresh",
    "taken",
    "last_action",
    "last_result",
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
    "final_conditions",
)


def trajectory_digest(name: str) -> str:
    settings, seed, naming, auto_reset, wait_share = CASES[name]
    n = NUM_CLUSTERS
    batch = ClusterBatch(n, ScenarioConfig(**settings))
    batch.seed(seed)
    obs, rewards, terminals, truncations = step_buffers(n)
    batch.reset(obs)
    digest = hashlib.sha256(obs.tobytes())
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        actions = np.where(rng.random(n) < wait_share, WAIT, rng.integers(0, 15, n))
        if naming == "random":
            named = rng.integers(0, ALL_FAULTS_MASK + 1, n)
        elif naming == "active_or_revealed":
            named = np.where(rng.random(n) < 0.5, batch.state.active, batch.state.revealed)
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
