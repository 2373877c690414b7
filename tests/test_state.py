import math
from dataclasses import fields, replace

import numpy as np
import pytest

from rl.env import ClusterEnv
from rl.state import DEPLOYMENT_SCALE, EVENT_SCALE, OBS_FIELDS, OBS_SIZE, POD_SCALE, ClusterState, encode_observation

GUIDE_ORDER = (
    "num_nodes nodes_ready nodes_not_ready num_pods pods_running pods_pending pods_failed pods_unknown "
    "num_deployments deployments_available deployments_unavailable cpu_usage_percent memory_usage_percent "
    "recent_events_warning recent_events_normal has_pvc_issues has_network_issues has_resource_pressure"
).split()


def test_schema_is_the_guides_18_fields_in_order():
    assert list(OBS_FIELDS) == GUIDE_ORDER
    assert [f.name for f in fields(ClusterState)] == GUIDE_ORDER
    assert OBS_SIZE == 18


def test_observation_encodes_totals_on_a_log_scale_and_bad_counts_by_count():
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

    def bad(count, total):
        return 0.0 if count == 0 else 0.1 + 0.9 * math.log1p(count) / math.log1p(total)

    expected = [
        math.log1p(10) / math.log1p(1000),
        1 - bad(2, 10),
        bad(1, 10),
        math.log1p(200) / math.log1p(POD_SCALE),
        1 - bad(50, 200),
        bad(30, 200),
        bad(15, 200),
        bad(5, 200),
        math.log1p(20) / math.log1p(DEPLOYMENT_SCALE),
        1 - bad(2, 20),
        bad(2, 20),
        0.55,
        0.7,
        math.log1p(10) / math.log1p(EVENT_SCALE),
        math.log1p(500) / math.log1p(EVENT_SCALE),
        1.0,
        0.0,
        1.0,
    ]
    np.testing.assert_allclose(obs, expected, rtol=1e-5)


SIZES = [(3, 30, 3), (30, 300, 20), (300, 3000, 150), (1000, 20000, 500)]


@pytest.mark.parametrize("nodes, pods, deployments", SIZES, ids=lambda v: str(v))
def test_one_bad_object_moves_its_entry_by_at_least_a_tenth_at_every_size(nodes, pods, deployments):
    healthy = ClusterState(
        num_nodes=nodes,
        nodes_ready=nodes,
        num_pods=pods,
        pods_running=pods,
        num_deployments=deployments,
        deployments_available=deployments,
    )
    base = healthy.to_observation()
    one_bad = {
        "not_ready": (replace(healthy, nodes_ready=nodes - 1, nodes_not_ready=1), (1, 2)),
        "failed": (replace(healthy, pods_running=pods - 1, pods_failed=1), (4, 6)),
        "pending": (replace(healthy, pods_running=pods - 1, pods_pending=1), (4, 5)),
        "unknown": (replace(healthy, pods_running=pods - 1, pods_unknown=1), (4, 7)),
        "unavailable": (
            replace(healthy, deployments_available=deployments - 1, deployments_unavailable=1),
            (9, 10),
        ),
    }
    for name, (state, entries) in one_bad.items():
        moved = np.abs(state.to_observation() - base)
        for k in entries:
            assert moved[k] >= 0.1, (name, OBS_FIELDS[k], float(moved[k]))


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
        nodes_ready=9,
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


@pytest.mark.parametrize("nodes, pods, deployments", SIZES, ids=lambda v: str(v))
def test_from_observation_inverts_at_every_size(nodes, pods, deployments):
    state = ClusterState(
        num_nodes=nodes,
        nodes_ready=nodes - 2,
        nodes_not_ready=1,
        num_pods=pods,
        pods_running=pods - 4,
        pods_pending=1,
        pods_failed=2,
        pods_unknown=1,
        num_deployments=deployments,
        deployments_available=deployments - 1,
        deployments_unavailable=1,
    )
    assert ClusterState.from_observation(state.to_observation()) == state


def test_the_compiled_encoding_is_the_one_rl_state_uses():
    """The simulator runs `encode_observation` compiled on float32 rows; ClusterState on float64."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        nodes, pods, deployments = int(rng.integers(3, 1001)), int(rng.integers(3, 20001)), int(rng.integers(3, 501))
        state = ClusterState(
            num_nodes=nodes,
            nodes_ready=int(rng.integers(0, nodes + 1)),
            num_pods=pods,
            pods_running=int(rng.integers(0, pods + 1)),
            pods_failed=int(rng.integers(0, 50)),
            num_deployments=deployments,
            deployments_available=int(rng.integers(0, deployments + 1)),
            deployments_unavailable=int(rng.integers(0, 10)),
            cpu_usage_percent=float(rng.uniform(0, 100)),
            recent_events_warning=int(rng.integers(0, 2000)),
            has_network_issues=bool(rng.integers(0, 2)),
        )
        raw = np.array([float(getattr(state, name)) for name in OBS_FIELDS], dtype=np.float32)
        compiled = np.zeros(OBS_SIZE, dtype=np.float32)
        encode_observation(raw, compiled)
        np.testing.assert_allclose(compiled, state.to_observation(), atol=1e-6)
