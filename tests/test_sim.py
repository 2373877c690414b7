"""The simulator: determinism, vectorized/single equivalence, every fault's fix and wrong moves,
reward components and scenario validation."""

import os

import numpy as np
import pufferlib.vector
import pytest

from rl import ClusterAction as A
from rl import ClusterEnv
from rl.agent_input import INPUT_SIZE, LAST_ACTION_AT, RESULT_AT, RESULT_DRY_RUN, WRITES_AT
from rl.faults import HUMAN_ONLY, INJECTABLE, NUM_FAULTS, Fault
from rl.puffer_env import REWARD_SCALE, ClusterPufferEnv
from rl.sim import layout
from rl.sim.batch import ClusterBatch, step_buffers
from rl.sim.scenario import ScenarioConfig

# Reads that change nothing and show nothing a test looks at: they let time pass.
PASS_TIME = A.GET_EVENTS


def single_fault(fault: Fault, **overrides) -> ClusterEnv:
    """A writable cluster with metrics-server, no benign findings, and `fault` alone, for good."""
    settings = {
        "min_faults": 1,
        "max_faults": 1,
        "new_fault_rate": 0.0,
        "cascade_chance": 0.0,
        "read_only_share": 0.0,
        "metrics_share": 1.0,
        "background": 0.0,
        "fault_weights": {fault.name.lower(): 1.0},
        **overrides,
    }
    scenario = ScenarioConfig(**settings)
    return ClusterEnv(scenario=scenario)


def parts(info) -> dict:
    return info["action_result"]["data"]["reward_parts"]


# -- determinism and equivalence --------------------------------------------------------------


def test_batch_is_deterministic_for_a_seed():
    def rollout(seed):
        batch = ClusterBatch(64)
        batch.seed(seed)
        obs, r, t, tr = step_buffers(64)
        batch.reset(obs)
        rng = np.random.default_rng(1)
        history = []
        for _ in range(200):
            batch.step(rng.integers(0, 15, 64), obs, r, t, tr, auto_reset=True)
            history.append((obs.copy(), r.copy(), t.copy(), tr.copy()))
        return history

    a, b, c = rollout(7), rollout(7), rollout(8)
    assert all(np.array_equal(x, y) for ha, hb in zip(a, b, strict=True) for x, y in zip(ha, hb, strict=True))
    assert not all(np.array_equal(ha[0], hc[0]) for ha, hc in zip(a, c, strict=True))


def test_vectorized_env_and_cluster_env_give_identical_trajectories():
    """Cluster i of a batch seeded s is ClusterEnv seeded s + i, across episode boundaries too
    (rewards scaled for PPO by REWARD_SCALE): the same full input rows."""
    n, seed, steps = 6, 100, 250
    vec = pufferlib.vector.make(
        ClusterPufferEnv, backend=pufferlib.vector.Serial, num_envs=1, seed=seed, env_kwargs={"num_envs": n}
    )
    vec.async_reset(seed)
    vec.recv()
    obs, rewards, terminals, truncations = vec.observations, vec.rewards, vec.terminals, vec.truncations
    singles = [ClusterEnv(observation="full") for _ in range(n)]
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    for i in range(n):
        np.testing.assert_array_equal(obs[i, :INPUT_SIZE], single_obs[i])
    actions = np.random.default_rng(3).integers(0, 15, size=(steps, n))
    batch = vec.envs[0].batch
    faults_seen = 0
    episodes_ended = 0
    for t in range(steps):
        vec.send(actions[t])
        vec.recv()
        for i, env in enumerate(singles):
            o, r, term, trunc, _ = env.step(int(actions[t, i]))
            assert rewards[i] == pytest.approx(r * REWARD_SCALE, abs=1e-6), (t, i)  # as PPO sees them
            assert terminals[i] == term and truncations[i] == trunc, (t, i)
            if term or trunc:
                episodes_ended += 1
                o, _ = env.reset()  # the batch reset this cluster itself, from the same stream
            np.testing.assert_array_equal(obs[i, :INPUT_SIZE], o)
            # After the input, each row carries the cluster's true active faults (the labels of the
            # diagnosis head).
            truth = [(int(batch.state.active[i]) >> f) & 1 for f in range(NUM_FAULTS)]
            np.testing.assert_array_equal(obs[i, INPUT_SIZE:], truth)
            faults_seen += sum(truth)
    assert episodes_ended >= n  # the comparison crossed episode boundaries
    assert faults_seen > 0


