import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rl
from rl import ClusterAction, ClusterEnv, ClusterState
from rl.sim.scenario import ScenarioConfig

ACTION_ORDER = (
    "GET_NODES GET_PODS GET_EVENTS GET_DEPLOYMENTS CHECK_LOGS DESCRIBE_UNHEALTHY RESTART_FAILED_PODS "
    "SCALE_UP_DEPLOYMENT SCALE_DOWN_DEPLOYMENT DRAIN_NODE UNCORDON_NODE TOP_NODES TOP_PODS "
    "GET_RESOURCE_QUOTAS WAIT"
).split()


def test_actions_are_the_guides_15_in_order():
    assert [a.name for a in ClusterAction] == ACTION_ORDER
    assert [int(a) for a in ClusterAction] == list(range(15))


def test_check_env_passes_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gymnasium.make("ClusterCode/Cluster-v0", render_mode="ansi").unwrapped)


def test_registered_id_makes_a_cluster_env():
    env = gymnasium.make(rl.ENV_ID, max_steps=7)
    obs, info = env.reset(seed=1)
    assert env.unwrapped.max_steps == 7
    assert obs.shape == (18,) and obs.dtype == np.float32


def test_spaces_and_info_keys():
    env = ClusterEnv()
    assert env.action_space == gymnasium.spaces.Discrete(15)
    assert env.observation_space.shape == (18,)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert {"issues", "action_result", "total_reward", "step"} <= set(info)
    obs, reward, terminated, truncated, info = env.step(ClusterAction.GET_PODS)
    assert set(info["action_result"]) == {"success", "message", "data"}
    assert info["step"] == 1 and info["total_reward"] == pytest.approx(reward)
    assert all(isinstance(issue, str) for issue in info["issues"])


def run(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    trajectory = [obs]
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(int(a))
        trajectory += [obs, reward, terminated, truncated]
        if terminated or truncated:
            break
    return trajectory


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_same_seed_same_trajectory_and_different_seeds_differ():
    actions = np.random.default_rng(0).integers(0, 15, 100)
    assert same(run(ClusterEnv(), 42, actions), run(ClusterEnv(), 42, actions))
    assert not same(run(ClusterEnv(), 42, actions), run(ClusterEnv(), 43, actions))


def test_reset_without_seed_continues_the_stream():
    env = ClusterEnv()
    env.reset(seed=5)
    second, _ = env.reset()
    again = ClusterEnv()
    again.reset(seed=5)
    assert np.array_equal(again.reset()[0], second)


def test_episode_truncates_at_max_steps():
    env = ClusterEnv(max_steps=5)
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, _ = env.step(ClusterAction.WAIT)
        if terminated:
            pytest.skip("this seed resolved by itself")
    assert truncated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(ClusterAction.WAIT)


@pytest.mark.parametrize("bad", [15, -1, 3.5, "GET_PODS", None, np.int64(99)])
def test_out_of_range_action_raises_value_error_saying_which(bad):
    env = ClusterEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an integer in \\[0, 14\\]"):
        env.step(bad)


def test_numpy_integer_actions_are_accepted():
    env = ClusterEnv()
    env.reset(seed=0)
    env.step(np.int64(3))
    env.step(np.array(4))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"max_steps": 0}, "max_steps"),
        ({"render_mode": "rgb_array"}, "render_mode"),
        ({"scenario": {"max_nodes": 1001}}, "max_nodes"),
        ({"scenario": {"warp": 1}}, "warp"),
        ({"scenario": 5}, "scenario"),
    ],
)
def test_bad_constructor_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ClusterEnv(**kwargs)


def test_render_modes_show_the_cluster_as_text(capsys):
    env = ClusterEnv(render_mode="ansi")
    env.reset(seed=3)
    text = env.render()
    assert "nodes" in text and "pods" in text and "issues:" in text
    human = ClusterEnv(render_mode="human")
    human.reset(seed=3)
    assert "nodes" in capsys.readouterr().out


class FlatReward(ClusterEnv):
    """The documented extension point: a subclass reshapes the reward."""

    def _calculate_reward(self, prev_state, curr_state, action, result):
        assert isinstance(prev_state, ClusterState) and isinstance(curr_state, ClusterState)
        assert isinstance(action, ClusterAction) and "success" in result
        return 1.0 if action == ClusterAction.WAIT else -(curr_state.pods_failed - prev_state.pods_failed)


def test_overriding_calculate_reward_changes_the_reward():
    base, custom = ClusterEnv(), FlatReward()
    base.reset(seed=11)
    custom.reset(seed=11)
    _, base_reward, *_ = base.step(ClusterAction.GET_PODS)
    _, custom_reward, _, _, info = custom.step(ClusterAction.GET_PODS)
    assert base_reward == pytest.approx(-0.03, abs=0.5) and custom_reward == int(custom_reward) <= 0
    assert info["total_reward"] == custom_reward
    _, base_reward, *_ = base.step(ClusterAction.WAIT)
    _, custom_reward, *_ = custom.step(ClusterAction.WAIT)
    assert custom_reward == 1.0 and base_reward != 1.0


def test_default_reward_is_the_sum_of_its_parts():
    env = ClusterEnv()
    env.reset(seed=2)
    for a in (ClusterAction.GET_DEPLOYMENTS, ClusterAction.TOP_PODS, ClusterAction.DRAIN_NODE):
        _, reward, terminated, truncated, info = env.step(a)
        parts = info["action_result"]["data"]["reward_parts"]
        assert set(parts) == {"step", "resolved", "degradation", "induced", "terminal"}
        assert reward == pytest.approx(sum(parts.values()), abs=1e-6)
        if terminated or truncated:
            break


def test_scenario_max_steps_follows_the_env_argument():
    env = ClusterEnv(max_steps=9, scenario=ScenarioConfig(max_steps=50))
    assert env.scenario.max_steps == 9


# The cluster-code guide's "Advanced: Custom Environments" example, as written there (only its import
# names this package: the guide imports from its `cluster_env` module).
from rl import ClusterAction, ClusterEnv  # noqa: E402, F811


class CustomClusterEnv(ClusterEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Add custom initialization

    def _calculate_reward(self, prev_state, curr_state, action, result):
        # Custom reward function
        return super()._calculate_reward(prev_state, curr_state, action, result)


def test_the_guides_custom_environment_example_runs():
    custom, base = CustomClusterEnv(max_steps=30), ClusterEnv(max_steps=30)
    obs, _ = custom.reset(seed=21)
    assert np.array_equal(obs, base.reset(seed=21)[0])
    for action in (ClusterAction.GET_NODES, ClusterAction.TOP_PODS, ClusterAction.DRAIN_NODE, ClusterAction.WAIT):
        step = custom.step(action)
        expected = base.step(action)
        assert step[1] == expected[1] and step[2:4] == expected[2:4]
        if step[2] or step[3]:
            break
