"""One observation encoding: rl.state, the simulator's compiled core and a real cluster (through
rl.kube and the fake API server) fill the 18 entries the same way; WAIT ends an episode there too."""

import numpy as np
import pytest
from kube_server import FakeKubeServer, load_into, write_kubeconfig

from rl import ClusterAction as A
from rl import ClusterEnv
from rl.kube import KubeBackend
from rl.state import OBS_FIELDS, OBS_SIZE, ClusterState, encode_observation


@pytest.fixture
def real_env(tmp_path):
    server = FakeKubeServer().start()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)

    def make(failure: str) -> ClusterEnv:
        load_into(server, "healthy")
        if failure != "healthy":
            load_into(server, f"failures/{failure}.yaml")
        backend = KubeBackend(kubeconfig=str(kubeconfig), backoff_seconds=0.01, wait_seconds=0.0)
        return ClusterEnv(simulation_mode=False, backend=backend)

    yield make
    server.stop()


def _compiled(state: ClusterState) -> np.ndarray:
    raw = np.array([float(getattr(state, name)) for name in OBS_FIELDS], dtype=np.float32)
    out = np.zeros(OBS_SIZE, dtype=np.float32)
    encode_observation(raw, out)  # the function the simulator's kernels call
    return out


@pytest.mark.parametrize("failure", ["healthy", "crashloop", "unschedulable"])
def test_real_cluster_simulator_and_state_encode_alike(real_env, failure):
    env = real_env(failure)
    obs, _ = env.reset()
    state = env.observed_state()
    assert state.num_nodes > 0 and state.num_pods > 0
    np.testing.assert_array_equal(obs, state.to_observation())
    np.testing.assert_allclose(obs, _compiled(state), atol=1e-6)
    env.close()


def test_simulator_observations_match_their_state_at_every_size():
    for nodes in (3, 30, 300, 1000):
        env = ClusterEnv(scenario={"min_nodes": nodes, "max_nodes": nodes, "max_deployments": 500, "max_replicas": 40})
        obs, _ = env.reset(seed=nodes)
        for action in (A.GET_NODES, A.GET_PODS, A.GET_DEPLOYMENTS, A.TOP_PODS, A.GET_EVENTS):
            obs, *_ = env.step(action)
            state = env.observed_state()
            np.testing.assert_allclose(obs, state.to_observation(), atol=1e-6)
            np.testing.assert_allclose(obs, _compiled(state), atol=1e-6)
        assert env.observed_state().num_nodes == nodes


def test_wait_ends_an_episode_on_a_real_cluster(real_env):
    env = real_env("healthy")
    env.reset()
    _, _, terminated, truncated, info = env.step(A.GET_PODS)
    assert not (terminated or truncated)
    _, _, terminated, truncated, info = env.step(A.WAIT)
    assert terminated and not truncated and info["outcome"] == "resolved"
    env.close()


def test_wait_on_a_real_cluster_with_findings_ends_it_unresolved(real_env):
    env = real_env("crashloop")
    env.reset()
    _, _, terminated, _, info = env.step(A.WAIT)
    assert terminated and info["outcome"] == "stopped" and info["issues"]
    env.close()
