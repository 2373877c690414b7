"""The simulator makes diagnosis a skill: the runbook resolves nearly every episode in a few reads and
names exactly what is wrong; random acting, and fixed routines that never read the cluster, resolve
almost none of the clusters with something wrong, whatever they name."""

import sys
from pathlib import Path

import numpy as np

from rl.actions import ClusterAction as A
from rl.agent_input import FINDINGS_AT, INPUT_KEY_INDEX, INPUT_SIZE, WRITES_AT
from rl.diagnosis import named_faults
from rl.evaluate import evaluate_policy
from rl.faults import HUMAN_ONLY, NUM_FAULTS, Fault
from rl.findings import encode_count
from rl.policies import ExpertPolicy, RandomPolicy
from rl.sim.scenario import ScenarioConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from open_loop_search import EVERYTHING, routine_rates  # noqa: E402


def test_the_expert_resolves_99_percent_in_few_steps_and_names_exactly():
    episodes, seed = 2000, 424242
    expert = evaluate_policy(ExpertPolicy(episodes), episodes, seed)
    random = evaluate_policy(RandomPolicy(episodes, seed=1), episodes, seed)
    assert expert.resolution_rate >= 0.985, expert
    assert expert.mean_steps_to_resolve <= 13, expert
    assert expert.diagnosis_precision >= 0.99 and expert.diagnosis_recall >= 0.985, expert
    assert expert.false_alarms_per_episode <= 0.005, expert
    assert expert.harmful_actions_per_episode == 0.0
    assert random.resolution_rate <= 0.25, random  # (it WAITs naming nothing on some healthy clusters)
    assert expert.mean_return > random.mean_return
    # Random names each fault type on a fair coin: half the active ones, and many that are not there.
    assert 0.45 <= random.diagnosis_recall <= 0.55 and random.diagnosis_precision <= 0.3, random


def test_the_expert_holds_at_three_nodes_and_at_a_thousand():
    for nodes in (3, 1000):
        scenario = ScenarioConfig(min_nodes=nodes, max_nodes=nodes)
        result = evaluate_policy(ExpertPolicy(1000), 1000, 515151, scenario)
        assert result.resolution_rate >= 0.98, (nodes, result)


def test_an_expert_that_names_nothing_loses_the_episodes_with_human_only_faults():
    class Mute(ExpertPolicy):
        def act(self, observations):
            actions = super().act(observations)
            self.beliefs = np.zeros_like(self.beliefs)
            return actions

    episodes, seed = 500, 424242
    mute = evaluate_policy(Mute(episodes), episodes, seed)
    assert mute.resolution_rate <= 0.6 and mute.diagnosis_recall == 0.0
    assert mute.per_fault["dns_failure"].resolution_rate == 0.0


def test_an_expert_that_names_everything_loses_almost_every_episode():
    class Alarmist(ExpertPolicy):
        def act(self, observations):
            actions = super().act(observations)
            self.beliefs = np.ones_like(self.beliefs)
            return actions

    result = evaluate_policy(Alarmist(500), 500, 424242)
    assert result.resolution_rate <= 0.02, result
    assert result.false_alarms_per_episode > 10


def test_random_names_each_fault_on_a_fair_coin_without_changing_its_actions():
    policy = RandomPolicy(4000, seed=9)
    obs = np.zeros((4000, INPUT_SIZE), dtype=np.float32)
    actions = policy.act(obs)
    assert np.array_equal(actions, np.random.default_rng(9).integers(0, 15, size=4000, dtype=np.int32))
    beliefs = policy.beliefs
    assert beliefs.shape == (4000, NUM_FAULTS) and beliefs.dtype == np.float32
    assert set(np.unique(beliefs)) == {0.0, 1.0}
    assert np.all(np.abs(beliefs.mean(axis=0) - 0.5) < 0.05)
    assert abs(np.corrcoef(beliefs[:, 0], beliefs[:, 1])[0, 1]) < 0.1  # independent per fault


def _row(findings: dict, writes: bool = True) -> np.ndarray:
    row = np.zeros(INPUT_SIZE, dtype=np.float32)
    row[[0, 1, 3, 4, 8, 9]] = (0.5, 1.0, 0.5, 1.0, 0.5, 1.0)  # nodes, pods, deployments: all healthy
    row[WRITES_AT] = 1.0 if writes else 0.0
    for key, count in findings.items():
        row[FINDINGS_AT + INPUT_KEY_INDEX[key]] = encode_count(count)
    return row


