"""The agent's input on a real cluster agrees with the simulator's, fault by fault.

For each injectable fault type the same incident runs twice: in the simulator (one cluster of the
same size with that fault alone, read-only, no background, no new faults) and on a realistic cluster
with that fault served by the test API server (`kube_server.realistic`, the fault in its catalogue
form, read through the real client by `rl.kube.KubeBackend`). The same actions go to both, and after
every step the two input rows (`rl.agent_input`) must agree:

- the history sections exactly: fresh reads, actions taken, the last action and its result (applied,
  dry_run for a remedy on a read-only cluster, unavailable for `top` without metrics-server), writes
  allowed;
- the findings section: the same finding keys present (their counts may differ), but for the keys a
  real cluster shows that the simulator's fault does not (`KNOWN_GAPS`, each with why);
- the three flags exactly;
- the counts within tolerances (`TOLERANCE`, on the encoded [0, 1] entries): a count of bad objects
  is 0 in both or in neither; CPU and memory are 0 (unknown, or not read) in both or in neither.

The real cluster is a snapshot of an incident that has run for a while (rollouts past their progress
deadline, a dead node's pods past the eviction timeout), so the simulated one first runs for as many
steps (re-reading the quotas, which shows neither) before the reads are compared.
"""

from pathlib import Path

import numpy as np
import pytest
from kube_server import FakeKubeServer, write_kubeconfig
from kube_server.realistic import FAULT_TYPES, ClusterSpec, build_cluster, serve

from rl import ClusterAction as A
from rl import ClusterEnv
from rl.agent_input import FINDINGS_AT, FRESH_AT, INPUT_FIELDS, INPUT_KEYS, NUM_INPUT_KEYS, shown_keys
from rl.faults import INJECTABLE
from rl.kube import KubeBackend
from rl.sim.layout import EVICTION_DELAY, PROGRESS_DEADLINE
from rl.sim.scenario import ScenarioConfig
from rl.state import OBS_FIELDS

NODES, PODS_PER_NODE = 6, 20
# Allowed difference of each encoded count (log scales: 0.15 is about a factor of 1.3 in a total of
# a hundred objects; 0.35 a factor of 3 to 10 in a count of bad objects).
TOLERANCE = {
    "num_nodes": 0.0,
    "num_pods": 0.15,
    "num_deployments": 0.15,
    "nodes_ready": 0.35,
    "pods_running": 0.35,
    "deployments_available": 0.35,
    "nodes_not_ready": 0.35,
    "pods_pending": 0.35,
    "pods_failed": 0.35,
    "pods_unknown": 0.35,
    "deployments_unavailable": 0.35,
    "cpu_usage_percent": 0.4,
    "memory_usage_percent": 0.4,
    "recent_events_warning": 0.35,
    "recent_events_normal": 0.35,
}
ZERO_IN_BOTH_OR_NEITHER = (
    "nodes_not_ready",
    "pods_pending",
    "pods_failed",
    "pods_unknown",
    "deployments_unavailable",
    "cpu_usage_percent",
    "memory_usage_percent",
)
# Finding keys a real cluster shows with a fault that the simulator's fault does not emit.
KNOWN_GAPS: dict[str, set] = {}
# Faults whose workload runs hot: the simulator's `top pods` adds 40 points for it, where a real
# cluster's reading is the pods' use of the whole cluster, in which one workload does not stand out.
HOT_WORKLOAD = {"runaway_deployment", "underscaled", "oom_killed"}
WARM_UP = max(EVICTION_DELAY, PROGRESS_DEADLINE)
READS = (
    A.GET_NODES,
    A.GET_PODS,
    A.GET_DEPLOYMENTS,
    A.GET_EVENTS,
    A.CHECK_LOGS,
    A.DESCRIBE_UNHEALTHY,
    A.TOP_NODES,
    A.TOP_PODS,
    A.GET_RESOURCE_QUOTAS,
)
# Each read once, then remedies (dry runs on a read-only cluster) and a read after them. (A real
# cluster here is a snapshot; the simulated incident goes on: a pressured node evicts a pod every two
# steps. Reads are compared while the two are the same incident.)
ACTIONS = (
    (A.GET_RESOURCE_QUOTAS,) * WARM_UP + READS + (A.RESTART_FAILED_PODS, A.DRAIN_NODE, A.UNCORDON_NODE, A.GET_NODES)
)


def test_every_injectable_fault_type_is_driven():
    assert set(FAULT_TYPES) == {f.name.lower() for f in INJECTABLE}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = FakeKubeServer().start()
    kubeconfig = write_kubeconfig(tmp_path_factory.mktemp("agreement") / "kubeconfig", server.url)
    yield server, kubeconfig
    server.stop()


