"""The simulation core: N Kubernetes clusters stepped in one compiled loop.

State lives in flat numpy arrays owned by `ClusterBatch`, one row per cluster; the numba kernels
below update them in place and write observations, rewards and terminals straight into the
caller's buffers (PufferLib's shared buffers, or one row for `ClusterEnv`). Each cluster draws from
its own random stream (splitmix64), so cluster i of a batch seeded with s behaves exactly like a
single env seeded with s + i, whatever the other clusters do.

The fault table this implements is documented in `rl.sim.faults`.
"""

import numpy as np
from numba import njit

from rl.actions import NUM_ACTIONS, ClusterAction
from rl.sim.faults import HUMAN_ONLY, NUM_FAULTS, Fault
from rl.sim.scenario import ScenarioConfig
from rl.state import DEPLOYMENT_SCALE, EVENT_SCALE, NODE_SCALE, OBS_SIZE, POD_SCALE

# Columns of `ClusterBatch.shape` (per-cluster integers drawn at reset).
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
REWARD_INDUCED = -0.5  # per fault the agent caused (drained a healthy node, scaled a healthy deployment)
REWARD_HEALTHY = 0.5  # the episode ended with every fault fixed or diagnosed
REWARD_CATASTROPHE = -1.0  # no node left Ready

# Outcome codes written for each finished episode.
OUTCOME_RUNNING, OUTCOME_RESOLVED, OUTCOME_CATASTROPHE, OUTCOME_TRUNCATED = 0, 1, 2, 3

EVICTION_DELAY = 5  # steps a NotReady node's pods stay Unknown before they are evicted
OOM_RECUR = 3  # steps until restarted OOMKilled pods are killed again
PRESSURE_RECUR = 2  # steps between evictions on a pressured node
CPU_SCALE = 40.0  # node-average CPU% at full utilisation of a healthy cluster
MEM_SCALE = 40.0
HOTSPOT = 40.0  # extra CPU% or memory% a hot workload or a pressured node shows

# Fault sets are bit masks (bit f = Fault f), so the step loop tests and combines them in one op.
A = ClusterAction
F = Fault
FAULT_MASK_SIZE = 1 << NUM_FAULTS

