"""The simulation core: N Kubernetes clusters stepped in one compiled loop.

State lives in flat numpy arrays, one row per cluster, gathered in one `Clusters` tuple that every
kernel takes; the numba kernels below update it in place and write observations, rewards and
terminals straight into the caller's buffers (PufferLib's shared buffers, or one row for
`ClusterEnv`). Each cluster draws from its own random stream (splitmix64), so cluster i of a batch
seeded with s behaves exactly like a single env seeded with s + i, whatever the other clusters do.

The fault table this implements is documented in `rl.sim.faults`. Three rules make diagnosis pay:
- a remedy acts on the object the agent has identified with a read that tells it apart; without
  one it acts on a plausible but wrong object (a healthy node drained, a healthy deployment scaled,
  healthy pods restarted), and what that breaks is hidden until a read of that kind finds it;
- damage is never undone for free: mending it takes its own read and its own remedy;
- the episode ends only when the agent says it is done (WAIT) and it really is: no fault the
  agent can fix is active and every fault only a human can fix has been diagnosed.
"""

from collections import namedtuple

import numpy as np
from numba import njit

from rl.actions import NUM_ACTIONS, REMEDIATION_ACTIONS, ClusterAction
from rl.sim.faults import HUMAN_ONLY, NUM_FAULTS, Fault
from rl.sim.scenario import ScenarioConfig
from rl.state import OBS_SIZE, encode_observation

A = ClusterAction
F = Fault

# The vocabulary of the compiled kernels, derived from the enums (numba reads module-level ints as
# compile-time constants).
CRASHED_PODS = int(F.CRASHED_PODS)
BAD_ROLLOUT = int(F.BAD_ROLLOUT)
OOM_KILLED = int(F.OOM_KILLED)
NODE_NOT_READY = int(F.NODE_NOT_READY)
NODE_CORDONED = int(F.NODE_CORDONED)
NODE_PRESSURE = int(F.NODE_PRESSURE)
RUNAWAY_DEPLOYMENT = int(F.RUNAWAY_DEPLOYMENT)
UNDERSCALED = int(F.UNDERSCALED)
QUOTA_EXHAUSTED = int(F.QUOTA_EXHAUSTED)
UNBOUND_PVC = int(F.UNBOUND_PVC)
DNS_FAILURE = int(F.DNS_FAILURE)
OVERPROVISIONED = int(F.OVERPROVISIONED)

RESTART_FAILED_PODS = int(A.RESTART_FAILED_PODS)
SCALE_UP_DEPLOYMENT = int(A.SCALE_UP_DEPLOYMENT)
SCALE_DOWN_DEPLOYMENT = int(A.SCALE_DOWN_DEPLOYMENT)
DRAIN_NODE = int(A.DRAIN_NODE)
UNCORDON_NODE = int(A.UNCORDON_NODE)
WAIT = int(A.WAIT)
assert (
    {RESTART_FAILED_PODS, SCALE_UP_DEPLOYMENT, SCALE_DOWN_DEPLOYMENT, DRAIN_NODE, UNCORDON_NODE}
    == set(range(RESTART_FAILED_PODS, UNCORDON_NODE + 1))
    == set(REMEDIATION_ACTIONS)
)

# Columns of `Clusters.shape` (per-cluster integers drawn at reset).
NODES, DEPLOYMENTS, PODS, REPLICAS, POD_CAPACITY, PODS_PER_NODE, STEP = range(7)
NUM_SHAPE = 7

# Columns of the raw state arrays (`truth` and `seen`): the ClusterState fields, in order.
(
    S_NODES,
    S_READY,
    S_NOT_READY,
    S_PODS,
    S_RUNNING,
    S_PENDING,
    S_FAILED,
    S_UNKNOWN,
    S_DEPLOYMENTS,
    S_AVAILABLE,
    S_UNAVAILABLE,
    S_CPU,
    S_MEM,
    S_WARN,
    S_NORMAL,
    S_PVC,
    S_NETWORK,
    S_PRESSURE,
) = range(OBS_SIZE)

# Indices into the float parameter vector built by `scenario_params`.
(
    P_MIN_NODES,
    P_MAX_NODES,
    P_MIN_DEPLOYMENTS,
    P_MAX_DEPLOYMENTS,
    P_MIN_REPLICAS,
    P_MAX_REPLICAS,
    P_MIN_LOAD,
    P_MAX_LOAD,
    P_MIN_FAULTS,
    P_MAX_FAULTS,
    P_NEW_FAULT_RATE,
    P_MAX_STEPS,
    P_CASCADE_CHANCE,
) = range(13)
NUM_PARAMS = 13

# Reward components (see `REWARD_*` below), reported per step.
R_STEP, R_RESOLVED, R_REVEALED, R_DEGRADED, R_INDUCED, R_TERMINAL = range(6)
NUM_REWARD_PARTS = 6
REWARD_PART_NAMES = ("step", "resolved", "revealed", "degradation", "induced", "terminal")

REWARD_STEP = -0.03  # every step costs a little: finish quickly
REWARD_RESOLVED = 0.4  # per fault fixed
REWARD_REVEALED = 0.2  # per human-only fault diagnosed
REWARD_DEGRADED = -1.0  # times the drop in cluster health (0..1)
REWARD_INDUCED = -2.0  # per wrong object a remedy acted on (a healthy node drained, ...): worth ~70 reads
REWARD_HEALTHY = 0.5  # WAIT on a cluster with nothing left for the agent: the episode is won
REWARD_EARLY_WAIT = -0.1  # WAIT while something the agent could fix or find is still there
REWARD_CATASTROPHE = -1.0  # no node left Ready

# Outcome codes written for each finished episode.
OUTCOME_RUNNING, OUTCOME_RESOLVED, OUTCOME_CATASTROPHE, OUTCOME_TRUNCATED = 0, 1, 2, 3