def test_puffer_env_writes_into_the_buffers_it_was_given():
    n = 32
    buf = {
        "observations": np.zeros((n, INPUT_SIZE + NUM_FAULTS), np.float32),
        "rewards": np.zeros(n, np.float32),
        "terminals": np.zeros(n, bool),
        "truncations": np.zeros(n, bool),
        "teacher_actions": np.zeros(n, np.int32),
        "masks": np.ones(n, bool),
        "actions": np.zeros(n, np.int32),
    }
    env = ClusterPufferEnv(num_envs=n, buf=buf, report_interval=1)
    env.reset(seed=0)
    assert env.observations is buf["observations"] and buf["observations"].any()
    infos = []
    for _ in range(200):
        _, _, _, _, step_infos = env.step(np.full(n, A.WAIT, np.int32))
        infos += step_infos
        assert env.rewards is buf["rewards"]
    assert buf["rewards"].any() and (buf["truncations"].any() or buf["terminals"].any() or infos)
    assert infos and {"episode_return", "resolution_rate", "episode_length", "episodes"} <= set(infos[0])


# -- every fault: symptoms, diagnosis, fix ----------------------------------------------------

# For each fault the agent can fix: the reads and remedies, in order, that fix it. Every remedy
# follows the read that singles out its target (identification goes stale after any remedy).
FIXES = {
    Fault.CRASHED_PODS: [A.CHECK_LOGS, A.RESTART_FAILED_PODS],
    Fault.OOM_KILLED: [A.TOP_PODS, A.SCALE_UP_DEPLOYMENT],
    Fault.NODE_NOT_READY: [A.GET_NODES, A.DRAIN_NODE],
    Fault.NODE_CORDONED: [A.GET_NODES, A.UNCORDON_NODE],
    # Drained, the pressured node recovers but stays cordoned until a read finds it and it is uncordoned.
    Fault.NODE_PRESSURE: [A.TOP_NODES, A.DRAIN_NODE, A.GET_NODES, A.UNCORDON_NODE],
    Fault.RUNAWAY_DEPLOYMENT: [A.TOP_PODS, A.SCALE_DOWN_DEPLOYMENT],
    Fault.UNDERSCALED: [A.CHECK_LOGS, A.SCALE_UP_DEPLOYMENT],
}
# For each fault only a human can fix: a read that identifies it.
DIAGNOSES = {
    Fault.BAD_ROLLOUT: A.CHECK_LOGS,
    Fault.QUOTA_EXHAUSTED: A.GET_RESOURCE_QUOTAS,
    Fault.UNBOUND_PVC: A.DESCRIBE_UNHEALTHY,
    Fault.DNS_FAILURE: A.CHECK_LOGS,
    Fault.IMAGE_PULL_FAILURE: A.GET_PODS,
    Fault.CONFIG_ERROR: A.GET_PODS,
    Fault.DEPENDENCY_DOWN: A.CHECK_LOGS,
    Fault.SERVICE_NO_ENDPOINTS: A.GET_DEPLOYMENTS,
    Fault.INSUFFICIENT_CAPACITY: A.GET_DEPLOYMENTS,
    Fault.JOB_FAILED: A.GET_DEPLOYMENTS,
}


def test_every_injectable_fault_is_covered_here():
    assert set(FIXES) | set(DIAGNOSES) == set(INJECTABLE)
    assert set(DIAGNOSES) == set(HUMAN_ONLY)