def simulated(fault: str, metrics: bool, seed: int) -> tuple[ClusterEnv, np.ndarray]:
    scenario = ScenarioConfig(
        min_nodes=NODES,
        max_nodes=NODES,
        min_pods_per_node=PODS_PER_NODE,
        max_pods_per_node=PODS_PER_NODE,
        min_faults=1,
        max_faults=1,
        fault_weights={fault: 1.0},
        new_fault_rate=0.0,
        cascade_chance=0.0,
        background=0.0,
        read_only_share=1.0,
        metrics_share=1.0 if metrics else 0.0,
    )
    env = ClusterEnv(scenario=scenario, observation="full")
    row, _ = env.reset(seed=seed)
    assert [f.name.lower() for f in env.active_faults()] == [fault]
    return env, row


def real(server, fault: str, metrics: bool, seed: int) -> tuple[ClusterEnv, np.ndarray]:
    fake, kubeconfig = server
    spec = ClusterSpec(
        seed=seed,
        nodes=NODES,
        pods_per_node=PODS_PER_NODE,
        faults=(fault,),
        metrics=metrics,
        noise=False,
        late=True,
        catalogue_form=True,
    )
    serve(fake, build_cluster(spec))
    backend = KubeBackend(kubeconfig=str(Path(kubeconfig)), backoff_seconds=0.01, wait_seconds=0.0)
    env = ClusterEnv(simulation_mode=False, backend=backend, observation="full")
    row, _ = env.reset()
    return env, row


def disagreements(fault: str, sim_row: np.ndarray, real_row: np.ndarray) -> list[str]:
    found = []
    history = slice(FRESH_AT, len(INPUT_FIELDS))
    for k in np.flatnonzero(sim_row[history] != real_row[history]):
        name = INPUT_FIELDS[FRESH_AT + k]
        found.append(f"{name}: simulator {sim_row[FRESH_AT + k]:.0f}, real {real_row[FRESH_AT + k]:.0f}")
    sim_keys, real_keys = shown_keys(sim_row), shown_keys(real_row)
    gaps = KNOWN_GAPS.get(fault, set())
    if sim_keys != real_keys - gaps:
        found.append(
            f"findings: only simulated {sorted(sim_keys - real_keys)}, only real {sorted(real_keys - sim_keys - gaps)}"
        )
    for k, name in enumerate(OBS_FIELDS):
        s, r = float(sim_row[k]), float(real_row[k])
        if name.startswith("has_"):
            if s != r:
                found.append(f"{name}: simulator {s:.0f}, real {r:.0f}")
            continue
        hot = fault in HOT_WORKLOAD and name.endswith("_percent")
        if abs(s - r) > TOLERANCE[name] + 1e-6 and not hot:
            found.append(f"{name}: simulator {s:.3f}, real {r:.3f} (tolerance {TOLERANCE[name]})")
        if name in ZERO_IN_BOTH_OR_NEITHER and (s > 0) != (r > 0):
            found.append(f"{name}: simulator {s:.3f}, real {r:.3f} (0 in one only)")
    return found


@pytest.mark.parametrize("fault", FAULT_TYPES)
def test_the_same_fault_gives_the_same_input_in_the_simulator_and_on_a_real_cluster(server, fault):
    check(server, fault, metrics=True)


@pytest.mark.parametrize("fault", ["node_pressure", "oom_killed", "runaway_deployment"])
def test_without_metrics_server_top_is_unavailable_on_both(server, fault):
    rows = check(server, fault, metrics=fault == "runaway_deployment")
    if fault == "runaway_deployment":
        return
    sim_row, real_row = rows[ACTIONS.index(A.TOP_NODES)]
    metrics = FINDINGS_AT + INPUT_KEYS.index(("Metrics", "Unavailable"))
    for row in (sim_row, real_row):
        assert row[metrics] > 0 and row[OBS_FIELDS.index("cpu_usage_percent")] == 0.0
        assert row[INPUT_FIELDS.index("last_result:unavailable")] == 1.0


def check(server, fault: str, metrics: bool, seed: int = 7) -> list[tuple[np.ndarray, np.ndarray]]:
    (sim, sim_row), (cluster, real_row) = simulated(fault, metrics, seed), real(server, fault, metrics, seed)
    rows = []
    try:
        problems = [f"at the start: {p}" for p in disagreements(fault, sim_row, real_row)]
        for step, action in enumerate(ACTIONS, 1):
            sim_row, *_ = sim.step(action)
            real_row, *_ = cluster.step(action)
            rows.append((sim_row, real_row))
            problems += [f"step {step} {action.name}: {p}" for p in disagreements(fault, sim_row, real_row)]
    finally:
        cluster.close()
    assert not problems, "\n".join(problems)
    assert len(INPUT_KEYS) == NUM_INPUT_KEYS
    return rows
