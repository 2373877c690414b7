"""`ClusterBatch`: the state of N simulated clusters, and the calls that step them.

The state is one `Clusters` tuple of flat numpy arrays, one row per cluster, which the compiled
kernels (`rl.sim.kernels`) update in place. `ClusterBatch.step` writes each cluster's input row
(`rl.agent_input`), reward and episode end into the caller's buffers.
"""

from collections import namedtuple

import numpy as np

from rl.agent_input import INPUT_SIZE, NUM_INPUT_KEYS
from rl.faults import NUM_FAULTS, Fault
from rl.sim import kernels
from rl.sim.layout import (
    ALL_FAULTS_MASK,
    HUMAN_ONLY_MASK,
    NUM_PARAMS,
    NUM_REWARD_PARTS,
    NUM_SHAPE,
    P_BACKGROUND,
    P_CASCADE_CHANCE,
    P_MAX_DENSITY,
    P_MAX_DEPLOYMENTS,
    P_MAX_FAULTS,
    P_MAX_LOAD,
    P_MAX_NODES,
    P_MAX_REPLICAS,
    P_MAX_STEPS,
    P_METRICS_SHARE,
    P_MIN_DENSITY,
    P_MIN_DEPLOYMENTS,
    P_MIN_FAULTS,
    P_MIN_LOAD,
    P_MIN_NODES,
    P_MIN_REPLICAS,
    P_NEW_FAULT_RATE,
    P_READ_ONLY_SHARE,
    READ_ONLY,
)
from rl.sim.scenario import ScenarioConfig
from rl.state import OBS_SIZE

Clusters = namedtuple(
    "Clusters",
    (
        "rng",  # uint64: one splitmix64 stream per cluster
        "shape",  # int32 (n, NUM_SHAPE): sizes drawn at reset, and the step count
        "load",  # float32: the share of pod capacity a healthy cluster uses
        "conditions",  # int32: READ_ONLY, NO_METRICS, PLANNED_CORDON bits
        "active",  # int64: fault bit masks (bit f = Fault f)
        "revealed",  # int64: faults identified by a read, while they last
        "caused",  # int64: faults only a human can fix that the agent's own blind remedies caused
        "size",  # int32 (n, NUM_FAULTS): each fault's extent (pods, nodes, deployments, replicas)
        "timer",  # int32 (n, NUM_FAULTS): steps since it started, or until it recurs
        "events",  # float32 (n, 2): warning and normal events in the recent window
        "background",  # float32 (n, NUM_INPUT_KEYS): the benign findings this cluster shows
        "retrying",  # int32: failed pods of a Job that is retrying (benign)
        "truth",  # float32 (n, OBS_SIZE): the cluster as it is, in ClusterState units
        "usage",  # float32 (n, 4): CPU and memory as each `kubectl top` shows them (USAGE_*)
        "found",  # float32 (n, NUM_INPUT_KEYS): every finding the analyzers would report now
        "shown",  # int64: a bit per read that has shown the findings as they are now
        "seen",  # float32 (n, OBS_SIZE): what the agent has read of the counts
        "seen_found",  # float32 (n, NUM_INPUT_KEYS): the findings its reads have shown
        "fresh",  # int64: a bit per read taken since the agent's last change to the cluster
        "taken",  # int64: a bit per action taken this episode (WAIT aside)
        "last_action",  # int32: -1 at the start
        "last_result",  # int32: RESULT_* of rl.agent_input, -1 at the start
        "health",  # float32: true health in [0, 1]
        "episode_return",
        "harmful",  # int32: remedies that acted on a wrong object, this episode
        "params",  # float64 (NUM_PARAMS,)
        "weights",  # float64 (NUM_FAULTS,): relative chance of each fault
        "reward_parts",  # float32 (n, NUM_REWARD_PARTS): the last step's reward, by part
        "step_harmful",  # int8: whether the last action acted on a wrong object
        "resolved_now",  # int64: faults the last action fixed
        "outcome",  # int8: OUTCOME_* of the last step
        "final_return",  # the episode that ended on the last step: its return, length, harm,
        "final_length",
        "final_harmful",
        "final_health",  # its true health at the end,
        "final_active",  # the faults still active at the end,
        "final_conditions",  # and its conditions (read-only or not)
    ),
)


def fault_list(mask: int) -> list[Fault]:
    """The faults set in a mask."""
    return [f for f in Fault if int(mask) >> f & 1]


def scenario_params(config: ScenarioConfig) -> tuple[np.ndarray, np.ndarray]:
    """The scenario as the float vector and fault-weight vector the kernels read."""
    params = np.zeros(NUM_PARAMS, dtype=np.float64)
    params[P_MIN_NODES], params[P_MAX_NODES] = config.min_nodes, config.max_nodes
    params[P_MIN_DENSITY], params[P_MAX_DENSITY] = config.min_pods_per_node, config.max_pods_per_node
    params[P_MIN_DEPLOYMENTS], params[P_MAX_DEPLOYMENTS] = config.min_deployments, config.max_deployments
    params[P_MIN_REPLICAS], params[P_MAX_REPLICAS] = config.min_replicas, config.max_replicas
    params[P_MIN_LOAD], params[P_MAX_LOAD] = config.min_load, config.max_load
    params[P_MIN_FAULTS], params[P_MAX_FAULTS] = config.min_faults, config.max_faults
    params[P_NEW_FAULT_RATE] = config.new_fault_rate
    params[P_MAX_STEPS] = config.max_steps
    params[P_CASCADE_CHANCE] = config.cascade_chance
    params[P_READ_ONLY_SHARE] = config.read_only_share
    params[P_METRICS_SHARE] = config.metrics_share
    params[P_BACKGROUND] = config.background
    weights = np.zeros(NUM_FAULTS, dtype=np.float64)
    for name, weight in config.fault_weights.items():
        weights[Fault[name.upper()]] = weight
    return params, weights