@pytest.mark.parametrize("fault", list(FIXES), ids=lambda f: f.name)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixable_fault_is_fixed_by_its_remedy_after_diagnosis(fault, seed):
    env = single_fault(fault)
    env.reset(seed=seed)
    assert env.active_faults() == [fault]
    resolved_reward = 0.0
    for action in FIXES[fault]:
        _, _, terminated, _, info = env.step(action)
        assert not terminated and not info["action_result"]["data"].get("harmful"), action
        resolved_reward += parts(info)["resolved"]
    assert env.active_faults() == [] and info["active_faults"] == []
    assert resolved_reward == pytest.approx(layout.REWARD_RESOLVED)
    _, _, terminated, _, info = env.step(A.WAIT, named=[])  # the report: nothing left wrong, and so it is
    assert terminated and info["outcome"] == "resolved"
    assert parts(info)["terminal"] == pytest.approx(layout.REWARD_DONE)


@pytest.mark.parametrize("fault", list(FIXES), ids=lambda f: f.name)
def test_the_episode_goes_on_until_the_agent_reports(fault):
    env = single_fault(fault)
    env.reset(seed=0)
    for action in FIXES[fault]:
        _, _, terminated, truncated, _ = env.step(action)
    assert env.active_faults() == [] and not (terminated or truncated)
    _, _, terminated, _, _ = env.step(A.GET_PODS)
    assert not terminated


# `get deployments` singles out the deployment short of room; the pods' FailedScheduling, which a
# report cites, is in `describe`.
EVIDENCE_READS = {Fault.INSUFFICIENT_CAPACITY: A.DESCRIBE_UNHEALTHY}


@pytest.mark.parametrize("fault", list(DIAGNOSES), ids=lambda f: f.name)
def test_human_only_fault_is_resolved_when_the_report_names_it(fault):
    env = single_fault(fault)
    env.reset(seed=4)
    _, reward, terminated, _, info = env.step(DIAGNOSES[fault])
    assert not terminated and info["diagnosed_faults"] == [fault.name.lower()] and info["needs_human"]
    if fault in EVIDENCE_READS:  # the read that identified it shows no finding a report can cite
        env.step(EVIDENCE_READS[fault])
    _, _, terminated, _, info = env.step(A.WAIT, named=[fault])
    assert terminated and info["outcome"] == "resolved"
    assert env.active_faults() == [fault]  # still there: a human must fix it
    env.reset(seed=4)
    _, _, terminated, _, info = env.step(A.WAIT, named=[])  # a report that misses it
    assert terminated and info["outcome"] == "stopped"
    assert parts(info)["terminal"] == pytest.approx(layout.REWARD_WRONG_VERDICT - layout.REWARD_PER_ERROR)


def test_flags_follow_the_findings_the_reads_showed():
    for fault, flag, wrong, right in [
        (Fault.UNBOUND_PVC, 15, A.CHECK_LOGS, A.DESCRIBE_UNHEALTHY),
        (Fault.DNS_FAILURE, 16, A.GET_RESOURCE_QUOTAS, A.CHECK_LOGS),
        (Fault.QUOTA_EXHAUSTED, 17, A.TOP_NODES, A.GET_RESOURCE_QUOTAS),
        (Fault.NODE_PRESSURE, 17, A.CHECK_LOGS, A.GET_NODES),
    ]:
        env = single_fault(fault)
        obs, _ = env.reset(seed=9)
        assert obs[flag] == 0
        obs, *_ = env.step(wrong)
        assert obs[flag] == 0, fault
        obs, *_ = env.step(right)
        assert obs[flag] == 1, fault