EVICTION_DELAY = 5  # steps a NotReady node's pods stay Unknown before they are evicted
LASTING_HARM_CHANCE = 0.5  # a blind drain, restart or scale-down breaks something only a human can mend
WAIT_TICKS = 5  # a WAIT that does not end the episode lets this many steps' worth of time pass
OOM_RECUR = 3  # steps until restarted OOMKilled pods are killed again
PRESSURE_RECUR = 2  # steps between evictions on a pressured node
CPU_SCALE = 40.0  # node-average CPU% at full utilisation of a healthy cluster
MEM_SCALE = 40.0
HOTSPOT = 40.0  # extra CPU% or memory% a hot workload or a pressured node shows

FAULT_MASK_SIZE = 1 << NUM_FAULTS

# Columns of `Clusters.usage`: CPU and memory % as `kubectl top nodes` shows them (node averages:
# a pressured node stands out) and as `kubectl top pods` shows them (pods against their requests
# and limits: a hot deployment, pods at their memory limit stand out).
USAGE_NODE_CPU, USAGE_NODE_MEM, USAGE_POD_CPU, USAGE_POD_MEM = range(4)
TOP_NODES = int(A.TOP_NODES)
TOP_PODS = int(A.TOP_PODS)

# Which diagnostic reads identify each fault (tell it apart from its look-alikes). Remedies and
# WAIT identify nothing: what a remedy breaks is found only by these reads.
_REVEALED_BY = {
    A.GET_NODES: (F.NODE_NOT_READY, F.NODE_CORDONED),
    A.GET_EVENTS: (F.UNBOUND_PVC,),
    A.GET_DEPLOYMENTS: (F.RUNAWAY_DEPLOYMENT, F.UNDERSCALED, F.OVERPROVISIONED),
    A.CHECK_LOGS: (F.CRASHED_PODS, F.BAD_ROLLOUT, F.DNS_FAILURE),
    A.DESCRIBE_UNHEALTHY: (
        F.CRASHED_PODS,
        F.BAD_ROLLOUT,
        F.OOM_KILLED,
        F.NODE_NOT_READY,
        F.NODE_PRESSURE,
        F.UNBOUND_PVC,
    ),
    A.TOP_NODES: (F.NODE_PRESSURE,),
    A.TOP_PODS: (F.OOM_KILLED, F.RUNAWAY_DEPLOYMENT, F.UNDERSCALED, F.OVERPROVISIONED),
    A.GET_RESOURCE_QUOTAS: (F.QUOTA_EXHAUSTED,),
}
REVEAL_MASK = np.zeros(NUM_ACTIONS, dtype=np.int64)
for _action, _faults in _REVEALED_BY.items():
    for _fault in _faults:
        REVEAL_MASK[_action] |= 1 << _fault

# The observation fields each read refreshes (an inclusive range of state columns; -1: none).
# Every read also refreshes the three flags. Remedies and WAIT refresh nothing. TOP_NODES and
# TOP_PODS refresh CPU and memory with their own view (see `USAGE_*`).
_REFRESHES = {
    A.GET_NODES: (S_NODES, S_NOT_READY),
    A.GET_PODS: (S_PODS, S_UNKNOWN),
    A.DESCRIBE_UNHEALTHY: (S_PODS, S_UNKNOWN),
    A.GET_DEPLOYMENTS: (S_DEPLOYMENTS, S_UNAVAILABLE),
    A.GET_EVENTS: (S_WARN, S_NORMAL),
}
READS = frozenset(A) - REMEDIATION_ACTIONS - {A.WAIT}
IS_READ = np.array([a in READS for a in A], dtype=np.bool_)
REFRESH_LO = np.full(NUM_ACTIONS, -1, dtype=np.int64)
REFRESH_HI = np.full(NUM_ACTIONS, -1, dtype=np.int64)
for _action, (_lo, _hi) in _REFRESHES.items():
    REFRESH_LO[_action], REFRESH_HI[_action] = _lo, _hi
# The observation entries each read rewrites (the same columns; TOP_* their CPU and memory).
ENCODE_FIRST, ENCODE_LAST = REFRESH_LO.copy(), REFRESH_HI.copy()
ENCODE_FIRST[A.TOP_NODES] = ENCODE_FIRST[A.TOP_PODS] = S_CPU
ENCODE_LAST[A.TOP_NODES] = ENCODE_LAST[A.TOP_PODS] = S_MEM


def _mask(faults) -> int:
    return sum(1 << int(f) for f in faults)


HUMAN_ONLY_MASK = _mask(HUMAN_ONLY)
FIXABLE_MASK = (FAULT_MASK_SIZE - 1) & ~HUMAN_ONLY_MASK
NODE_FAULTS_MASK = _mask((F.NODE_NOT_READY, F.NODE_CORDONED, F.NODE_PRESSURE))
WHOLE_DEPLOYMENT_MASK = _mask((F.BAD_ROLLOUT, F.UNDERSCALED, F.QUOTA_EXHAUSTED))
# Faults whose failed pods a restart acts on once the agent knows why they fail.
FAILING_PODS_MASK = _mask((F.CRASHED_PODS, F.BAD_ROLLOUT, F.OOM_KILLED, F.NODE_PRESSURE))
# Faults mended unit by unit (a node, a deployment) or caused by the agent: their repairs are
# rewarded per unit, so that breaking something and mending it again never pays.
INDUCIBLE_MASK = _mask((F.NODE_CORDONED, F.UNDERSCALED, F.OVERPROVISIONED))

# Warning events per step while a fault is active (BackOff, FailedScheduling, Evicted, ...),
# summed over every fault set in advance so the step loop does one lookup.
_WARNINGS_PER_STEP = {
    F.CRASHED_PODS: 1.0,
    F.BAD_ROLLOUT: 3.0,
    F.OOM_KILLED: 2.0,
    F.NODE_NOT_READY: 2.0,
    F.NODE_CORDONED: 0.0,
    F.NODE_PRESSURE: 2.0,
    F.RUNAWAY_DEPLOYMENT: 1.5,
    F.UNDERSCALED: 1.0,
    F.QUOTA_EXHAUSTED: 2.0,
    F.UNBOUND_PVC: 1.0,
    F.DNS_FAILURE: 2.0,
    F.OVERPROVISIONED: 0.5,
}
assert set(_WARNINGS_PER_STEP) == set(Fault)
WARNINGS_BY_MASK = np.array(
    [sum(w for f, w in _WARNINGS_PER_STEP.items() if m >> f & 1) for m in range(FAULT_MASK_SIZE)],
    dtype=np.float32,
)
POPCOUNT = np.array([bin(m).count("1") for m in range(FAULT_MASK_SIZE)], dtype=np.int32)

