"""The simulator makes diagnosis a skill: the runbook resolves nearly every episode; random acting and
fixed routines that never read the cluster almost none."""

import sys
from pathlib import Path

import numpy as np

from rl.actions import ClusterAction as A
from rl.diagnosis import named_faults
from rl.evaluate import evaluate_policy
from rl.policies import ExpertPolicy, RandomPolicy
from rl.sim.faults import HUMAN_ONLY, NUM_FAULTS, Fault
from rl.sim.scenario import ScenarioConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from open_loop_search import cycle_rates  # noqa: E402


def test_expert_resolves_at_least_97_percent_and_random_at_most_10():
    episodes, seed = 2000, 424242
    expert = evaluate_policy(ExpertPolicy(episodes), episodes, seed)
    random = evaluate_policy(RandomPolicy(episodes, seed=1), episodes, seed)
    assert expert.resolution_rate >= 0.97, expert
    assert random.resolution_rate <= 0.10, random
    assert expert.harmful_actions_per_episode < random.harmful_actions_per_episode / 10
    assert expert.mean_return > random.mean_return
    assert expert.true_health_at_end > random.true_health_at_end
    assert expert.undiagnosed_faults_at_end < 0.05 < random.undiagnosed_faults_at_end
    # Resolved means named: the expert names from its own reads, random on a fair coin per fault.
    assert expert.diagnosis_f1 >= 0.97 and expert.diagnosis_precision >= 0.97, expert
    assert 0.45 <= random.diagnosis_recall <= 0.55 and random.diagnosis_f1 <= 0.7, random


def test_an_expert_that_names_nothing_loses_the_episodes_with_human_only_faults():
    class Mute(ExpertPolicy):
        def act(self, observations):
            actions = super().act(observations)
            self.beliefs = np.zeros_like(self.beliefs)
            return actions

    episodes, seed = 500, 424242
    mute = evaluate_policy(Mute(episodes), episodes, seed)
    assert mute.resolution_rate <= 0.4 and mute.diagnosis_recall == 0.0
    assert mute.per_fault["dns_failure"].resolution_rate == 0.0


def test_random_names_each_fault_on_a_fair_coin_without_changing_its_actions():
    policy = RandomPolicy(4000, seed=9)
    obs = np.zeros((4000, 18), dtype=np.float32)
    actions = policy.act(obs)
    assert np.array_equal(actions, np.random.default_rng(9).integers(0, 15, size=4000, dtype=np.int32))
    beliefs = policy.beliefs
    assert beliefs.shape == (4000, NUM_FAULTS) and beliefs.dtype == np.float32
    assert set(np.unique(beliefs)) == {0.0, 1.0}
    assert np.all(np.abs(beliefs.mean(axis=0) - 0.5) < 0.05)
    assert abs(np.corrcoef(beliefs[:, 0], beliefs[:, 1])[0, 1]) < 0.1  # independent per fault


def test_the_expert_names_nothing_before_it_reads_and_what_its_reads_show_after():
    policy = ExpertPolicy(1)
    obs = np.zeros((1, 18), dtype=np.float32)
    obs[0, [0, 1, 3, 4]] = (0.5, 1.0, 0.5, 1.0)  # a summary of nodes and pods, all healthy
    policy.act(obs)
    assert not policy.beliefs.any()
    obs[0, 15:18] = (1.0, 1.0, 0.0)  # a read found an unbound PVC and failed DNS lookups
    policy.act(obs)
    assert named_faults(policy.beliefs[0]) == [Fault.UNBOUND_PVC, Fault.DNS_FAILURE]


def test_per_fault_results_add_up():
    episodes = 400
    result = evaluate_policy(ExpertPolicy(episodes), episodes, 99)
    assert set(result.per_fault) == {f.name.lower() for f in Fault}
    for name, row in result.per_fault.items():
        assert 0 <= row.active_at_end <= row.episodes <= episodes
        if Fault[name.upper()] in HUMAN_ONLY:  # only a human ends them: active at the end of every episode they are in
            assert row.active_at_end == row.episodes
        if row.active_at_end == 0:
            assert np.isnan(row.recall)
    won = result.resolution_rate * episodes
    assert result.per_fault["unbound_pvc"].resolution_rate * result.per_fault["unbound_pvc"].episodes <= won


def test_blind_routines_lose():
    """The issue's winning 12-action cycle, and the best one `benchmarks/open_loop_search.py` found."""
    issue_cycle = (
        A.DESCRIBE_UNHEALTHY,
        A.CHECK_LOGS,
        A.UNCORDON_NODE,
        A.DRAIN_NODE,
        A.UNCORDON_NODE,
        A.RESTART_FAILED_PODS,
        A.TOP_PODS,
        A.SCALE_DOWN_DEPLOYMENT,
        A.SCALE_UP_DEPLOYMENT,
        A.SCALE_UP_DEPLOYMENT,
        A.GET_EVENTS,
        A.SCALE_UP_DEPLOYMENT,
    )
    found = (
        A.DESCRIBE_UNHEALTHY,
        A.GET_RESOURCE_QUOTAS,
        A.DESCRIBE_UNHEALTHY,
        A.TOP_PODS,
        A.GET_DEPLOYMENTS,
        A.RESTART_FAILED_PODS,
        A.CHECK_LOGS,
        A.WAIT,
        A.GET_RESOURCE_QUOTAS,
        A.TOP_PODS,
        A.GET_DEPLOYMENTS,
        A.GET_DEPLOYMENTS,
        A.SCALE_UP_DEPLOYMENT,
        A.WAIT,
        A.WAIT,
        A.GET_RESOURCE_QUOTAS,
    )
    cycles = [issue_cycle, issue_cycle + (A.WAIT,), found, (A.WAIT,), (A.GET_PODS,)]
    rates = cycle_rates([tuple(int(a) for a in c) for c in cycles], 777_000, 400, ScenarioConfig())
    assert rates[0] == 0.0  # without WAIT nothing ends an episode as resolved
    assert np.all(rates <= 0.20), rates


def test_expert_sees_only_observations():
    """Same observations in, same actions out: nothing but the observation reaches the runbook."""
    obs = np.random.default_rng(0).random((64, 18), dtype=np.float32)
    a, b = ExpertPolicy(64), ExpertPolicy(64)
    for _ in range(5):
        assert np.array_equal(a.act(obs), b.act(obs))
        assert np.array_equal(a.beliefs, b.beliefs)  # and what it names, too