def test_the_expert_names_what_the_findings_show_and_nothing_for_benign_ones():
    policy = ExpertPolicy(1)
    policy.act(_row({})[None])
    assert not policy.beliefs.any()
    benign = {("PodDisruptionBudget", "DisruptionsNotAllowed"): 2, ("Event", "WarningEvent"): 3}
    policy.act(_row(benign)[None])
    assert not policy.beliefs.any()
    shown = {("ClusterDNS", "DNSDown"): 1, ("PersistentVolumeClaim", "Pending"): 1, **benign}
    policy.act(_row(shown)[None])
    assert named_faults(policy.beliefs[0]) == [Fault.UNBOUND_PVC, Fault.DNS_FAILURE]


def test_with_writes_allowed_the_expert_names_only_what_a_human_must_fix():
    shown = {("Pod", "OOMKilled"): 2, ("Service", "NoMatchingPods"): 1}
    writes, read_only = ExpertPolicy(1), ExpertPolicy(1)
    writes.act(_row(shown)[None])
    read_only.act(_row(shown, writes=False)[None])
    assert named_faults(writes.beliefs[0]) == [Fault.SERVICE_NO_ENDPOINTS]
    assert set(named_faults(read_only.beliefs[0])) == {Fault.OOM_KILLED, Fault.SERVICE_NO_ENDPOINTS}


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


def test_blind_routines_lose_on_clusters_with_something_wrong():
    """Fixed routines, naming nothing, everything or one fault type: at most 5% of the clusters that
    start with a fault. WAIT at once naming nothing is right on exactly the healthy ones."""
    survey = (A.GET_NODES, A.DESCRIBE_UNHEALTHY, A.GET_DEPLOYMENTS, A.CHECK_LOGS)
    remedies = (A.DESCRIBE_UNHEALTHY, A.RESTART_FAILED_PODS, A.GET_NODES, A.DRAIN_NODE, A.UNCORDON_NODE)
    routines = [
        ((A.WAIT,), 0),
        ((A.WAIT,), EVERYTHING),
        (survey + (A.WAIT,), 0),
        (survey + (A.WAIT,), EVERYTHING),
        (remedies + (A.SCALE_UP_DEPLOYMENT, A.WAIT), 1 << Fault.QUOTA_EXHAUSTED),
        (remedies, 0),  # never reports: never resolved
    ]
    rates = routine_rates([(tuple(int(a) for a in c), m) for c, m in routines], 777_000, 1000, ScenarioConfig())
    everything, faulty, healthy = rates[:, 0], rates[:, 1], rates[:, 2]
    assert np.all(faulty <= 0.05), rates
    assert healthy[0] == 1.0 and 0.15 <= everything[0] <= 0.3  # the healthy share of the default scenario
    assert everything[1] == 0.0 and everything[5] == 0.0


def test_expert_sees_only_its_input():
    """Same rows in, same actions out: nothing but its input reaches the runbook."""
    obs = np.random.default_rng(0).random((64, INPUT_SIZE), dtype=np.float32)
    a, b = ExpertPolicy(64), ExpertPolicy(64)
    for _ in range(5):
        assert np.array_equal(a.act(obs), b.act(obs))
        assert np.array_equal(a.beliefs, b.beliefs)  # and what it names, too


def test_the_lookup_reads_everything_once_and_names_every_signature_it_was_shown():
    from rl.diagnosis import FINDING_FAULTS
    from rl.policies import LookupPolicy

    row = np.zeros((1, INPUT_SIZE), dtype=np.float32)
    row[0, FINDINGS_AT + INPUT_KEY_INDEX[("Pod", "OOMKilled")]] = encode_count(3)
    row[0, FINDINGS_AT + INPUT_KEY_INDEX[("Node", "NotReady")]] = encode_count(1)
    row[0, FINDINGS_AT + INPUT_KEY_INDEX[("Deployment", "ReplicasUnavailable")]] = encode_count(2)  # a shared symptom
    lookup = LookupPolicy(1)
    assert lookup.act(row)[0] == A.GET_NODES  # the first read it has not taken
    assert named_faults(lookup.beliefs[0]) == [Fault.OOM_KILLED, Fault.NODE_NOT_READY]  # most objects first
    assert FINDING_FAULTS[("Pod", "OOMKilled")] == Fault.OOM_KILLED
    # On read-only clusters it takes the 9 reads, names by lookup and stops: it never acts.
    result = evaluate_policy(LookupPolicy(300), 300, 777, ScenarioConfig(read_only_share=1.0))
    assert result.harmful_actions_per_episode == 0.0 and result.mean_steps_to_resolve == 10.0
    assert 0.5 <= result.diagnosis_f1 < 0.99, result  # shared or benign signatures fool it