def test_a_stuck_rollout_reports_its_progress_deadline_only_after_it():
    env = single_fault(Fault.IMAGE_PULL_FAILURE, max_steps=40)
    env.reset(seed=0)
    key = ("Deployment", "ProgressDeadlineExceeded")
    env.step(A.GET_DEPLOYMENTS)
    assert key not in env.unwrapped._backend.shown_findings()
    for _ in range(layout.PROGRESS_DEADLINE):
        env.step(PASS_TIME)
    env.step(A.GET_DEPLOYMENTS)
    assert env.unwrapped._backend.shown_findings()[key] == 1


# -- wrong moves have realistic costs ---------------------------------------------------------


def test_restarting_config_broken_pods_changes_nothing():
    env = single_fault(Fault.BAD_ROLLOUT)
    env.reset(seed=0)
    env.step(A.CHECK_LOGS)
    before = env.true_state()
    _, _, terminated, _, info = env.step(A.RESTART_FAILED_PODS)
    assert env.active_faults() == [Fault.BAD_ROLLOUT] and not terminated
    assert env.true_state().pods_failed == before.pods_failed
    assert parts(info)["resolved"] == 0 and not info["action_result"]["success"]
    assert not info["action_result"]["data"]["harmful"]


def test_restarting_oomkilled_pods_only_buys_a_few_steps():
    env = single_fault(Fault.OOM_KILLED)
    env.reset(seed=0)
    assert env.true_state().pods_failed > 0
    env.step(A.DESCRIBE_UNHEALTHY)
    env.step(A.RESTART_FAILED_PODS)
    assert env.true_state().pods_failed == 0 and env.active_faults() == [Fault.OOM_KILLED]
    for _ in range(layout.OOM_RECUR):
        env.step(PASS_TIME)
    assert env.true_state().pods_failed > 0


def test_restarting_evicted_pods_on_a_pressured_node_does_not_stop_evictions():
    env = single_fault(Fault.NODE_PRESSURE)
    env.reset(seed=0)
    env.step(A.TOP_NODES)
    env.step(A.RESTART_FAILED_PODS)
    for _ in range(2 * layout.PRESSURE_RECUR):
        env.step(PASS_TIME)
    assert env.active_faults() == [Fault.NODE_PRESSURE] and env.true_state().pods_failed > 0


@pytest.mark.parametrize(
    "action, induced",
    [
        (A.DRAIN_NODE, Fault.NODE_CORDONED),
        (A.SCALE_DOWN_DEPLOYMENT, Fault.UNDERSCALED),
        (A.SCALE_UP_DEPLOYMENT, Fault.OVERPROVISIONED),
    ],
)
def test_remedies_on_a_healthy_cluster_do_damage(action, induced):
    env = single_fault(Fault.UNBOUND_PVC)  # a human-only fault: nothing for a remedy to fix
    env.reset(seed=1)
    health = env.true_state()
    _, reward, _, _, info = env.step(action)
    assert induced in env.active_faults()
    assert parts(info)["induced"] == pytest.approx(layout.REWARD_INDUCED) and reward < 0
    assert info["action_result"]["data"]["harmful"]
    after = env.true_state()
    assert (
        after.nodes_ready < health.nodes_ready
        or after.deployments_unavailable > health.deployments_unavailable
        or induced == Fault.OVERPROVISIONED
    )


def test_breaking_and_mending_never_pays():
    env = single_fault(Fault.UNBOUND_PVC)
    env.reset(seed=1)
    total = 0.0
    for action in (A.DRAIN_NODE, A.UNCORDON_NODE, A.SCALE_DOWN_DEPLOYMENT, A.SCALE_UP_DEPLOYMENT):
        _, reward, *_ = env.step(action)
        total += reward
    assert total < 0


@pytest.mark.parametrize(
    "fault, blind",
    [
        (Fault.OOM_KILLED, A.SCALE_UP_DEPLOYMENT),
        (Fault.RUNAWAY_DEPLOYMENT, A.SCALE_DOWN_DEPLOYMENT),
        (Fault.NODE_PRESSURE, A.DRAIN_NODE),
    ],
)
def test_a_remedy_before_diagnosis_hits_a_healthy_target(fault, blind):
    env = single_fault(fault)
    env.reset(seed=2)
    _, _, _, _, info = env.step(blind)
    assert fault in env.active_faults() and info["action_result"]["data"]["harmful"]