# The state of N clusters, one row each. `params` and `weights` are the scenario; the last seven
# arrays are per-step outputs beyond PufferLib's buffers and the record of the episode that ended.
Clusters = namedtuple(
    "Clusters",
    (
        "rng",  # uint64: one splitmix64 stream per cluster
        "shape",  # int32 (n, NUM_SHAPE): sizes drawn at reset, and the step count
        "load",  # float32: the share of pod capacity a healthy cluster uses
        "active",  # int64: fault bit masks (bit f = Fault f)
        "revealed",  # int64: faults identified by a read, while they last
        "caused",  # int64: faults only a human can fix that the agent's own blind remedies caused
        "size",  # int32 (n, NUM_FAULTS): each fault's extent (pods, nodes, deployments, replicas)
        "timer",  # int32 (n, NUM_FAULTS): steps since it started, or until it recurs
        "events",  # float32 (n, 2): warning and normal events in the recent window
        "truth",  # float32 (n, OBS_SIZE): the cluster as it is, in ClusterState units
        "usage",  # float32 (n, 4): CPU and memory as each `kubectl top` shows them (USAGE_*)
        "seen",  # float32 (n, OBS_SIZE): what the agent has read of it
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
        "final_active",  # and the faults still active at the end
    ),
)


def fault_list(mask: int) -> list[Fault]:
    """The faults set in a mask."""
    return [f for f in Fault if int(mask) >> f & 1]


def scenario_params(config: ScenarioConfig) -> tuple[np.ndarray, np.ndarray]:
    """The scenario as the float vector and fault-weight vector the kernels read."""
    params = np.zeros(NUM_PARAMS, dtype=np.float64)
    params[P_MIN_NODES], params[P_MAX_NODES] = config.min_nodes, config.max_nodes
    params[P_MIN_DEPLOYMENTS], params[P_MAX_DEPLOYMENTS] = config.min_deployments, config.max_deployments
    params[P_MIN_REPLICAS], params[P_MAX_REPLICAS] = config.min_replicas, config.max_replicas
    params[P_MIN_LOAD], params[P_MAX_LOAD] = config.min_load, config.max_load
    params[P_MIN_FAULTS], params[P_MAX_FAULTS] = config.min_faults, config.max_faults
    params[P_NEW_FAULT_RATE] = config.new_fault_rate
    params[P_MAX_STEPS] = config.max_steps
    params[P_CASCADE_CHANCE] = config.cascade_chance
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
            active=np.zeros(n, dtype=np.int64),
            revealed=np.zeros(n, dtype=np.int64),
            caused=np.zeros(n, dtype=np.int64),
            size=np.zeros((n, NUM_FAULTS), dtype=np.int32),
            timer=np.zeros((n, NUM_FAULTS), dtype=np.int32),
            events=np.zeros((n, 2), dtype=np.float32),
            truth=np.zeros((n, OBS_SIZE), dtype=np.float32),
            usage=np.zeros((n, 4), dtype=np.float32),
            seen=np.zeros((n, OBS_SIZE), dtype=np.float32),
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
        )

    def __getattr__(self, name):
        # batch.active, batch.truth, ...: the arrays of the state, by name.
        state = self.__dict__.get("state")
        if state is not None and name in Clusters._fields:
            return getattr(state, name)
        raise AttributeError(name)

    def seed(self, seed: int) -> None:
        """Give cluster i the stream of a single cluster seeded with `seed + i`."""
        seed_streams(self.state.rng, np.uint64(int(seed) % 2**64))

    def reset(self, observations: np.ndarray) -> None:
        """Start a new episode in every cluster and write the first observations."""
        reset_all(self.state, observations)

    def step(self, actions, observations, rewards, terminals, truncations, auto_reset: bool, named=None) -> None:
        """Apply one action per cluster; write observations, rewards and episode ends in place.

        `named` (int64 per cluster, one bit per `Fault`) is what the agent names as wrong with each
        cluster at this step: a WAIT ends the episode as resolved only if it covers every active
        human-only fault. None takes the faults the agent's reads have identified (`revealed`).
        """
        named = self.state.revealed if named is None else np.asarray(named, dtype=np.int64)
        step_all(
            self.state,
            np.asarray(actions, dtype=np.int32),
            observations,
            rewards,
            terminals,
            truncations,
            auto_reset,
            named,
        )


StepBuffers = namedtuple("StepBuffers", ["observations", "rewards", "terminals", "truncations"])


def started_batch(num_clusters: int, scenario: ScenarioConfig, seed: int) -> tuple[ClusterBatch, StepBuffers]:
    """N clusters seeded `seed`, `seed + 1`, ..., reset, and the buffers `ClusterBatch.step` writes
    into (holding the first observations)."""
    batch = ClusterBatch(num_clusters, scenario)
    batch.seed(seed)
    buffers = StepBuffers(
        np.zeros((num_clusters, OBS_SIZE), dtype=np.float32),
        np.zeros(num_clusters, dtype=np.float32),
        np.zeros(num_clusters, dtype=bool),
        np.zeros(num_clusters, dtype=bool),
    )
    batch.reset(buffers.observations)
    return batch, buffers


# ---------------------------------------------------------------------------------------------
# Random numbers: one splitmix64 stream per cluster.

