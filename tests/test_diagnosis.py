"""What an agent names: the one threshold and bit masks, the scores, and ClusterEnv taking what is named
(in simulation, and on a real cluster through the fake API server)."""

import numpy as np
import pytest
from kube_server import FakeKubeServer, load_into, write_kubeconfig

from rl import ClusterAction, ClusterEnv
from rl.diagnosis import (
    FINDING_FAULTS,
    NAMED_AT,
    DiagnosisCounts,
    finding_fault,
    named_faults,
    named_masks,
    policy_beliefs,
    to_mask,
)
from rl.faults import NUM_FAULTS, Fault
from rl.sim.scenario import ScenarioConfig


def test_a_fault_is_named_from_a_belief_of_one_half():
    beliefs = np.zeros((2, NUM_FAULTS), dtype=np.float32)
    beliefs[0, Fault.DNS_FAILURE] = NAMED_AT
    beliefs[0, Fault.BAD_ROLLOUT] = np.nextafter(np.float32(NAMED_AT), np.float32(0))
    beliefs[0, Fault.CRASHED_PODS] = 0.9
    beliefs[1, :] = 1.0
    masks = named_masks(beliefs)
    assert masks.dtype == np.int64
    assert masks[0] == (1 << Fault.DNS_FAILURE) | (1 << Fault.CRASHED_PODS)
    assert masks[1] == (1 << NUM_FAULTS) - 1
    assert named_faults(beliefs[0]) == [Fault.CRASHED_PODS, Fault.DNS_FAILURE]  # most probable first


def test_policy_beliefs_checks_the_shape_and_a_policy_without_beliefs_names_nothing():
    class Silent:
        pass

    class Wrong:
        beliefs = np.zeros((3, 2))

    assert not policy_beliefs(Silent(), 4).any() and policy_beliefs(Silent(), 4).shape == (4, NUM_FAULTS)
    with pytest.raises(ValueError, match="beliefs"):
        policy_beliefs(Wrong(), 3)


@pytest.mark.parametrize(
    "named, mask",
    [
        (0, 0),
        (5, 5),
        ([], 0),
        ([Fault.DNS_FAILURE, "unbound_pvc"], (1 << Fault.DNS_FAILURE) | (1 << Fault.UNBOUND_PVC)),
        ("quota_exhausted", 1 << Fault.QUOTA_EXHAUSTED),
        (np.int64(2), 2),
    ],
)
def test_to_mask_takes_masks_faults_and_names(named, mask):
    assert to_mask(named) == mask


@pytest.mark.parametrize("named", [-1, 1 << NUM_FAULTS, True, ["gremlins"], 1.5, [object()]])
def test_to_mask_refuses_what_is_not_a_fault(named):
    with pytest.raises(ValueError, match="named"):
        to_mask(named)


def test_scores_are_micro_averaged_over_episodes():
    counts = DiagnosisCounts.of(named=[0b011, 0, 0b100], active=[0b001, 0b100, 0b100])
    assert (counts.true_positives, counts.false_positives, counts.false_negatives) == (2, 1, 1)
    assert counts.precision == pytest.approx(2 / 3) and counts.recall == pytest.approx(2 / 3)
    assert counts.f1 == pytest.approx(2 / 3)
    nothing = DiagnosisCounts.of(named=[0, 0], active=[0, 0])
    assert (nothing.precision, nothing.recall, nothing.f1) == (1.0, 1.0, 1.0)
    silent = DiagnosisCounts.of(named=[0], active=[0b1])
    assert (silent.precision, silent.recall, silent.f1) == (1.0, 0.0, 0.0)


def test_every_mapped_finding_is_one_an_analyzer_can_emit():
    from rl.kube.analyzers import EVENT_REASONS, REASONS
    from rl.kube.analyzers import log as log_analyzer

    REASONS = {**REASONS, "Log": log_analyzer.REASONS, "Event": EVENT_REASONS}

    assert all(reason in REASONS.get(kind, ()) for kind, reason in FINDING_FAULTS), [
        key for key in FINDING_FAULTS if key[1] not in REASONS.get(key[0], ())
    ]
    assert finding_fault("Pod", "DNSResolutionFailed") == Fault.DNS_FAILURE  # events keep their object's kind
    assert "DNSResolutionFailed" in EVENT_REASONS
    assert finding_fault("Service", "NoMatchingPods") == Fault.SERVICE_NO_ENDPOINTS
    assert finding_fault("Ingress", "NoIngressClass") is None  # no fault type: it stays a finding
    assert finding_fault("Deployment", "ReplicasUnavailable") is None  # a symptom many faults share