class ClusterBatch:
    """The state of N simulated clusters (`self.state`, a `Clusters` of flat arrays)."""

    def __init__(self, num_clusters: int, scenario: ScenarioConfig | None = None):
        if num_clusters < 1:
            raise ValueError(f"num_clusters: must be >= 1, got {num_clusters}")
        self.scenario = scenario or ScenarioConfig()
        params, weights = scenario_params(self.scenario)
        n = num_clusters
        self.num_clusters = n
        self.state = Clusters(
            rng=np.zeros(n, dtype=np.uint64),
            shape=np.zeros((n, NUM_SHAPE), dtype=np.int32),
            load=np.zeros(n, dtype=np.float32),
            conditions=np.zeros(n, dtype=np.int32),
            active=np.zeros(n, dtype=np.int64),
            revealed=np.zeros(n, dtype=np.int64),
            caused=np.zeros(n, dtype=np.int64),
            size=np.zeros((n, NUM_FAULTS), dtype=np.int32),
            timer=np.zeros((n, NUM_FAULTS), dtype=np.int32),
            events=np.zeros((n, 2), dtype=np.float32),
            background=np.zeros((n, NUM_INPUT_KEYS), dtype=np.float32),
            retrying=np.zeros(n, dtype=np.int32),
            truth=np.zeros((n, OBS_SIZE), dtype=np.float32),
            usage=np.zeros((n, 4), dtype=np.float32),
            found=np.zeros((n, NUM_INPUT_KEYS), dtype=np.float32),
            shown=np.zeros(n, dtype=np.int64),
            seen=np.zeros((n, OBS_SIZE), dtype=np.float32),
            seen_found=np.zeros((n, NUM_INPUT_KEYS), dtype=np.float32),
            fresh=np.zeros(n, dtype=np.int64),
            taken=np.zeros(n, dtype=np.int64),
            last_action=np.full(n, -1, dtype=np.int32),
            last_result=np.full(n, -1, dtype=np.int32),
            health=np.zeros(n, dtype=np.float32),
            episode_return=np.zeros(n, dtype=np.float32),
            harmful=np.zeros(n, dtype=np.int32),
            params=params,
            weights=weights,
            reward_parts=np.zeros((n, NUM_REWARD_PARTS), dtype=np.float32),
            step_harmful=np.zeros(n, dtype=np.int8),
            resolved_now=np.zeros(n, dtype=np.int64),
            outcome=np.zeros(n, dtype=np.int8),
            final_return=np.zeros(n, dtype=np.float32),
            final_length=np.zeros(n, dtype=np.int32),
            final_harmful=np.zeros(n, dtype=np.int32),
            final_health=np.zeros(n, dtype=np.float32),
            final_active=np.zeros(n, dtype=np.int64),
            final_conditions=np.zeros(n, dtype=np.int32),
        )

    def seed(self, seed: int) -> None:
        """Give cluster i the stream of a single cluster seeded with `seed + i`."""
        kernels.seed_streams(self.state.rng, np.uint64(int(seed) % 2**64))

    def reset(self, observations: np.ndarray) -> None:
        """Start a new episode in every cluster and write the first input rows."""
        kernels.reset_all(self.state, observations)

    def must_name_masks(self) -> np.ndarray:
        """Per cluster, the fault bits the agent must name: all on a read-only cluster, else those only
        a human can fix."""
        read_only = (self.state.conditions & READ_ONLY) != 0
        return np.where(read_only, ALL_FAULTS_MASK, HUMAN_ONLY_MASK).astype(np.int64)

    def step(self, actions, observations, rewards, terminals, truncations, auto_reset: bool, named=None) -> None:
        """Apply one action per cluster; write input rows, rewards and episode ends in place.

        `named` (int64 per cluster, one bit per `Fault`) is what the agent names as wrong with each
        cluster at this step: a WAIT ends the episode as resolved only if it is exactly what the agent
        must name. None takes the faults the agent's reads have identified, of those it must name.
        """
        if named is None:
            named = self.state.revealed & self.must_name_masks()
        kernels.step_all(
            self.state,
            np.asarray(actions, dtype=np.int32),
            observations,
            rewards,
            terminals,
            truncations,
            auto_reset,
            np.asarray(named, dtype=np.int64),
        )


StepBuffers = namedtuple("StepBuffers", ["observations", "rewards", "terminals", "truncations"])


def step_buffers(num_clusters: int) -> StepBuffers:
    return StepBuffers(
        np.zeros((num_clusters, INPUT_SIZE), dtype=np.float32),
        np.zeros(num_clusters, dtype=np.float32),
        np.zeros(num_clusters, dtype=bool),
        np.zeros(num_clusters, dtype=bool),
    )


def started_batch(num_clusters: int, scenario: ScenarioConfig, seed: int) -> tuple[ClusterBatch, StepBuffers]:
    """N clusters seeded `seed`, `seed + 1`, ..., reset, and the buffers `ClusterBatch.step` writes
    into (holding the first input rows)."""
    batch = ClusterBatch(num_clusters, scenario)
    batch.seed(seed)
    buffers = step_buffers(num_clusters)
    batch.reset(buffers.observations)
    return batch, buffers