# Only the entry points (`seed_streams`, `reset_all`, `step_all`) are cached. The helpers they call
# are compiled with them, so they can be inlined; a helper loaded from the cache on its own would be
# called through its full signature, every array of the `Clusters` tuple passed one by one.
# Fast math without `reassoc`: sums are added in the order written, so a trajectory does not depend on
# how LLVM optimised a kernel in one place or another (with it, the kernels a process compiled and the
# same kernels loaded from the cache gave rewards one float32 ulp apart).
COMPILED = {"error_model": "numpy", "fastmath": {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}}
JIT = {**COMPILED, "cache": True}
# The per-cluster helpers only index arrays their caller holds: compiled without numba's reference
# counting (`_nrt`), they borrow them. With it, every helper call took and dropped a reference to
# each array it was passed (an atomic add each), and that was half the time of a step. Numba
# refuses to compile an allocation without it, so a helper cannot come to own an array unnoticed.
HELPER = {**COMPILED, "_nrt": False}
# The parts of a step (the action, time passing, the true state, what a read shows) are inlined into
# the step loop by numba: LLVM keeps them as calls (they are large), and each call passed every array
# field by field on the stack.
STEP_PART = {**HELPER, "inline": "always"}


@njit(**HELPER)
def _next_u64(rng, i):
    rng[i] += np.uint64(0x9E3779B97F4A7C15)
    z = rng[i]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(**HELPER)
