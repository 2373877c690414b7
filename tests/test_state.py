from dataclasses import fields

import numpy as np
import pytest

from rl.env import ClusterEnv
from rl.state import OBS_FIELDS, OBS_SIZE, ClusterState

GUIDE_ORDER = (
    "num_nodes nodes_ready nodes_not_ready num_pods pods_running pods_pending pods_failed pods_unknown "
    "num_deployments deployments_available deployments_unavailable cpu_usage_percent memory_usage_percent "
    "recent_events_warning recent_events_normal has_pvc_issues has_network_issues has_resource_pressure"
).split()


def test_schema_is_the_guides_18_fields_in_order():
    assert list(OBS_FIELDS) == GUIDE_ORDER
    assert [f.name for f in fields(ClusterState)] == GUIDE_ORDER
    assert OBS_SIZE == 18


def test_observation_normalises_counts_and_fractions():
    state = ClusterState(
        num_nodes=10,
        nodes_ready=8,
        nodes_not_ready=1,
        num_pods=200,
        pods_running=150,
        pods_pending=30,
        pods_failed=15,
        pods_unknown=5,
        num_deployments=20,
        deployments_available=18,
        deployments_unavailable=2,
        cpu_usage_percent=55.0,
        memory_usage_percent=70.0,
        recent_events_warning=10,
        recent_events_normal=500,
        has_pvc_issues=True,
        has_network_issues=False,
        has_resource_pressure=True,
    )
    obs = state.to_observation()
    assert obs.dtype == np.float32 and obs.shape == (18,)
    expected = [0.1, 0.8, 0.1, 0.2, 0.75, 0.15, 0.075, 0.025, 0.2, 0.9, 0.1, 0.55, 0.7, 0.2, 1.0, 1.0, 0.0, 1.0]
    np.testing.assert_allclose(obs, expected, rtol=1e-6)


def test_observation_is_in_unit_box_even_for_huge_or_empty_clusters():
    assert np.all(ClusterState().to_observation() == 0.0)
    huge = ClusterState(
        num_nodes=5000,
        nodes_ready=5000,
        num_pods=10**6,
        pods_running=10**6,
        cpu_usage_percent=180.0,
        recent_events_warning=10**6,
    )
    obs = huge.to_observation()
    assert obs.min() >= 0.0 and obs.max() <= 1.0


def test_from_observation_inverts_to_observation():
    state = ClusterState(
        num_nodes=12,
        nodes_ready=10,
        nodes_not_ready=2,
        num_pods=300,
        pods_running=280,
        pods_pending=10,
        pods_failed=10,
        num_deployments=30,
        deployments_available=29,
        deployments_unavailable=1,
        cpu_usage_percent=40.0,
        memory_usage_percent=35.0,
        recent_events_warning=4,
        recent_events_normal=20,
        has_network_issues=True,
    )
    assert ClusterState.from_observation(state.to_observation()) == state


@pytest.mark.parametrize("seed", range(5))
def test_simulator_observation_uses_the_same_normalisation(seed):
    """The compiled core writes observations itself; they must equal ClusterState.to_observation."""
    env = ClusterEnv()
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(30):
        np.testing.assert_allclose(obs, env.observed_state().to_observation(), atol=1e-6)
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(0, 15)))
        if terminated or truncated:
            break