def test_scaling_up_into_an_exhausted_quota_is_harmful_and_fixes_nothing():
    env = single_fault(Fault.QUOTA_EXHAUSTED)
    env.reset(seed=0)
    _, _, _, _, info = env.step(A.SCALE_UP_DEPLOYMENT)
    assert env.active_faults() == [Fault.QUOTA_EXHAUSTED] and info["action_result"]["data"]["harmful"]


def test_draining_every_node_is_a_catastrophe():
    env = single_fault(Fault.UNBOUND_PVC, min_nodes=3, max_nodes=3)
    env.reset(seed=0)
    for _ in range(3):
        _, reward, terminated, _, info = env.step(A.DRAIN_NODE)
    assert terminated and env.true_state().nodes_ready == 0
    assert parts(info)["terminal"] == pytest.approx(layout.REWARD_CATASTROPHE)


def test_a_lost_node_cascades_its_pods_onto_the_others():
    env = single_fault(Fault.NODE_NOT_READY, max_load=0.9, min_load=0.9, cascade_chance=0.5, max_steps=60)
    env.reset(seed=3)
    start = env.true_state()
    assert start.nodes_not_ready == 1 and start.pods_unknown > 0
    for _ in range(layout.EVICTION_DELAY):
        env.step(PASS_TIME)
    later = env.true_state()
    assert later.pods_unknown > 0 and later.pods_running + later.pods_pending > start.pods_running
    for _ in range(20):  # the crowded nodes come under pressure
        env.step(PASS_TIME)
    assert Fault.NODE_PRESSURE in env.seen_faults


def test_without_cascades_a_lone_fault_stays_alone():
    env = single_fault(Fault.RUNAWAY_DEPLOYMENT)
    env.reset(seed=0)
    for _ in range(60):
        env.step(PASS_TIME)
    assert env.seen_faults == {Fault.RUNAWAY_DEPLOYMENT}


def test_stale_observations_until_refreshed():
    env = single_fault(Fault.UNDERSCALED)
    obs, _ = env.reset(seed=0)
    assert obs[8] == 0 and obs[11] == 0  # deployments and CPU unknown until read
    obs, *_ = env.step(A.GET_DEPLOYMENTS)
    assert obs[8] > 0 and obs[10] > 0 and obs[11] == 0
    obs, *_ = env.step(A.TOP_PODS)
    assert obs[11] * 100 > layout.CPU_SCALE