def _uniform(rng, i):
    return float(_next_u64(rng, i) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(**HELPER)
def _randint(rng, i, low, high):
    """Uniform integer in [low, high] inclusive."""
    return low + int(_uniform(rng, i) * (high - low + 1))


@njit(**HELPER)
def _log_uniform_int(u, low, high):
    """The integer at quantile u of a log-uniform distribution on [low, high]."""
    value = int(np.exp(np.log(low) + u * (np.log(high + 1.0) - np.log(low))))
    return min(int(high), max(int(low), value))


@njit(**JIT)
def seed_streams(rng, seed):
    for i in range(rng.shape[0]):
        # Scramble seed + i once so that neighbouring seeds give unrelated streams.
        rng[i] = seed + np.uint64(i)
        rng[i] = _next_u64(rng, i)


# ---------------------------------------------------------------------------------------------
# Faults.


@njit(**HELPER)
def _has(mask, f):
    return (mask >> f) & 1 == 1


@njit(**HELPER)
def _fault_fits(shape, active, i, f):
    if f == OVERPROVISIONED:  # only ever caused by the agent
        return False
    if (WHOLE_DEPLOYMENT_MASK >> f) & 1:  # faults that take a whole deployment leave two healthy
        return shape[i, DEPLOYMENTS] - POPCOUNT[active[i] & WHOLE_DEPLOYMENT_MASK] >= 3
    if (NODE_FAULTS_MASK >> f) & 1:  # node faults leave at least two nodes healthy
        return shape[i, NODES] - POPCOUNT[active[i] & NODE_FAULTS_MASK] >= 3
    return True


@njit(**HELPER)
def _inject_fault(rng, shape, active, size, timer, weights, i):
    """Start one new fault in cluster i, drawn by weight among those that fit. False if none does."""
    total = 0.0
    for f in range(weights.shape[0]):
        if weights[f] > 0.0 and not _has(active[i], f) and _fault_fits(shape, active, i, f):
            total += weights[f]
    if total <= 0.0:
        return False
    pick = _uniform(rng, i) * total
    chosen = -1
    for f in range(weights.shape[0]):
        if weights[f] > 0.0 and not _has(active[i], f) and _fault_fits(shape, active, i, f):
            chosen = f
            pick -= weights[f]
            if pick < 0.0:
                break
    _start_fault(rng, shape, active, size, timer, i, chosen)
    return True


@njit(**HELPER)
def _start_fault(rng, shape, active, size, timer, i, f):
    replicas = shape[i, REPLICAS]
    pods = shape[i, PODS]
    active[i] |= 1 << f
    timer[i, f] = 0
    if f == CRASHED_PODS:  # a few pods spread over deployments
        size[i, f] = _randint(rng, i, 1, max(1, pods // 10))
    elif f == BAD_ROLLOUT:  # every replica of one deployment
        size[i, f] = replicas
    elif f == OOM_KILLED or f == QUOTA_EXHAUSTED or f == UNBOUND_PVC:
        size[i, f] = _randint(rng, i, 1, replicas)
    elif f == RUNAWAY_DEPLOYMENT:  # extra replicas, enough to overflow capacity
        free = shape[i, NODES] * shape[i, POD_CAPACITY] - pods
        size[i, f] = free + _randint(rng, i, replicas, 3 * replicas)
    elif f == DNS_FAILURE:  # deployments whose readiness depends on DNS
        size[i, f] = _randint(rng, i, 2, max(2, shape[i, DEPLOYMENTS] // 3))
    else:  # one node (NOT_READY, CORDONED, PRESSURE: evictions start with one pod), one deployment
        size[i, f] = 1


@njit(**HELPER)
def _induce(active, revealed, size, timer, i, f, amount):
    """The agent's remedy broke something of kind f. It stays hidden until a read of that kind
    finds it (and a reading of that kind taken before is stale now)."""
    if not _has(active[i], f):
        timer[i, f] = 0
    active[i] |= 1 << f
    revealed[i] &= ~(1 << f)
    size[i, f] += amount


@njit(**HELPER)
def _cascade(rng, shape, active, size, timer, i, cause, effect, chance):
    """While `cause` lasts, each step it may set off `effect` (if that is not already happening)."""
    if _has(active[i], cause) and not _has(active[i], effect) and _fault_fits(shape, active, i, effect):
        if _uniform(rng, i) < chance:
            _start_fault(rng, shape, active, size, timer, i, effect)


# ---------------------------------------------------------------------------------------------
# Episode start.


@njit(**COMPILED)
def _reset_one(st, i, observations):
    rng, shape, params = st.rng, st.shape, st.params
    # Sizes are log-uniform; the number of deployments grows with the number of nodes.
    u = _uniform(rng, i)
    nodes = _log_uniform_int(u, params[P_MIN_NODES], params[P_MAX_NODES])
    u_deployments = min(1.0, max(0.0, u + 0.3 * (_uniform(rng, i) - 0.5)))
    deployments = _log_uniform_int(u_deployments, params[P_MIN_DEPLOYMENTS], params[P_MAX_DEPLOYMENTS])
    pods = 0
    for _ in range(deployments):
        pods += _randint(rng, i, int(params[P_MIN_REPLICAS]), int(params[P_MAX_REPLICAS]))
    st.load[i] = params[P_MIN_LOAD] + _uniform(rng, i) * (params[P_MAX_LOAD] - params[P_MIN_LOAD])
    shape[i, NODES] = nodes
    shape[i, DEPLOYMENTS] = deployments
    shape[i, PODS] = pods
    shape[i, REPLICAS] = max(1, (pods + deployments - 1) // deployments)
    # Pod slots per node: a healthy cluster runs at `load` of its capacity.
    shape[i, POD_CAPACITY] = max(1, int(np.ceil(pods / (nodes * max(st.load[i], 0.05)))))
    shape[i, PODS_PER_NODE] = (pods + nodes - 1) // nodes
    shape[i, STEP] = 0
    st.active[i] = 0
    st.revealed[i] = 0
    st.caused[i] = 0
    for f in range(st.size.shape[1]):
        st.size[i, f] = 0
        st.timer[i, f] = 0
    num_faults = _randint(rng, i, int(params[P_MIN_FAULTS]), int(params[P_MAX_FAULTS]))
    for _ in range(num_faults):
        _inject_fault(rng, shape, st.active, st.size, st.timer, st.weights, i)
    st.events[i, 0] = 0.0
    st.events[i, 1] = 5.0 + _uniform(rng, i) * 10.0
    _compute_truth(shape, st.active, st.revealed, st.size, st.timer, st.events, st.truth, st.usage, i)
    st.health[i] = _health(st.truth, i)
    st.episode_return[i] = 0.0
    st.harmful[i] = 0
    # The first look is a summary of `kubectl get nodes,pods`: counts, no object singled out yet.
    seen = st.seen
    for k in range(seen.shape[1]):
        seen[i, k] = 0.0
    for k in range(S_NODES, S_UNKNOWN + 1):
        seen[i, k] = st.truth[i, k]
    encode_observation(seen[i], observations[i])


@njit(**JIT)
def reset_all(st, observations):
    for i in range(st.shape.shape[0]):
        _reset_one(st, i, observations)


# ---------------------------------------------------------------------------------------------
# The true state of a cluster, derived from its shape and active faults.


@njit(**STEP_PART)
def _compute_truth(shape, active, revealed, size, timer, events, truth, usage, i):
    faults = active[i]
    found = faults & revealed[i]
    nodes = shape[i, NODES]
    deployments = shape[i, DEPLOYMENTS]

    not_ready = 1 if _has(faults, NODE_NOT_READY) else 0
    cordoned = size[i, NODE_CORDONED] if _has(faults, NODE_CORDONED) else 0
    pressured = _has(faults, NODE_PRESSURE)
    schedulable = max(0, nodes - not_ready - cordoned)
    capacity = schedulable * shape[i, POD_CAPACITY]

    # Pod objects that want a node: the desired pods, plus runaway or over-provisioned replicas,
    # minus the replicas a quota refuses to create.
    demand = shape[i, PODS]
    if _has(faults, RUNAWAY_DEPLOYMENT):
        demand += size[i, RUNAWAY_DEPLOYMENT]
    if _has(faults, OVERPROVISIONED):
        demand += size[i, OVERPROVISIONED]
    if _has(faults, QUOTA_EXHAUSTED):
        demand -= size[i, QUOTA_EXHAUSTED]

    unknown = 0
    if not_ready and timer[i, NODE_NOT_READY] < EVICTION_DELAY:
        unknown = shape[i, PODS_PER_NODE]  # still bound to the dead node
    pvc_pending = size[i, UNBOUND_PVC] if _has(faults, UNBOUND_PVC) else 0
    to_schedule = max(0, demand - unknown - pvc_pending)
    capacity_pending = max(0, to_schedule - capacity)
    scheduled = to_schedule - capacity_pending

    failed = 0
    if _has(faults, CRASHED_PODS):
        failed += size[i, CRASHED_PODS]
    if _has(faults, BAD_ROLLOUT):
        failed += size[i, BAD_ROLLOUT]
    if _has(faults, OOM_KILLED):
        failed += size[i, OOM_KILLED]
    if pressured:
        failed += size[i, NODE_PRESSURE]
    failed = min(failed, scheduled)

    unavailable = _has(faults, BAD_ROLLOUT) + _has(faults, QUOTA_EXHAUSTED)
    if _has(faults, UNDERSCALED):
        unavailable += size[i, UNDERSCALED]
    if _has(faults, DNS_FAILURE):
        unavailable += size[i, DNS_FAILURE]
    if capacity_pending > shape[i, REPLICAS]:
        unavailable += 1
    unavailable = min(unavailable, deployments)

    utilisation = min(1.0, scheduled / max(1, capacity))
    node_mem = MEM_SCALE * utilisation + (HOTSPOT if pressured else 0.0)
    pod_cpu = CPU_SCALE * utilisation
    if _has(faults, RUNAWAY_DEPLOYMENT) or _has(faults, UNDERSCALED):
        pod_cpu += HOTSPOT
    if _has(faults, OVERPROVISIONED):
        pod_cpu += HOTSPOT / 2
    pod_mem = MEM_SCALE * utilisation + (HOTSPOT if _has(faults, OOM_KILLED) else 0.0)
    usage[i, USAGE_NODE_CPU] = CPU_SCALE * utilisation
    usage[i, USAGE_NODE_MEM] = min(100.0, node_mem)
    usage[i, USAGE_POD_CPU] = min(100.0, pod_cpu)
    usage[i, USAGE_POD_MEM] = min(100.0, pod_mem)
    cpu = pod_cpu
    mem = node_mem + pod_mem - MEM_SCALE * utilisation

    truth[i, S_NODES] = nodes
    truth[i, S_READY] = schedulable
    truth[i, S_NOT_READY] = not_ready
    truth[i, S_PODS] = scheduled + pvc_pending + capacity_pending + unknown
    truth[i, S_RUNNING] = scheduled - failed
    truth[i, S_PENDING] = capacity_pending + pvc_pending
    truth[i, S_FAILED] = failed
    truth[i, S_UNKNOWN] = unknown
    truth[i, S_DEPLOYMENTS] = deployments
    truth[i, S_AVAILABLE] = deployments - unavailable
    truth[i, S_UNAVAILABLE] = unavailable
    truth[i, S_CPU] = min(100.0, cpu)
    truth[i, S_MEM] = min(100.0, mem)
    truth[i, S_WARN] = np.floor(events[i, 0] + 0.5)  # events are counted, not averaged
    truth[i, S_NORMAL] = np.floor(events[i, 1] + 0.5)
    # The flags show what a diagnostic found, for as long as its cause lasts.
    truth[i, S_PVC] = 1.0 if _has(found, UNBOUND_PVC) else 0.0
    truth[i, S_NETWORK] = 1.0 if _has(found, DNS_FAILURE) else 0.0
    truth[i, S_PRESSURE] = 1.0 if _has(found, NODE_PRESSURE) or _has(found, QUOTA_EXHAUSTED) else 0.0


@njit(**HELPER)
def _health(truth, i):
    """Cluster health in [0, 1]: the share of pods running, deployments available, nodes ready."""
    pods = max(1.0, truth[i, S_PODS])
    deployments = max(1.0, truth[i, S_DEPLOYMENTS])
    nodes = max(1.0, truth[i, S_NODES])
    return (
        0.4 * truth[i, S_RUNNING] / pods + 0.4 * truth[i, S_AVAILABLE] / deployments + 0.2 * truth[i, S_READY] / nodes
    )


# ---------------------------------------------------------------------------------------------
# One step.


@njit(**HELPER)
def _resolve(active, revealed, size, timer, i, f):
    """Fault f is over. If it comes back, it is news again (and counts against the agent again)."""
    active[i] &= ~(1 << f)
    revealed[i] &= ~(1 << f)
    size[i, f] = 0
    timer[i, f] = 0
    return 1 << f


@njit(**HELPER)
def _mend_unit(active, revealed, size, timer, i, f):
    """One unit of fault f (a node, a deployment) is mended; the fault is over with its last unit."""
    size[i, f] -= 1
    if size[i, f] <= 0:
        return _resolve(active, revealed, size, timer, i, f)
    return 0


@njit(**STEP_PART)
def _apply_action(rng, shape, active, revealed, caused, size, timer, i, action):
    """Apply a remedy to the true state. Returns (faults fixed, units repaired, wrong objects hit).

    A remedy acts on the object the agent has identified (`revealed`): the deployment a read showed
    to be short of replicas, the node a read showed NotReady. Identified the wrong way round (a
    runaway deployment scaled up), it makes that object worse. With nothing identified it acts on
    a plausible but wrong object, as `kubectl drain` on a node picked blind would, and the damage is
    hidden (see `_induce`).
    """
    fixed = 0
    repairs = 0
    damage = 0
    faults = active[i]
    known = faults & revealed[i]
    replicas = shape[i, REPLICAS]
    if action == RESTART_FAILED_PODS:
        if known & FAILING_PODS_MASK:  # it knows why pods fail: it deletes the Failed ones
            if _has(faults, CRASHED_PODS):
                fixed |= _resolve(active, revealed, size, timer, i, CRASHED_PODS)
            if _has(faults, OOM_KILLED) and timer[i, OOM_KILLED] >= 0:  # they come back, for a while
                size[i, OOM_KILLED] = 0
                timer[i, OOM_KILLED] = -OOM_RECUR
            if _has(faults, NODE_PRESSURE):  # evicted pods land on the pressured node again
                size[i, NODE_PRESSURE] = 0
                timer[i, NODE_PRESSURE] = 0
            # CrashLoopBackOff pods of a bad rollout crash again: nothing changes.
        else:  # healthy pods restarted: their in-flight work is lost
            damage += 1
            if _uniform(rng, i) < LASTING_HARM_CHANCE:
                # The restart rolled a deployment onto a config change nobody had rolled out yet:
                # CrashLoopBackOff, and only its owner can roll it back.
                _induce(active, revealed, size, timer, i, BAD_ROLLOUT, replicas)
                caused[i] |= 1 << BAD_ROLLOUT
            else:  # the pods come back cold and fail readiness under the load
                _induce(active, revealed, size, timer, i, UNDERSCALED, 1)
    elif action == SCALE_UP_DEPLOYMENT:
        if _has(known, UNDERSCALED):
            repairs += 1
            fixed |= _mend_unit(active, revealed, size, timer, i, UNDERSCALED)
        elif _has(known, OOM_KILLED):
            fixed |= _resolve(active, revealed, size, timer, i, OOM_KILLED)
        elif _has(known, RUNAWAY_DEPLOYMENT):  # the runaway grows: more Pending pods
            damage += 1
            size[i, RUNAWAY_DEPLOYMENT] += replicas
        elif _has(known, OVERPROVISIONED):
            damage += 1
            size[i, OVERPROVISIONED] += 2 * replicas
        elif _has(faults, QUOTA_EXHAUSTED):
            damage += 1  # the quota-blocked deployment asks for more: more FailedCreate, nothing gained
        else:
            damage += 1
            _induce(active, revealed, size, timer, i, OVERPROVISIONED, 2 * replicas)
    elif action == SCALE_DOWN_DEPLOYMENT:
        if _has(known, RUNAWAY_DEPLOYMENT):
            fixed |= _resolve(active, revealed, size, timer, i, RUNAWAY_DEPLOYMENT)
        elif _has(known, OVERPROVISIONED):
            fixed |= _resolve(active, revealed, size, timer, i, OVERPROVISIONED)
        elif _has(known, UNDERSCALED):  # the short deployment loses one more replica
            damage += 1
            size[i, UNDERSCALED] += 1
        elif _has(known, OOM_KILLED):  # fewer replicas share the load: more of them OOMKilled
            damage += 1
            size[i, OOM_KILLED] += 1
        else:  # a healthy deployment loses a replica
            damage += 1
            _induce(active, revealed, size, timer, i, UNDERSCALED, 1)
            if _uniform(rng, i) < LASTING_HARM_CHANCE:
                # It was a quorum-based StatefulSet: below quorum its members crash-loop, and only
                # its owner can recover the data.
                _induce(active, revealed, size, timer, i, BAD_ROLLOUT, replicas)
                caused[i] |= 1 << BAD_ROLLOUT
    elif action == DRAIN_NODE:
        if _has(known, NODE_NOT_READY):
            fixed |= _resolve(active, revealed, size, timer, i, NODE_NOT_READY)  # pods rescheduled, node replaced
        elif _has(known, NODE_PRESSURE):
            fixed |= _resolve(active, revealed, size, timer, i, NODE_PRESSURE)
            _induce(
                active, revealed, size, timer, i, NODE_CORDONED, 1
            )  # recovered, but cordoned until someone uncordons it
            repairs -= 1  # its uncordon is part of this fix, not a repair of its own
        else:  # a healthy node drained: its pods evicted, the node left cordoned
            damage += 1
            _induce(active, revealed, size, timer, i, NODE_CORDONED, 1)
            if _uniform(rng, i) < LASTING_HARM_CHANCE:
                # One of its pods had a local PersistentVolume: it cannot run anywhere else, and
                # only a human can move its data.
                _induce(active, revealed, size, timer, i, UNBOUND_PVC, 1)
                caused[i] |= 1 << UNBOUND_PVC
    elif action == UNCORDON_NODE:
        if _has(known, NODE_CORDONED):
            repairs += 1
            fixed |= _mend_unit(active, revealed, size, timer, i, NODE_CORDONED)
        # With no cordoned node identified, `kubectl uncordon` of a schedulable node changes nothing.
    if action >= RESTART_FAILED_PODS and action <= UNCORDON_NODE:
        # The cluster changed: which object was which must be read again (a diagnosis of what only
        # a human can fix stands).
        revealed[i] &= HUMAN_ONLY_MASK
    return fixed, repairs, damage


@njit(**STEP_PART)
def _advance_faults(rng, shape, active, size, timer, events, i, chance):
    """Time passes: faults left alone get worse and set off others, events accumulate and age."""
    # A dead node's evicted pods crowd the others into pressure; a runaway or an overloaded
    # deployment starves its neighbours into OOM kills; evictions and failed lookups crash pods.
    if _has(active[i], NODE_NOT_READY) and timer[i, NODE_NOT_READY] >= EVICTION_DELAY:
        _cascade(rng, shape, active, size, timer, i, NODE_NOT_READY, NODE_PRESSURE, chance)
    if size[i, NODE_CORDONED] >= 2:  # several cordoned nodes crowd the rest the same way
        _cascade(rng, shape, active, size, timer, i, NODE_CORDONED, NODE_PRESSURE, chance)
    _cascade(rng, shape, active, size, timer, i, RUNAWAY_DEPLOYMENT, OOM_KILLED, chance)
    _cascade(rng, shape, active, size, timer, i, OVERPROVISIONED, OOM_KILLED, chance / 2)
    _cascade(rng, shape, active, size, timer, i, UNDERSCALED, OOM_KILLED, chance / 2)
    _cascade(rng, shape, active, size, timer, i, NODE_PRESSURE, CRASHED_PODS, chance)
    _cascade(rng, shape, active, size, timer, i, DNS_FAILURE, CRASHED_PODS, chance / 2)
    faults = active[i]
    events[i, 0] = events[i, 0] * 0.8 + WARNINGS_BY_MASK[faults]
    events[i, 1] = events[i, 1] * 0.8 + 2.0
    if _has(faults, NODE_NOT_READY):  # the NotReady node's pods wait for the eviction timeout
        timer[i, NODE_NOT_READY] += 1
    if _has(faults, OOM_KILLED) and timer[i, OOM_KILLED] < 0:  # restarted pods grow back to their limit
        timer[i, OOM_KILLED] += 1
        if timer[i, OOM_KILLED] == 0:
            size[i, OOM_KILLED] = max(1, shape[i, REPLICAS] // 2)
    if _has(faults, NODE_PRESSURE):  # the kubelet evicts one more pod every few steps
        timer[i, NODE_PRESSURE] += 1
        if timer[i, NODE_PRESSURE] >= PRESSURE_RECUR:
            timer[i, NODE_PRESSURE] = 0
            size[i, NODE_PRESSURE] = min(shape[i, PODS_PER_NODE], size[i, NODE_PRESSURE] + 1)


@njit(**STEP_PART)
def _refresh_seen(truth, usage, seen, i, action):
    """Copy what a read showed from the true state into the agent's view; the flags with it."""
    if action == TOP_NODES:
        seen[i, S_CPU] = usage[i, USAGE_NODE_CPU]
        seen[i, S_MEM] = usage[i, USAGE_NODE_MEM]
    elif action == TOP_PODS:
        seen[i, S_CPU] = usage[i, USAGE_POD_CPU]
        seen[i, S_MEM] = usage[i, USAGE_POD_MEM]
    lo = REFRESH_LO[action]
    if lo >= 0:
        for k in range(lo, REFRESH_HI[action] + 1):
            seen[i, k] = truth[i, k]
    for k in range(S_PVC, S_PRESSURE + 1):
        seen[i, k] = truth[i, k]


@njit(**HELPER)
def _nothing_left_for_the_agent(active, named, caused, i):
    """No fault the agent can fix is active, every fault only a human can fix is named by the
    agent, and none of those was caused by the agent itself."""
    left = (active[i] & FIXABLE_MASK) | (active[i] & HUMAN_ONLY_MASK & ~named[i]) | (active[i] & caused[i])
    return left == 0


@njit(**JIT)
def step_all(st, actions, observations, rewards, terminals, truncations, auto_reset, named):
    # The step loop takes the arrays one by one: a tuple of arrays live across its branches would
    # be reference-counted array by array at every one of them.
    ended = _step_loop(
        st.rng,
        st.shape,
        st.active,
        st.revealed,
        st.caused,
        st.size,
        st.timer,
        st.events,
        st.truth,
        st.usage,
        st.seen,
        st.health,
        st.harmful,
        st.reward_parts,
        st.step_harmful,
        st.resolved_now,
        st.outcome,
        st.episode_return,
        st.weights,
        st.params,
        actions,
        observations,
        rewards,
        terminals,
        truncations,
        named,
    )
    if ended:  # rare: record the episodes that ended, and start new ones
        _finish_episodes(st, observations, auto_reset)


@njit(**HELPER)
def _step_loop(
    rng,
    shape,
    active,
    revealed,
    caused,
    size,
    timer,
    events,
    truth,
    usage,
    seen,
    health,
    harmful,
    reward_parts,
    step_harmful,
    resolved_now,
    outcome,
    episode_return,
    weights,
    params,
    actions,
    observations,
    rewards,
    terminals,
    truncations,
    named,
):
    new_fault_rate = params[P_NEW_FAULT_RATE]
    max_faults = int(params[P_MAX_FAULTS])
    max_steps = int(params[P_MAX_STEPS])
    cascade_chance = params[P_CASCADE_CHANCE]
    ended = 0
    for i in range(shape.shape[0]):
        action = actions[i]
        parts = reward_parts[i]
        parts[R_STEP] = REWARD_STEP
        parts[R_RESOLVED] = 0.0
        parts[R_REVEALED] = 0.0
        parts[R_DEGRADED] = 0.0
        parts[R_INDUCED] = 0.0
        parts[R_TERMINAL] = 0.0
        resolved_now[i] = 0
        step_harmful[i] = 0
        shape[i, STEP] += 1
        outcome[i] = OUTCOME_RUNNING

        if action == WAIT and _nothing_left_for_the_agent(active, named, caused, i):
            # The agent says it is done, and it is: the episode is won. Nothing else happens.
            outcome[i] = OUTCOME_RESOLVED
            parts[R_TERMINAL] = REWARD_HEALTHY
        else:
            # 1. The action: a remedy changes the cluster.
            fixed, repairs, damage = _apply_action(rng, shape, active, revealed, caused, size, timer, i, action)
            before = active[i]

            # 2. Time passes (a while, when the agent waits); now and then something else breaks.
            for _ in range(WAIT_TICKS if action == WAIT else 1):
                _advance_faults(rng, shape, active, size, timer, events, i, cascade_chance)
                if _uniform(rng, i) < new_fault_rate and POPCOUNT[active[i]] < max_faults:
                    _inject_fault(rng, shape, active, size, timer, weights, i)
            # Faults that broke out this step on their own (cascades, new failures) count against
            # the agent like damage: fixing a symptom again and again while its cause lasts never pays.
            # (What the agent's own remedy broke is charged as damage, not here.)
            arrived = active[i] & ~before & ~revealed[i]

            # 3. A read identifies the faults it shows; what the cluster looks like now, and what
            # the agent sees of it.
            found = active[i] & ~revealed[i] & REVEAL_MASK[action]
            revealed[i] |= found
            _compute_truth(shape, active, revealed, size, timer, events, truth, usage, i)
            if IS_READ[action]:
                _refresh_seen(truth, usage, seen, i, action)

            new_health = _health(truth, i)
            parts[R_RESOLVED] = REWARD_RESOLVED * (POPCOUNT[fixed & ~INDUCIBLE_MASK] + repairs)
            parts[R_REVEALED] = REWARD_REVEALED * POPCOUNT[found & HUMAN_ONLY_MASK]
            parts[R_DEGRADED] = REWARD_DEGRADED * max(0.0, health[i] - new_health) - REWARD_RESOLVED * POPCOUNT[arrived]
            parts[R_INDUCED] = REWARD_INDUCED * damage
            health[i] = new_health
            resolved_now[i] = fixed
            step_harmful[i] = 1 if damage > 0 else 0
            harmful[i] += step_harmful[i]

            if truth[i, S_READY] <= 0:
                outcome[i] = OUTCOME_CATASTROPHE
                parts[R_TERMINAL] = REWARD_CATASTROPHE
            elif action == WAIT:
                parts[R_TERMINAL] = REWARD_EARLY_WAIT
            if outcome[i] == OUTCOME_RUNNING and shape[i, STEP] >= max_steps:
                outcome[i] = OUTCOME_TRUNCATED

        reward = parts[0] + parts[1] + parts[2] + parts[3] + parts[4] + parts[5]
        rewards[i] = reward
        terminals[i] = outcome[i] == OUTCOME_RESOLVED or outcome[i] == OUTCOME_CATASTROPHE
        truncations[i] = outcome[i] == OUTCOME_TRUNCATED
        episode_return[i] += reward
        if outcome[i] != OUTCOME_RUNNING:
            ended += 1
        elif IS_READ[action]:
            encode_observation(seen[i], observations[i], ENCODE_FIRST[action], ENCODE_LAST[action])
    return ended


@njit(**COMPILED)
def _finish_episodes(st, observations, auto_reset):
    # Only the few clusters whose episode ended are visited with the whole tuple in hand.
    for i in np.flatnonzero(st.outcome != OUTCOME_RUNNING):
        st.final_return[i] = st.episode_return[i]
        st.final_length[i] = st.shape[i, STEP]
        st.final_harmful[i] = st.harmful[i]
        st.final_health[i] = st.health[i]
        st.final_active[i] = st.active[i]
        if auto_reset:
            _reset_one(st, i, observations)
        else:
            encode_observation(st.seen[i], observations[i])