# Which diagnostic actions reveal each fault.
_REVEALED_BY = {
    A.GET_NODES: (F.NODE_NOT_READY, F.NODE_CORDONED),
    A.DRAIN_NODE: (F.NODE_NOT_READY, F.NODE_CORDONED),  # both print the node list they acted on
    A.UNCORDON_NODE: (F.NODE_NOT_READY, F.NODE_CORDONED),
    A.GET_EVENTS: (F.QUOTA_EXHAUSTED, F.UNBOUND_PVC),
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
HUMAN_ONLY_MASK = sum(1 << f for f in HUMAN_ONLY)
NODE_FAULTS_MASK = (1 << F.NODE_NOT_READY) | (1 << F.NODE_CORDONED)
# Faults mended unit by unit (a node, a deployment): their repairs are rewarded per unit.
INDUCIBLE_MASK = (1 << F.NODE_CORDONED) | (1 << F.UNDERSCALED) | (1 << F.OVERPROVISIONED)

# Warning events per step while a fault is active (BackOff, FailedScheduling, Evicted, ...),
# summed over every fault set in advance so the step loop does one lookup.
_WARNINGS_PER_STEP = (1.0, 3.0, 2.0, 2.0, 0.0, 2.0, 1.5, 1.0, 2.0, 1.0, 2.0, 0.5)
assert len(_WARNINGS_PER_STEP) == NUM_FAULTS
WARNINGS_BY_MASK = np.array(
    [sum(w for f, w in enumerate(_WARNINGS_PER_STEP) if m >> f & 1) for m in range(FAULT_MASK_SIZE)],
    dtype=np.float32,
)
POPCOUNT = np.array([bin(m).count("1") for m in range(FAULT_MASK_SIZE)], dtype=np.int32)


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
    """The state of N simulated clusters, as flat arrays (one row per cluster)."""

    def __init__(self, num_clusters: int, scenario: ScenarioConfig | None = None):
        if num_clusters < 1:
            raise ValueError(f"num_clusters: must be >= 1, got {num_clusters}")
        self.scenario = scenario or ScenarioConfig()
        self.params, self.fault_weights = scenario_params(self.scenario)
        n = num_clusters
        self.num_clusters = n
        self.rng = np.zeros(n, dtype=np.uint64)
        self.shape = np.zeros((n, NUM_SHAPE), dtype=np.int32)
        self.load = np.zeros(n, dtype=np.float32)
        self.active = np.zeros(n, dtype=np.int64)  # fault bit masks
        self.revealed = np.zeros(n, dtype=np.int64)
        self.size = np.zeros((n, NUM_FAULTS), dtype=np.int32)
        self.timer = np.zeros((n, NUM_FAULTS), dtype=np.int32)
        self.events = np.zeros((n, 2), dtype=np.float32)
        self.truth = np.zeros((n, OBS_SIZE), dtype=np.float32)
        self.seen = np.zeros((n, OBS_SIZE), dtype=np.float32)
        self.health = np.zeros(n, dtype=np.float32)
        self.episode_return = np.zeros(n, dtype=np.float32)
        self.harmful = np.zeros(n, dtype=np.int32)
        # Per-step outputs beyond PufferLib's buffers.
        self.reward_parts = np.zeros((n, NUM_REWARD_PARTS), dtype=np.float32)
        self.step_harmful = np.zeros(n, dtype=np.int8)
        self.resolved_now = np.zeros(n, dtype=np.int64)  # faults the last action fixed
        # How the episode that ended on the last step went, per cluster.
        self.outcome = np.zeros(n, dtype=np.int8)
        self.final_return = np.zeros(n, dtype=np.float32)
        self.final_length = np.zeros(n, dtype=np.int32)
        self.final_harmful = np.zeros(n, dtype=np.int32)

    def seed(self, seed: int) -> None:
        """Give cluster i the stream of a single cluster seeded with `seed + i`."""
        seed_streams(self.rng, np.uint64(int(seed) % 2**64))

    def reset(self, observations: np.ndarray) -> None:
        """Start a new episode in every cluster and write the first observations."""
        reset_all(
            self.rng,
            self.shape,
            self.load,
            self.active,
            self.revealed,
            self.size,
            self.timer,
            self.events,
            self.truth,
            self.seen,
            self.health,
            self.episode_return,
            self.harmful,
            self.params,
            self.fault_weights,
            observations,
        )

    def step(self, actions, observations, rewards, terminals, truncations, auto_reset: bool) -> None:
        """Apply one action per cluster; write observations, rewards and episode ends in place."""
        step_all(
            np.asarray(actions, dtype=np.int32),
            self.rng,
            self.shape,
            self.load,
            self.active,
            self.revealed,
            self.size,
            self.timer,
            self.events,
            self.truth,
            self.seen,
            self.health,
            self.episode_return,
            self.harmful,
            self.params,
            self.fault_weights,
            REVEAL_MASK,
            WARNINGS_BY_MASK,
            POPCOUNT,
            observations,
            rewards,
            terminals,
            truncations,
            self.reward_parts,
            self.step_harmful,
            self.resolved_now,
            self.outcome,
            self.final_return,
            self.final_length,
            self.final_harmful,
            auto_reset,
        )


# ---------------------------------------------------------------------------------------------
# Random numbers: one splitmix64 stream per cluster.

JIT = {"cache": True, "error_model": "numpy", "fastmath": True}


@njit(**JIT)
def _next_u64(rng, i):
    rng[i] += np.uint64(0x9E3779B97F4A7C15)
    z = rng[i]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(**JIT)
def _uniform(rng, i):
    return float(_next_u64(rng, i) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(**JIT)
def _randint(rng, i, low, high):
    """Uniform integer in [low, high] inclusive."""
    return low + int(_uniform(rng, i) * (high - low + 1))


@njit(**JIT)
def seed_streams(rng, seed):
    for i in range(rng.shape[0]):
        # Scramble seed + i once so that neighbouring seeds give unrelated streams.
        rng[i] = seed + np.uint64(i)
        rng[i] = _next_u64(rng, i)


# ---------------------------------------------------------------------------------------------
# Faults.


@njit(**JIT)
def _has(mask, f):
    return (mask >> f) & 1 == 1


@njit(**JIT)
def _fault_fits(shape, active, i, f):
    if f == 11:  # OVERPROVISIONED is only ever caused by the agent
        return False
    if f == 1 or f == 7 or f == 8:  # faults that take a whole deployment leave two healthy
        taken = _has(active[i], 1) + _has(active[i], 7) + _has(active[i], 8)
        return shape[i, DEPLOYMENTS] - taken >= 3
    if 3 <= f <= 5:  # node faults leave at least two nodes healthy
        taken = _has(active[i], 3) + _has(active[i], 4) + _has(active[i], 5)
        return shape[i, NODES] - taken >= 3
    return True


@njit(**JIT)
def _inject_fault(rng, i, shape, active, size, timer, weights):
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
    _start_fault(rng, i, chosen, shape, active, size, timer)
    return True


@njit(**JIT)
def _start_fault(rng, i, f, shape, active, size, timer):
    replicas = shape[i, REPLICAS]
    pods = shape[i, PODS]
    active[i] |= 1 << f
    timer[i, f] = 0
    if f == 0:  # CRASHED_PODS: a few pods spread over deployments
        size[i, f] = _randint(rng, i, 1, max(1, pods // 10))
    elif f == 1:  # BAD_ROLLOUT: every replica of one deployment
        size[i, f] = replicas
    elif f == 2 or f == 8 or f == 9:  # OOM_KILLED, QUOTA_EXHAUSTED, UNBOUND_PVC
        size[i, f] = _randint(rng, i, 1, replicas)
    elif f == 6:  # RUNAWAY_DEPLOYMENT: extra replicas, enough to overflow capacity
        free = shape[i, NODES] * shape[i, POD_CAPACITY] - pods
        size[i, f] = free + _randint(rng, i, replicas, 3 * replicas)
    elif f == 10:  # DNS_FAILURE: deployments whose readiness depends on DNS
        size[i, f] = _randint(rng, i, 2, max(2, shape[i, DEPLOYMENTS] // 3))
    else:  # one node (NOT_READY, CORDONED, PRESSURE: evictions start with one pod), one deployment
        size[i, f] = 1


@njit(**JIT)
def _cascade(rng, i, cause, effect, chance, shape, active, size, timer):
    """While `cause` lasts, each step it may set off `effect` (if that is not already happening)."""
    if _has(active[i], cause) and not _has(active[i], effect) and _fault_fits(shape, active, i, effect):
        if _uniform(rng, i) < chance:
            _start_fault(rng, i, effect, shape, active, size, timer)


# ---------------------------------------------------------------------------------------------
# Episode start.


@njit(**JIT)
def _reset_one(
    i,
    rng,
    shape,
    load,
    active,
    revealed,
    size,
    timer,
    events,
    truth,
    seen,
    health,
    episode_return,
    harmful,
    params,
    weights,
    observations,
):
    nodes = _randint(rng, i, int(params[P_MIN_NODES]), int(params[P_MAX_NODES]))
    deployments = _randint(rng, i, int(params[P_MIN_DEPLOYMENTS]), int(params[P_MAX_DEPLOYMENTS]))
    pods = 0
    for _ in range(deployments):
        pods += _randint(rng, i, int(params[P_MIN_REPLICAS]), int(params[P_MAX_REPLICAS]))
    load[i] = params[P_MIN_LOAD] + _uniform(rng, i) * (params[P_MAX_LOAD] - params[P_MIN_LOAD])
    shape[i, NODES] = nodes
    shape[i, DEPLOYMENTS] = deployments
    shape[i, PODS] = pods
    shape[i, REPLICAS] = max(1, (pods + deployments - 1) // deployments)
    # Pod slots per node: a healthy cluster runs at `load` of its capacity.
    shape[i, POD_CAPACITY] = max(1, int(np.ceil(pods / (nodes * max(load[i], 0.05)))))
    shape[i, PODS_PER_NODE] = (pods + nodes - 1) // nodes
    shape[i, STEP] = 0
    active[i] = 0
    revealed[i] = 0
    for f in range(size.shape[1]):
        size[i, f] = 0
        timer[i, f] = 0
    num_faults = _randint(rng, i, int(params[P_MIN_FAULTS]), int(params[P_MAX_FAULTS]))
    for _ in range(num_faults):
        _inject_fault(rng, i, shape, active, size, timer, weights)
    events[i, 0] = 0.0
    events[i, 1] = 5.0 + _uniform(rng, i) * 10.0
    _compute_truth(i, shape, active, revealed, size, timer, events, truth)
    health[i] = _health(i, truth)
    episode_return[i] = 0.0
    harmful[i] = 0
    # The first look is `kubectl get nodes,pods`: everything else is unknown until read.
    revealed[i] = active[i] & NODE_FAULTS_MASK
    for k in range(seen.shape[1]):
        seen[i, k] = 0.0
    for k in range(S_NODES, S_UNKNOWN + 1):
        seen[i, k] = truth[i, k]
    _write_observation(i, seen, observations)


@njit(**JIT)
def reset_all(
    rng,
    shape,
    load,
    active,
    revealed,
    size,
    timer,
    events,
    truth,
    seen,
    health,
    episode_return,
    harmful,
    params,
    weights,
    observations,
):
    for i in range(shape.shape[0]):
        _reset_one(
            i,
            rng,
            shape,
            load,
            active,
            revealed,
            size,
            timer,
            events,
            truth,
            seen,
            health,
            episode_return,
            harmful,
            params,
            weights,
            observations,
        )


# ---------------------------------------------------------------------------------------------
# The true state of a cluster, derived from its shape and active faults.


@njit(**JIT)
def _compute_truth(i, shape, active, revealed, size, timer, events, truth):
    faults = active[i]
    found = faults & revealed[i]
    nodes = shape[i, NODES]
    deployments = shape[i, DEPLOYMENTS]

    not_ready = 1 if _has(faults, 3) else 0
    cordoned = size[i, 4] if _has(faults, 4) else 0
    pressured = _has(faults, 5)
    schedulable = max(0, nodes - not_ready - cordoned)
    capacity = schedulable * shape[i, POD_CAPACITY]

    # Pod objects that want a node: the desired pods, plus runaway or over-provisioned replicas,
    # minus the replicas a quota refuses to create.
    demand = shape[i, PODS]
    if _has(faults, 6):
        demand += size[i, 6]
    if _has(faults, 11):
        demand += size[i, 11]
    if _has(faults, 8):
        demand -= size[i, 8]

    unknown = 0
    if not_ready and timer[i, 3] < EVICTION_DELAY:
        unknown = shape[i, PODS_PER_NODE]  # still bound to the dead node
    pvc_pending = size[i, 9] if _has(faults, 9) else 0
    to_schedule = max(0, demand - unknown - pvc_pending)
    capacity_pending = max(0, to_schedule - capacity)
    scheduled = to_schedule - capacity_pending

    failed = 0
    if _has(faults, 0):
        failed += size[i, 0]
    if _has(faults, 1):
        failed += size[i, 1]
    if _has(faults, 2):
        failed += size[i, 2]
    if pressured:
        failed += size[i, 5]
    failed = min(failed, scheduled)

    unavailable = _has(faults, 1) + _has(faults, 8)
    if _has(faults, 7):
        unavailable += size[i, 7]
    if _has(faults, 10):
        unavailable += size[i, 10]
    if capacity_pending > shape[i, REPLICAS]:
        unavailable += 1
    unavailable = min(unavailable, deployments)

    utilisation = min(1.0, scheduled / max(1, capacity))
    cpu = CPU_SCALE * utilisation
    mem = MEM_SCALE * utilisation
    if _has(faults, 6) or _has(faults, 7):
        cpu += HOTSPOT
    if _has(faults, 11):
        cpu += HOTSPOT / 2
    if _has(faults, 2):
        mem += HOTSPOT
    if pressured:
        mem += HOTSPOT

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
    truth[i, S_PVC] = 1.0 if _has(found, 9) else 0.0
    truth[i, S_NETWORK] = 1.0 if _has(found, 10) else 0.0
    truth[i, S_PRESSURE] = 1.0 if _has(found, 5) or _has(found, 8) else 0.0


@njit(**JIT)
def _health(i, truth):
    """Cluster health in [0, 1]: the share of pods running, deployments available, nodes ready."""
    pods = max(1.0, truth[i, S_PODS])
    deployments = max(1.0, truth[i, S_DEPLOYMENTS])
    nodes = max(1.0, truth[i, S_NODES])
    return (
        0.4 * truth[i, S_RUNNING] / pods + 0.4 * truth[i, S_AVAILABLE] / deployments + 0.2 * truth[i, S_READY] / nodes
    )


@njit(**JIT)
def _write_observation(i, seen, observations):
    nodes = seen[i, S_NODES]
    pods = seen[i, S_PODS]
    deployments = seen[i, S_DEPLOYMENTS]
    per_node = 1.0 / nodes if nodes > 0 else 0.0
    per_pod = 1.0 / pods if pods > 0 else 0.0
    per_deployment = 1.0 / deployments if deployments > 0 else 0.0
    o = observations[i]
    o[0] = nodes * (1.0 / NODE_SCALE)
    o[1] = seen[i, S_READY] * per_node
    o[2] = seen[i, S_NOT_READY] * per_node
    o[3] = pods * (1.0 / POD_SCALE)
    for k in range(S_RUNNING, S_UNKNOWN + 1):
        o[k] = seen[i, k] * per_pod
    o[8] = deployments * (1.0 / DEPLOYMENT_SCALE)
    o[9] = seen[i, S_AVAILABLE] * per_deployment
    o[10] = seen[i, S_UNAVAILABLE] * per_deployment
    o[11] = seen[i, S_CPU] * 0.01
    o[12] = seen[i, S_MEM] * 0.01
    o[13] = seen[i, S_WARN] * (1.0 / EVENT_SCALE)
    o[14] = seen[i, S_NORMAL] * (1.0 / EVENT_SCALE)
    o[15] = seen[i, S_PVC]
    o[16] = seen[i, S_NETWORK]
    o[17] = seen[i, S_PRESSURE]
    for k in range(o.shape[0]):
        o[k] = min(1.0, max(0.0, o[k]))


# ---------------------------------------------------------------------------------------------
# One step.


@njit(**JIT)
def _resolve(i, f, active, revealed, size, timer):
    """Fault f is over. If it comes back, it is news again (and counts against the agent again)."""
    active[i] &= ~(1 << f)
    revealed[i] &= ~(1 << f)
    size[i, f] = 0
    timer[i, f] = 0
    return 1 << f


@njit(**JIT)
def _apply_action(i, action, shape, active, revealed, size, timer):
    """Apply a remedy to the true state. Returns (faults fixed, repairs, damage, harmful).

    Repairs and damage count units (a node uncordoned, a deployment scaled back), so that
    breaking something and mending it again never pays. A remedy needs a target, and the agent
    only knows the targets it has found: draining the bad node or scaling the right deployment
    needs that fault diagnosed first. Without it the action lands on a healthy object, as
    `kubectl drain` on a node picked blind would. Restarting failed pods needs no target (it
    deletes whatever is Failed). What the agent breaks, it knows about.
    """
    fixed = 0
    repairs = 0
    damage = 0
    faults = active[i]
    known = faults & revealed[i]
    if action == 6:  # RESTART_FAILED_PODS
        if _has(faults, 0):
            fixed |= _resolve(i, 0, active, revealed, size, timer)
        if _has(faults, 2) and timer[i, 2] >= 0:  # OOMKilled pods come back, for a while
            size[i, 2] = 0
            timer[i, 2] = -OOM_RECUR
        if _has(faults, 5):  # evicted pods land on the pressured node again
            size[i, 5] = 0
            timer[i, 5] = 0
    elif action == 7:  # SCALE_UP_DEPLOYMENT: the deployment known to need it
        if _has(known, 7):
            repairs += 1
            size[i, 7] -= 1
            if size[i, 7] <= 0:
                fixed |= _resolve(i, 7, active, revealed, size, timer)
        elif _has(known, 2):
            fixed |= _resolve(i, 2, active, revealed, size, timer)
        elif _has(faults, 8):
            damage += 1  # more replicas the quota refuses: more FailedCreate, nothing gained
        else:
            damage += 1
            active[i] |= 1 << 11
            revealed[i] |= 1 << 11
            size[i, 11] += 2 * shape[i, REPLICAS]
    elif action == 8:  # SCALE_DOWN_DEPLOYMENT: the deployment known to be over its need
        if _has(known, 6):
            fixed |= _resolve(i, 6, active, revealed, size, timer)
        elif _has(known, 11):
            fixed |= _resolve(i, 11, active, revealed, size, timer)
        else:
            damage += 1  # one more deployment short of replicas; each scale-up mends one
            active[i] |= 1 << 7
            revealed[i] |= 1 << 7
            size[i, 7] += 1
    elif action == 9:  # DRAIN_NODE: the node known to be NotReady, else under pressure
        if _has(known, 3):
            fixed |= _resolve(i, 3, active, revealed, size, timer)  # pods rescheduled, node replaced
        elif _has(known, 5):
            fixed |= _resolve(i, 5, active, revealed, size, timer)
            active[i] |= 1 << 4  # the drained node stays cordoned until someone uncordons it
            revealed[i] |= 1 << 4
            size[i, 4] += 1
            repairs -= 1  # its uncordon is part of this fix, not a repair of its own
        else:
            damage += 1
            active[i] |= 1 << 4
            revealed[i] |= 1 << 4
            size[i, 4] += 1
    elif action == 10:  # UNCORDON_NODE: a cordoned node it has seen
        if _has(known, 4):
            repairs += 1
            size[i, 4] -= 1
            if size[i, 4] <= 0:
                fixed |= _resolve(i, 4, active, revealed, size, timer)
    return fixed, repairs, damage


@njit(**JIT)
def _advance_faults(i, rng, shape, active, size, timer, events, warnings_by_mask, chance):
    """Time passes: faults left alone get worse and set off others, events accumulate and age."""
    # A dead node's evicted pods crowd the others into pressure; a runaway or an overloaded
    # deployment starves its neighbours into OOM kills; evictions and failed lookups crash pods.
    if _has(active[i], 3) and timer[i, 3] >= EVICTION_DELAY:
        _cascade(rng, i, 3, 5, chance, shape, active, size, timer)
    if size[i, 4] >= 2:  # several cordoned nodes crowd the rest the same way
        _cascade(rng, i, 4, 5, chance, shape, active, size, timer)
    _cascade(rng, i, 6, 2, chance, shape, active, size, timer)
    _cascade(rng, i, 11, 2, chance / 2, shape, active, size, timer)
    _cascade(rng, i, 7, 2, chance / 2, shape, active, size, timer)
    _cascade(rng, i, 5, 0, chance, shape, active, size, timer)
    _cascade(rng, i, 10, 0, chance / 2, shape, active, size, timer)
    faults = active[i]
    events[i, 0] = events[i, 0] * 0.8 + warnings_by_mask[faults]
    events[i, 1] = events[i, 1] * 0.8 + 2.0
    if _has(faults, 3):  # the NotReady node's pods wait for the eviction timeout
        timer[i, 3] += 1
    if _has(faults, 2) and timer[i, 2] < 0:  # restarted OOMKilled pods grow back to their limit
        timer[i, 2] += 1
        if timer[i, 2] == 0:
            size[i, 2] = max(1, shape[i, REPLICAS] // 2)
    if _has(faults, 5):  # the kubelet evicts one more pod every few steps
        timer[i, 5] += 1
        if timer[i, 5] >= PRESSURE_RECUR:
            timer[i, 5] = 0
            size[i, 5] = min(shape[i, PODS_PER_NODE], size[i, 5] + 1)


@njit(**JIT)
def _refresh_seen(i, action, truth, seen):
    """Copy what the action read (or the remedy reported) from the true state into the agent's view."""
    lo, hi = -1, -1
    if action == 0 or action == 9 or action == 10:  # GET_NODES, DRAIN_NODE, UNCORDON_NODE
        lo, hi = S_NODES, S_NOT_READY
    elif action == 1 or action == 5 or action == 6:  # GET_PODS, DESCRIBE_UNHEALTHY, RESTART
        lo, hi = S_PODS, S_UNKNOWN
    elif action == 3 or action == 7 or action == 8:  # GET_DEPLOYMENTS, SCALE_*
        lo, hi = S_DEPLOYMENTS, S_UNAVAILABLE
    elif action == 11 or action == 12:  # TOP_NODES, TOP_PODS
        lo, hi = S_CPU, S_MEM
    elif action == 2:  # GET_EVENTS
        lo, hi = S_WARN, S_NORMAL
    if lo >= 0:
        for k in range(lo, hi + 1):
            seen[i, k] = truth[i, k]
    for k in range(S_PVC, S_PRESSURE + 1):
        seen[i, k] = truth[i, k]


@njit(**JIT)
def step_all(
    actions,
    rng,
    shape,
    load,
    active,
    revealed,
    size,
    timer,
    events,
    truth,
    seen,
    health,
    episode_return,
    harmful,
    params,
    weights,
    reveal_mask,
    warnings_by_mask,
    popcount,
    observations,
    rewards,
    terminals,
    truncations,
    reward_parts,
    step_harmful,
    resolved_now,
    outcome,
    final_return,
    final_length,
    final_harmful,
    auto_reset,
):
    new_fault_rate = params[P_NEW_FAULT_RATE]
    max_faults = int(params[P_MAX_FAULTS])
    max_steps = int(params[P_MAX_STEPS])
    cascade_chance = params[P_CASCADE_CHANCE]
    for i in range(shape.shape[0]):
        action = actions[i]

        # 1. The action: a remedy changes the cluster, a diagnostic reveals faults.
        before = active[i]
        fixed, repairs, damage = _apply_action(i, action, shape, active, revealed, size, timer)
        found = active[i] & ~revealed[i] & reveal_mask[action]
        revealed[i] |= found

        # 2. Time passes; now and then something else breaks.
        _advance_faults(i, rng, shape, active, size, timer, events, warnings_by_mask, cascade_chance)
        if _uniform(rng, i) < new_fault_rate and popcount[active[i]] < max_faults:
            _inject_fault(rng, i, shape, active, size, timer, weights)
        # Faults that broke out this step on their own (cascades, new failures) count against
        # the agent like damage: fixing a symptom again and again while its cause lasts never pays.
        arrived = active[i] & ~before & ~revealed[i]

        # 3. What the cluster looks like now, and what the agent sees of it.
        _compute_truth(i, shape, active, revealed, size, timer, events, truth)
        _refresh_seen(i, action, truth, seen)
        shape[i, STEP] += 1

        new_health = _health(i, truth)
        parts = reward_parts[i]
        parts[R_STEP] = REWARD_STEP
        parts[R_RESOLVED] = REWARD_RESOLVED * (popcount[fixed & ~INDUCIBLE_MASK] + repairs)
        parts[R_REVEALED] = REWARD_REVEALED * popcount[found & HUMAN_ONLY_MASK]
        parts[R_DEGRADED] = REWARD_DEGRADED * max(0.0, health[i] - new_health) - REWARD_RESOLVED * popcount[arrived]
        parts[R_INDUCED] = REWARD_INDUCED * damage
        parts[R_TERMINAL] = 0.0
        health[i] = new_health
        resolved_now[i] = fixed
        step_harmful[i] = 1 if damage > 0 else 0
        harmful[i] += step_harmful[i]

        # The episode is won when every fault left is one only a human can fix, and it was found.
        outcome[i] = OUTCOME_RUNNING
        if truth[i, S_READY] <= 0:
            outcome[i] = OUTCOME_CATASTROPHE
            parts[R_TERMINAL] = REWARD_CATASTROPHE
        elif active[i] & ~(revealed[i] & HUMAN_ONLY_MASK) == 0:
            outcome[i] = OUTCOME_RESOLVED
            parts[R_TERMINAL] = REWARD_HEALTHY
        elif shape[i, STEP] >= max_steps:
            outcome[i] = OUTCOME_TRUNCATED

        reward = parts[0] + parts[1] + parts[2] + parts[3] + parts[4] + parts[5]
        rewards[i] = reward
        terminals[i] = outcome[i] == OUTCOME_RESOLVED or outcome[i] == OUTCOME_CATASTROPHE
        truncations[i] = outcome[i] == OUTCOME_TRUNCATED
        episode_return[i] += reward

        if outcome[i] != OUTCOME_RUNNING:
            final_return[i] = episode_return[i]
            final_length[i] = shape[i, STEP]
            final_harmful[i] = harmful[i]
            if auto_reset:
                _reset_one(
                    i,
                    rng,
                    shape,
                    load,
                    active,
                    revealed,
                    size,
                    timer,
                    events,
                    truth,
                    seen,
                    health,
                    episode_return,
                    harmful,
                    params,
                    weights,
                    observations,
                )
                continue
        _write_observation(i, seen, observations)