# -- scenario knobs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, field",
    [
        ({"min_nodes": 1}, "min_nodes"),
        ({"max_nodes": 1001}, "max_nodes"),
        ({"max_deployments": 20_001}, "max_deployments"),
        ({"max_replicas": 51}, "max_replicas"),
        ({"max_pods_per_node": 251}, "max_pods_per_node"),
        ({"min_nodes": 9, "max_nodes": 4}, "min_nodes"),
        ({"min_load": -0.1}, "min_load"),
        ({"max_faults": 9}, "max_faults"),
        ({"new_fault_rate": 2}, "new_fault_rate"),
        ({"read_only_share": 1.5}, "read_only_share"),
        ({"metrics_share": -1}, "metrics_share"),
        ({"background": float("nan")}, "background"),
        ({"max_steps": 0}, "max_steps"),
        ({"fault_weights": {"meteor": 1}}, "fault_weights.meteor"),
        ({"fault_weights": {"unbound_pvc": -1}}, "fault_weights.unbound_pvc"),
        ({"min_nodes": "3"}, "min_nodes"),
        ({"fault_weights": {"overprovisioned": 1}}, "fault_weights.overprovisioned"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_scenario_values_raise_value_error_naming_the_field(values, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        ScenarioConfig.from_dict(values)


def test_scenario_sizes_are_respected():
    scenario = ScenarioConfig(
        min_nodes=5,
        max_nodes=6,
        min_pods_per_node=20,
        max_pods_per_node=30,
        min_deployments=4,
        max_deployments=4,
        min_replicas=3,
        max_replicas=3,
        min_faults=0,
        max_faults=0,
        new_fault_rate=0.0,
    )
    batch = ClusterBatch(200, scenario)
    batch.seed(0)
    batch.reset(step_buffers(200).observations)
    shape = batch.state.shape
    assert set(shape[:, layout.NODES]) == {5, 6}
    assert set(shape[:, layout.DEPLOYMENTS]) == {4}
    # The deployments' 12 pods and a few DaemonSet pods on every node.
    assert np.all((shape[:, layout.PODS] - 12) % shape[:, layout.NODES] == 0)
    assert np.all(shape[:, layout.PODS] >= 12 + 2 * shape[:, layout.NODES])
    assert not batch.state.active.any()


def test_the_default_scenario_is_mostly_healthy_or_single_fault_clusters_of_real_density():
    batch = ClusterBatch(20_000, ScenarioConfig())
    batch.seed(0)
    batch.reset(step_buffers(20_000).observations)
    st = batch.state
    faults = np.array([bin(int(m)).count("1") for m in st.active])
    assert np.mean(faults == 0) >= 0.2 and np.mean(faults == 1) >= 0.3 and faults.max() <= 4
    density = st.shape[:, layout.PODS] / st.shape[:, layout.NODES]
    assert density.min() >= 5 and density.max() <= 130 and np.median(density) > 40
    assert st.shape[:, layout.NODES].min() == 3 and st.shape[:, layout.NODES].max() >= 900
    read_only = (st.conditions & layout.READ_ONLY) != 0
    no_metrics = (st.conditions & layout.NO_METRICS) != 0
    assert 0.2 <= read_only.mean() <= 0.3 and 0.1 <= no_metrics.mean() <= 0.2
    assert (st.background.sum(axis=1) > 0).mean() > 0.5  # most real clusters show something benign


def test_a_fault_breaking_out_on_its_own_counts_as_degradation():
    weights = {"unbound_pvc": 1.0, "crashed_pods": 1.0}
    env = ClusterEnv(
        scenario=ScenarioConfig(
            min_faults=1, max_faults=2, new_fault_rate=0.5, cascade_chance=0.0, fault_weights=weights
        )
    )
    seed = next(s for s in range(100) if len(env.reset(seed=s) and env.active_faults()) == 1)
    env.reset(seed=seed)
    for _ in range(20):
        _, reward, terminated, _, info = env.step(PASS_TIME)
        if len(env.active_faults()) == 2:
            break
    assert len(env.active_faults()) == 2, "no fault arrived"
    assert parts(info)["degradation"] <= -layout.REWARD_RESOLVED
    assert parts(info)["step"] == pytest.approx(layout.REWARD_STEP)


def test_a_healthy_episode_ends_when_the_agent_reports_nothing_wrong():
    env = ClusterEnv(scenario=ScenarioConfig(min_faults=0, max_faults=0, new_fault_rate=0.0))
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(A.GET_PODS)
    assert not terminated
    _, reward, terminated, _, info = env.step(A.WAIT, named=[])
    assert terminated and info["outcome"] == "resolved"
    assert parts(info)["terminal"] == pytest.approx(layout.REWARD_DONE)


def test_a_report_naming_what_is_not_there_is_a_false_alarm():
    env = ClusterEnv(scenario=ScenarioConfig(min_faults=0, max_faults=0, new_fault_rate=0.0))
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(A.WAIT, named=[Fault.NODE_CORDONED, Fault.DNS_FAILURE])
    assert terminated and info["outcome"] == "stopped"
    assert parts(info)["terminal"] == pytest.approx(layout.REWARD_WRONG_VERDICT - 2 * layout.REWARD_PER_ERROR)


def test_running_out_of_steps_is_not_resolved():
    env = ClusterEnv(scenario=single_fault(Fault.NODE_CORDONED).scenario, max_steps=4)
    env.reset(seed=0)
    for _ in range(4):
        _, _, terminated, truncated, info = env.step(PASS_TIME)
    assert truncated and not terminated and info["outcome"] == "truncated"


def test_on_a_read_only_cluster_remedies_are_dry_runs_and_the_input_says_so():
    env = ClusterEnv(scenario=single_fault(Fault.NODE_CORDONED, read_only_share=1.0).scenario, observation="full")
    obs, info = env.reset(seed=0)
    assert info["read_only"] and obs[WRITES_AT] == 0.0
    env.step(A.GET_NODES)
    obs, reward, _, _, info = env.step(A.UNCORDON_NODE)
    assert info["action_result"]["data"]["result"] == "dry_run" and env.active_faults() == [Fault.NODE_CORDONED]
    assert obs[RESULT_AT + RESULT_DRY_RUN] == 1.0 and obs[LAST_ACTION_AT + A.UNCORDON_NODE] == 1.0
    assert parts(info)["resolved"] == 0 and parts(info)["induced"] == 0
    # The report must name the fault the agent could have fixed: it could not.
    assert env.step(A.WAIT, named=[Fault.NODE_CORDONED])[4]["outcome"] == "resolved"


def test_without_metrics_server_top_answers_unavailable_not_zero():
    env = single_fault(Fault.RUNAWAY_DEPLOYMENT, metrics_share=0.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(A.TOP_PODS)
    assert info["action_result"]["data"]["result"] == "unavailable" and info["diagnosed_faults"] == []
    assert env.unwrapped._backend.shown_findings() == {("Metrics", "Unavailable"): 1}
    env.step(A.GET_DEPLOYMENTS)  # the HPA at its ceiling tells the runaway apart without metrics
    assert info["active_faults"] == ["runaway_deployment"] and env.diagnosed_faults() == [Fault.RUNAWAY_DEPLOYMENT]


# -- blind remedies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "blind, induced, read, mend",
    [
        (A.DRAIN_NODE, Fault.NODE_CORDONED, A.GET_NODES, A.UNCORDON_NODE),
        (A.SCALE_DOWN_DEPLOYMENT, Fault.UNDERSCALED, A.GET_DEPLOYMENTS, A.SCALE_UP_DEPLOYMENT),
        (A.SCALE_UP_DEPLOYMENT, Fault.OVERPROVISIONED, A.TOP_PODS, A.SCALE_DOWN_DEPLOYMENT),
    ],
)
def test_what_a_blind_remedy_breaks_stays_hidden_until_read_and_is_not_undone_for_free(blind, induced, read, mend):
    # A seed where the blind remedy does no lasting harm (see the next test).
    for seed in range(50):
        env = single_fault(Fault.UNBOUND_PVC)
        obs, _ = env.reset(seed=seed)
        after, _, _, _, info = env.step(blind)
        if set(env.active_faults()) == {Fault.UNBOUND_PVC, induced}:
            break
    assert induced in env.active_faults()
    assert induced.name.lower() not in info["diagnosed_faults"]
    assert np.array_equal(after, obs)  # a remedy shows nothing: the damage is found by reading
    _, _, _, _, info = env.step(mend)  # the opposite remedy, before a read, does not undo it
    assert induced in env.active_faults()
    env.step(read)
    assert induced in env.diagnosed_faults()
    _, _, _, _, info = env.step(mend)
    assert induced not in env.active_faults()


@pytest.mark.parametrize(
    "blind, lasting",
    [
        (A.DRAIN_NODE, Fault.UNBOUND_PVC),
        (A.RESTART_FAILED_PODS, Fault.BAD_ROLLOUT),
        (A.SCALE_DOWN_DEPLOYMENT, Fault.BAD_ROLLOUT),
    ],
)
def test_a_blind_remedy_can_break_what_only_a_human_mends_and_then_the_episode_cannot_be_won(blind, lasting):
    hits = 0
    for seed in range(40):
        env = single_fault(Fault.CRASHED_PODS if lasting != Fault.CRASHED_PODS else Fault.DNS_FAILURE)
        env.reset(seed=seed)
        env.step(blind)
        if lasting not in env.active_faults():
            continue
        hits += 1
        # Everything found and everything fixable mended: still not resolved, the agent broke it.
        for action in (A.CHECK_LOGS, A.DESCRIBE_UNHEALTHY, A.RESTART_FAILED_PODS):
            env.step(action)
        for action in (A.GET_NODES, A.UNCORDON_NODE, A.GET_DEPLOYMENTS, A.SCALE_UP_DEPLOYMENT):
            env.step(action)
        env.step(A.CHECK_LOGS)
        env.step(A.DESCRIBE_UNHEALTHY)
        assert lasting in env.diagnosed_faults()
        _, _, terminated, _, info = env.step(A.WAIT, named=[f for f in env.active_faults() if f in HUMAN_ONLY])
        assert terminated and info["outcome"] == "stopped", info["active_faults"]
    assert 5 <= hits <= 35  # about half the blind uses: layout.LASTING_HARM_CHANCE


def test_identification_goes_stale_after_any_change():
    env = single_fault(Fault.UNDERSCALED)
    env.reset(seed=0)
    env.step(A.GET_DEPLOYMENTS)
    assert env.diagnosed_faults() == [Fault.UNDERSCALED]
    env.step(A.DRAIN_NODE)  # a change elsewhere (a healthy node drained)
    assert Fault.UNDERSCALED not in env.diagnosed_faults()


def test_info_tells_the_truth_at_every_step():
    env = ClusterEnv()
    _, info = env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(20):
        assert info["active_faults"] == [f.name.lower() for f in env.active_faults()]
        assert set(info["diagnosed_faults"]) <= set(info["active_faults"])
        assert 0.0 <= info["true_health"] <= 1.0
        _, _, terminated, truncated, info = env.step(int(rng.integers(0, 15)))
        if terminated or truncated:
            break


def test_the_kernels_cache_fingerprint_is_the_same_in_every_process():
    """`drop_stale` flushes the numba cache when the tables the kernels read change; a table whose
    fingerprint depends on the process (a set's order under hash randomisation) would flush it in
    every process, and every run would compile the simulator again."""
    import subprocess
    import sys

    code = (
        "from rl.sim import kernels, layout;"
        "from rl.jit_cache import fingerprint;"
        "print(fingerprint(kernels.FAULT_COUNT_TABLE, *(v for n, v in sorted(vars(layout).items()) if n[0].isupper())))"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": s},
        ).stdout
        for s in ("1", "2")
    }
    assert len(prints) == 1, prints


def test_the_cache_stamp_is_readable_by_any_user(tmp_path):
    """An image's numba cache is written by root at build time and read by any uid: a stamp only its
    writer can read would flush the cache in every container, which would then compile the simulator."""
    import stat

    from rl.jit_cache import drop_stale

    class Cache:
        cache_path = str(tmp_path)
        flushed = 0

        def flush(self):
            Cache.flushed += 1

    class Dispatcher:
        _cache = Cache()

    drop_stale("kernels", [Dispatcher()], "abc")
    marker = tmp_path / "kernels.tables"
    assert marker.read_text() == "abc" and stat.S_IMODE(marker.stat().st_mode) & 0o044 == 0o044
    drop_stale("kernels", [Dispatcher()], "abc")  # the same tables: nothing flushed again
    assert Cache.flushed == 1
