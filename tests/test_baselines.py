"""The simulator makes diagnosis a skill: the runbook resolves most episodes, random acting few."""

from rl.evaluate import evaluate_policy
from rl.policies import ExpertPolicy, RandomPolicy


def test_expert_resolves_at_least_85_percent_and_random_at_most_30():
    episodes, seed = 2000, 424242
    expert = evaluate_policy(ExpertPolicy(episodes), episodes, seed)
    random = evaluate_policy(RandomPolicy(episodes, seed=1), episodes, seed)
    assert expert.resolution_rate >= 0.85, expert
    assert random.resolution_rate <= 0.30, random
    assert expert.harmful_actions_per_episode < random.harmful_actions_per_episode / 10
    assert expert.mean_return > random.mean_return


def test_expert_sees_only_observations():
    """Same observations in, same actions out: nothing but the observation reaches the runbook."""
    import numpy as np

    obs = np.random.default_rng(0).random((64, 18), dtype=np.float32)
    a, b = ExpertPolicy(64), ExpertPolicy(64)
    for _ in range(5):
        assert np.array_equal(a.act(obs), b.act(obs))