def _lone_dns_failure(read_only: bool = False):
    """A cluster whose only fault is a DNS failure, and nothing else ever breaks."""
    weights = {name: 0.0 for name in ScenarioConfig().fault_weights}
    weights["dns_failure"] = 1.0
    scenario = ScenarioConfig(
        min_faults=1,
        max_faults=1,
        new_fault_rate=0.0,
        cascade_chance=0.0,
        fault_weights=weights,
        read_only_share=1.0 if read_only else 0.0,
    )
    env = ClusterEnv(max_steps=20, scenario=scenario)
    env.reset(seed=4)
    assert env.active_faults() == [Fault.DNS_FAILURE]
    return env


@pytest.mark.parametrize(
    "named, read, outcome",
    [
        ([Fault.UNBOUND_PVC], True, "stopped"),  # the wrong fault
        ([Fault.DNS_FAILURE, Fault.UNBOUND_PVC], True, "stopped"),  # one too many: a false alarm
        ([], True, "stopped"),  # nothing named: the fault is missed
        (1 << Fault.DNS_FAILURE, True, "resolved"),  # exactly what is wrong, and the logs showed it
        (1 << Fault.DNS_FAILURE, False, "stopped"),  # exactly what is wrong, but no read showed evidence
    ],
)
def test_a_wait_is_the_report_and_wins_only_when_it_names_exactly_what_is_wrong(named, read, outcome):
    env = _lone_dns_failure()
    if read:
        env.step(ClusterAction.CHECK_LOGS)  # failed lookups: evidence of the DNS failure
    _, reward, terminated, _, info = env.step(ClusterAction.WAIT, named=named)
    assert terminated and info["outcome"] == outcome
    assert (reward > 0) == (outcome == "resolved")


def test_without_named_a_wait_takes_what_the_reads_identified():
    env = _lone_dns_failure()
    env.step(ClusterAction.CHECK_LOGS)  # the logs identify the failed lookups
    _, _, terminated, _, info = env.step(ClusterAction.WAIT)
    assert terminated and info["outcome"] == "resolved"
    env = _lone_dns_failure()
    _, _, terminated, _, info = env.step(ClusterAction.WAIT)  # nothing read: nothing named
    assert terminated and info["outcome"] == "stopped"


def test_a_healthy_cluster_is_resolved_by_a_wait_that_names_nothing():
    scenario = ScenarioConfig(min_faults=0, max_faults=0, new_fault_rate=0.0)
    for named, outcome in ((None, "resolved"), (0, "resolved"), ([Fault.NODE_CORDONED], "stopped")):
        env = ClusterEnv(scenario=scenario)
        env.reset(seed=8)
        env.step(ClusterAction.GET_DEPLOYMENTS)
        assert env.step(ClusterAction.WAIT, named=named)[4]["outcome"] == outcome


def test_on_a_read_only_cluster_remedies_are_dry_runs_and_the_report_must_name_everything():
    env = _lone_dns_failure(read_only=True)
    _, _, _, _, info = env.step(ClusterAction.RESTART_FAILED_PODS)
    assert info["action_result"]["data"]["result"] == "dry_run" and info["read_only"]
    assert env.active_faults() == [Fault.DNS_FAILURE]
    env.step(ClusterAction.CHECK_LOGS)
    assert env.step(ClusterAction.WAIT, named=[Fault.DNS_FAILURE])[4]["outcome"] == "resolved"


def test_a_bad_named_value_is_refused_before_the_step():
    env = _lone_dns_failure()
    with pytest.raises(ValueError, match="named"):
        env.step(ClusterAction.WAIT, named=["gremlins"])
    assert env.step(ClusterAction.GET_NODES)[4]["step"] == 1


def test_support_lists_the_reads_that_showed_a_fault():
    env = _lone_dns_failure()
    env.step(ClusterAction.GET_NODES)
    env.step(ClusterAction.CHECK_LOGS)
    support = env.support(Fault.DNS_FAILURE)
    assert [(e["step"], e["read"]) for e in support] == [(2, "CHECK_LOGS")]
    assert "no such host" in support[0]["showed"]
    assert env.support(Fault.UNBOUND_PVC) == []


@pytest.fixture
def healthy_cluster(tmp_path):
    server = FakeKubeServer().start()
    load_into(server, "healthy")
    yield write_kubeconfig(tmp_path / "kubeconfig", server.url)
    server.stop()


def test_on_a_real_cluster_a_wait_with_something_named_is_not_resolved(healthy_cluster):
    from rl.kube import KubeBackend

    for named, outcome in (([Fault.DNS_FAILURE], "stopped"), (None, "resolved"), (0, "resolved")):
        backend = KubeBackend(kubeconfig=str(healthy_cluster), backoff_seconds=0.01)
        env = ClusterEnv(simulation_mode=False, max_steps=5, backend=backend)
        env.reset()
        _, _, terminated, _, info = env.step(ClusterAction.WAIT, named=named)
        env.close()
        assert terminated and info["outcome"] == outcome
        assert info["named_faults"] == (["dns_failure"] if named else [])
