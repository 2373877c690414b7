"""The simulation kernels: N Kubernetes clusters stepped in one compiled loop.

State lives in flat numpy arrays, one row per cluster (`rl.sim.batch.Clusters`); the numba kernels
below update it in place and write each cluster's input row (`rl.agent_input`), reward and episode
end straight into the caller's buffers. Each cluster draws from its own random stream (splitmix64),
so cluster i of a batch seeded with s behaves exactly like a single env seeded with s + i, whatever
the other clusters do.

What each fault does is declared in `rl.faults`; this module implements it: the counts a fault
moves (`_compute_truth`) and the findings it emits (`_emit_findings`). Three rules make diagnosis pay:
- a remedy acts on the object the agent has identified with a read that tells it apart; without
  one it acts on a plausible but wrong object (a healthy node drained, a healthy deployment scaled,
  healthy pods restarted), and what that breaks is hidden until a read of that kind finds it;
- damage is never undone for free: mending it takes its own read and its own remedy;
- WAIT is the agent's report and ends the episode: it is resolved only when nothing the agent may
  fix is left and the faults it names are exactly those still active that it must name (those only
  a human can fix, or all of them on a read-only cluster).
"""

import numpy as np
from numba import njit

from rl.agent_input import (
    FINDINGS_AT,
    FLAG_KEY_INDEX,
    FLAG_OF,
    FRESH_INDEX,
    LAST_ACTION_AT,
    RESULT_APPLIED,
    RESULT_AT,
    RESULT_DRY_RUN,
    RESULT_REFUSED,
    RESULT_UNAVAILABLE,
    STEP_AT,
    TAKEN_INDEX,
    encode_steps,
    write_history,
)
from rl.findings import encode_count
from rl.jit_cache import drop_stale, fingerprint
from rl.sim import layout
from rl.sim.layout import (
    ALL_FAULTS_MASK,
    BACKGROUND_CHANCE,
    BACKGROUND_HIGH,
    BACKGROUND_KEYS,
    BACKGROUND_LOW,
    BAD_ROLLOUT,
    CONFIG_ERROR,
    COREDNS_PODS,
    CPU_SCALE,
    CRASHED_PODS,
    DEPENDENCY_DOWN,
    DEPLOYMENTS,
    DNS_FAILURE,
    DRAIN_NODE,
    EVICTION_DELAY,
    EVIDENCE_MASKS,
    FAILING_PODS_MASK,
    FIRST_LOOK_HI,
    FIRST_LOOK_LO,
    FIX_MASK,
    FIXABLE_MASK,
    HOTSPOT,
    HUMAN_ONLY_MASK,
    IMAGE_PULL_FAILURE,
    INDUCIBLE_MASK,
    INSUFFICIENT_CAPACITY,
    IS_READ,
    IS_REMEDY,
    JOB_FAILED,
    K_DEPLOY_DEADLINE,
    K_DEPLOY_REPLICA_FAILURE,
    K_DEPLOY_UNAVAILABLE,
    K_DNS_DOWN,
    K_EVENT_DNS,
    K_HPA_LIMITED,
    K_JOB_FAILED,
    K_JOB_POD_FAILURES,
    K_LOG_CONFIG,
    K_LOG_DNS,
    K_LOG_OVERLOADED,
    K_LOG_PANIC,
    K_LOG_REFUSED,
    K_METRICS_UNAVAILABLE,
    K_NODE_CORDONED,
    K_NODE_MEMORY_PRESSURE,
    K_NODE_NOT_READY,
    K_NODE_PLANNED,
    K_POD_CONFIG,
    K_POD_CRASHLOOP,
    K_POD_EVICTED,
    K_POD_EXITED,
    K_POD_IMAGE_PULL,
    K_POD_OOM,
    K_POD_READINESS,
    K_POD_TERMINATING_DEAD,
    K_POD_UNBOUND_VOLUME,
    K_POD_UNKNOWN,
    K_POD_UNSCHEDULABLE,
    K_PVC_PENDING,
    K_QUOTA_EXCEEDED,
    K_RS_FAILED_CREATE,
    K_SERVICE_NO_PODS,
    K_SERVICE_NO_READY,
    K_SERVICE_NOT_READY,
    LASTING_HARM_CHANCE,
    MEM_SCALE,
    NO_METRICS,
    NODE_CORDONED,
    NODE_FAULTS_MASK,
    NODE_NOT_READY,
    NODE_PRESSURE,
    NODES,
    NUM_FAULTS,
    OOM_KILLED,
    OOM_RECUR,
    OUTCOME_CATASTROPHE,
    OUTCOME_RESOLVED,
    OUTCOME_RUNNING,
    OUTCOME_TRUNCATED,
    OUTCOME_WRONG,
    OVERFLOW_MASK,
    OVERPROVISIONED,
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
    PLANNED_CORDON,
    PLANNED_CORDON_CHANCE,
    POD_CAPACITY,
    PODS,
    PODS_PER_NODE,
    PRESSURE_RECUR,
    PROGRESS_DEADLINE,
    QUOTA_EXHAUSTED,
    R_DEGRADED,
    R_INDUCED,
    R_RESOLVED,
    R_STEP,
    R_TERMINAL,
    READ_ONLY,
    REFRESH_HI,
    REFRESH_LO,
    RELIEF_MASK,
    REPLICAS,
    RESTART_FAILED_PODS,
    RETRYING_JOB_CHANCE,
    REVEAL_MASK,
    REWARD_CATASTROPHE,
    REWARD_DEGRADED,
    REWARD_DONE,
    REWARD_INDUCED,
    REWARD_PER_ERROR,
    REWARD_RESOLVED,
    REWARD_STEP,
    REWARD_WRONG_VERDICT,
    RUNAWAY_DEPLOYMENT,
    S_AVAILABLE,
    S_CPU,
    S_DEPLOYMENTS,
    S_FAILED,
    S_MEM,
    S_NETWORK,
    S_NODES,
    S_NORMAL,
    S_NOT_READY,
    S_PENDING,
    S_PODS,
    S_PRESSURE,
    S_PVC,
    S_READY,
    S_RUNNING,
    S_UNAVAILABLE,
    S_UNKNOWN,
    S_WARN,
    SCALE_DOWN_DEPLOYMENT,
    SCALE_UP_DEPLOYMENT,
    SERVICE_NO_ENDPOINTS,
    SHOWN_KEYS,
    SHOWN_START,
    STEP,
    TOP_NODES,
    TOP_PODS,
    UNBOUND_PVC,
    UNCORDON_NODE,
    UNDERSCALED,
    USAGE_NODE_CPU,
    USAGE_NODE_MEM,
    USAGE_POD_CPU,
    USAGE_POD_MEM,
    WAIT,
    WARNINGS_PER_STEP,
    WHOLE_DEPLOYMENT_MASK,
    WORSE_MASK,
)
from rl.sim.scenario import FAULT_COUNT_WEIGHTS
from rl.state import encode_observation

FAULT_COUNT_TABLE = np.array(FAULT_COUNT_WEIGHTS, dtype=np.float64)

# Only the entry points (`seed_streams`, `reset_all`, `step_all`) are cached. The helpers they call
# are compiled with them, so they can be inlined; a helper loaded from the cache on its own would be
# called through its full signature, every array of the `Clusters` tuple passed one by one.
# Fast math without `reassoc`: sums are added in the order written, so a trajectory does not depend on
# how LLVM optimised a kernel in one place or another.
COMPILED = {"error_model": "numpy", "fastmath": {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}}
JIT = {**COMPILED, "cache": True}
# The per-cluster helpers only index arrays their caller holds: compiled without numba's reference
# counting (`_nrt`), they borrow them (with it, every call took and dropped a reference to each array
# it was passed: half the time of a step).
HELPER = {**COMPILED, "_nrt": False}
# The parts of a step are inlined into the step loop (LLVM keeps large helpers as calls, each passing
# every array field by field on the stack).
STEP_PART = {**HELPER, "inline": "always"}


# ---------------------------------------------------------------------------------------------
# Random numbers: one splitmix64 stream per cluster.


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
def popcount(mask):
    count = 0
    while mask:
        mask &= mask - 1
        count += 1
    return count


@njit(**HELPER)
def _fitting_faults(shape, conditions, active, i):
    """The faults that could start in cluster i now (not active, and the cluster has room for them)."""
    faults = active[i]
    fits = ALL_FAULTS_MASK & ~faults & ~(1 << OVERPROVISIONED)  # over-provisioning is only ever caused by the agent
    if (
        shape[i, DEPLOYMENTS] - popcount(faults & WHOLE_DEPLOYMENT_MASK) < 3
    ):  # whole-deployment faults leave two healthy
        fits &= ~WHOLE_DEPLOYMENT_MASK
    planned = 1 if conditions[i] & PLANNED_CORDON else 0
    if shape[i, NODES] - planned - popcount(faults & NODE_FAULTS_MASK) < 3:  # node faults leave two nodes healthy
        fits &= ~NODE_FAULTS_MASK
    if faults & OVERFLOW_MASK:  # a runaway and a full cluster at once would look alike
        fits &= ~OVERFLOW_MASK
    if shape[i, DEPLOYMENTS] < 4:
        fits &= ~(1 << DNS_FAILURE)
    return fits


@njit(**HELPER)
def _inject_fault(rng, shape, conditions, active, size, timer, weights, i):
    """Start one new fault in cluster i, drawn by weight among those that fit. False if none does."""
    fits = _fitting_faults(shape, conditions, active, i)
    total = 0.0
    for f in range(weights.shape[0]):
        if _has(fits, f):
            total += weights[f]
    if total <= 0.0:
        return False
    pick = _uniform(rng, i) * total
    chosen = -1
    for f in range(weights.shape[0]):
        if _has(fits, f) and weights[f] > 0.0:
            chosen = f
            pick -= weights[f]
            if pick < 0.0:
                break
    _start_fault(rng, shape, active, size, timer, i, chosen)
    return True


@njit(**HELPER)
def _start_fault(rng, shape, active, size, timer, i, f):
    replicas = shape[i, REPLICAS]
    active[i] |= 1 << f
    timer[i, f] = 0
    surge = max(1, (replicas + 3) // 4)  # a rollout's new pods (maxSurge 25%)
    if f == CRASHED_PODS:  # a few pods spread over deployments
        size[i, f] = _randint(rng, i, 1, 6)
    elif f == BAD_ROLLOUT or f == IMAGE_PULL_FAILURE or f == CONFIG_ERROR:
        size[i, f] = _randint(rng, i, 1, surge)
    elif f == OOM_KILLED or f == QUOTA_EXHAUSTED or f == UNBOUND_PVC:
        size[i, f] = _randint(rng, i, 1, replicas)
    elif f == RUNAWAY_DEPLOYMENT:  # extra replicas, enough to overflow capacity
        free = shape[i, NODES] * shape[i, POD_CAPACITY] - shape[i, PODS]
        size[i, f] = max(0, free) + _randint(rng, i, replicas, 3 * replicas)
    elif f == INSUFFICIENT_CAPACITY:  # new pods no node has room for
        size[i, f] = _randint(rng, i, 1, 2 * replicas)
    elif f == DNS_FAILURE:  # deployments whose readiness depends on DNS
        size[i, f] = _randint(rng, i, 2, max(2, min(20, shape[i, DEPLOYMENTS] // 3)))
    elif f == DEPENDENCY_DOWN or f == SERVICE_NO_ENDPOINTS:  # the pods of one deployment
        size[i, f] = replicas
    elif f == JOB_FAILED:  # backoffLimit + 1 failed attempts
        size[i, f] = _randint(rng, i, 2, 7)
    else:  # one node (NOT_READY, CORDONED, PRESSURE: evictions start with one pod), one deployment
        size[i, f] = 1


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
def _lasting_harm(rng, active, revealed, caused, size, timer, i, f, amount):
    """Half the time a blind remedy also breaks something only a human can mend (f)."""
    if _uniform(rng, i) < LASTING_HARM_CHANCE:
        _induce(active, revealed, size, timer, i, f, amount)
        caused[i] |= 1 << f


@njit(**HELPER)
def _cascade(rng, shape, conditions, active, size, timer, i, cause, effect, chance):
    """While `cause` lasts, each step it may set off `effect` (if that is not already happening)."""
    if _has(active[i], cause) and _has(_fitting_faults(shape, conditions, active, i), effect):
        if _uniform(rng, i) < chance:
            _start_fault(rng, shape, active, size, timer, i, effect)


# ---------------------------------------------------------------------------------------------
# One step.


@njit(**STEP_PART)
def _apply_action(rng, shape, conditions, active, revealed, caused, size, timer, i, action):
    """Apply a remedy to the true state. Returns (faults fixed, units repaired, wrong objects hit,
    refused).

    A remedy acts on the object the agent has identified (`revealed`): the deployment a read showed
    to be short of replicas, the node a read showed NotReady. Identified the wrong way round (a
    runaway deployment scaled up), it makes that object worse. With nothing identified it acts on
    a plausible but wrong object, as `kubectl drain` on a node picked blind would, and the damage is
    hidden (see `_induce`).
    """
    fixed = 0
    repairs = 0
    damage = 0
    refused = False
    faults = active[i]
    known = faults & revealed[i]
    replicas = shape[i, REPLICAS]
    fixes = known & FIX_MASK[action]
    worse = known & WORSE_MASK[action]
    if action == RESTART_FAILED_PODS:
        if known & FAILING_PODS_MASK:  # it knows why pods fail: it deletes the failed ones
            if _has(fixes, CRASHED_PODS):
                fixed |= _resolve(active, revealed, size, timer, i, CRASHED_PODS)
            relieved = known & RELIEF_MASK[action]
            if _has(relieved, OOM_KILLED) and timer[i, OOM_KILLED] >= 0:  # they come back, for a while
                size[i, OOM_KILLED] = 0
                timer[i, OOM_KILLED] = -OOM_RECUR
            if _has(relieved, NODE_PRESSURE):  # evicted pods land on the pressured node again
                size[i, NODE_PRESSURE] = 0
                timer[i, NODE_PRESSURE] = 0
            # Pods of a bad rollout, a failed image pull or a missing config fail again: nothing changes.
        else:  # healthy pods restarted: their in-flight work is lost
            damage += 1
            before = caused[i]
            _lasting_harm(rng, active, revealed, caused, size, timer, i, BAD_ROLLOUT, max(1, (replicas + 3) // 4))
            if caused[i] == before:  # the pods come back cold and fail readiness under the load
                _induce(active, revealed, size, timer, i, UNDERSCALED, 1)
    elif action == SCALE_UP_DEPLOYMENT:
        if _has(fixes, UNDERSCALED):
            repairs += 1
            fixed |= _mend_unit(active, revealed, size, timer, i, UNDERSCALED)
        elif _has(fixes, OOM_KILLED):
            fixed |= _resolve(active, revealed, size, timer, i, OOM_KILLED)
        elif worse:  # the identified deployment grows the wrong way
            damage += 1
            if _has(worse, RUNAWAY_DEPLOYMENT):
                size[i, RUNAWAY_DEPLOYMENT] += replicas
            elif _has(worse, OVERPROVISIONED):
                size[i, OVERPROVISIONED] += 2 * replicas
            elif _has(worse, INSUFFICIENT_CAPACITY):
                size[i, INSUFFICIENT_CAPACITY] += replicas
            elif _has(worse, BAD_ROLLOUT):
                size[i, BAD_ROLLOUT] += 1
            elif _has(worse, IMAGE_PULL_FAILURE):
                size[i, IMAGE_PULL_FAILURE] += 1
            elif _has(worse, CONFIG_ERROR):
                size[i, CONFIG_ERROR] += 1
            # A quota-blocked deployment asks for more: more FailedCreate, nothing gained.
        elif _has(faults, QUOTA_EXHAUSTED) or _has(faults, INSUFFICIENT_CAPACITY):
            damage += 1  # asking for pods the quota or the nodes cannot give
        else:
            damage += 1
            _induce(active, revealed, size, timer, i, OVERPROVISIONED, 2 * replicas)
    elif action == SCALE_DOWN_DEPLOYMENT:
        if _has(fixes, RUNAWAY_DEPLOYMENT):
            fixed |= _resolve(active, revealed, size, timer, i, RUNAWAY_DEPLOYMENT)
        elif _has(fixes, OVERPROVISIONED):
            fixed |= _resolve(active, revealed, size, timer, i, OVERPROVISIONED)
        elif _has(worse, UNDERSCALED):  # the short deployment loses one more replica
            damage += 1
            size[i, UNDERSCALED] += 1
        elif _has(worse, OOM_KILLED):  # fewer replicas share the load: more of them OOMKilled
            damage += 1
            size[i, OOM_KILLED] += 1
        else:  # a healthy deployment loses a replica
            damage += 1
            _induce(active, revealed, size, timer, i, UNDERSCALED, 1)
            # It was a quorum-based StatefulSet: below quorum its members crash-loop, and only its
            # owner can recover the data.
            _lasting_harm(rng, active, revealed, caused, size, timer, i, BAD_ROLLOUT, max(1, (replicas + 3) // 4))
    elif action == DRAIN_NODE:
        if _has(fixes, NODE_NOT_READY):
            fixed |= _resolve(active, revealed, size, timer, i, NODE_NOT_READY)  # pods rescheduled, node replaced
        elif _has(fixes, NODE_PRESSURE):
            fixed |= _resolve(active, revealed, size, timer, i, NODE_PRESSURE)
            # Recovered, but cordoned until someone uncordons it; the uncordon is part of this fix.
            _induce(active, revealed, size, timer, i, NODE_CORDONED, 1)
            repairs -= 1
        else:  # a healthy node drained: its pods evicted, the node left cordoned
            damage += 1
            _induce(active, revealed, size, timer, i, NODE_CORDONED, 1)
            # One of its pods had a local PersistentVolume: it cannot run anywhere else, and only a
            # human can move its data.
            _lasting_harm(rng, active, revealed, caused, size, timer, i, UNBOUND_PVC, 1)
    elif action == UNCORDON_NODE:
        if _has(fixes, NODE_CORDONED):
            repairs += 1
            fixed |= _mend_unit(active, revealed, size, timer, i, NODE_CORDONED)
        elif conditions[i] & PLANNED_CORDON:
            # The only cordon it could pick is the node taken out for planned maintenance: the
            # maintenance is disrupted, and pods land on a node about to be worked on.
            damage += 1
            conditions[i] &= ~PLANNED_CORDON
        elif not _has(faults, NODE_CORDONED):
            refused = True  # no node is cordoned: `kubectl uncordon` has nothing to act on
        # With a cordoned node not identified, `kubectl uncordon` of a schedulable node changes nothing.
    if not refused:
        # The cluster changed: which object was which must be read again (a diagnosis of what only
        # a human can fix stands).
        revealed[i] &= HUMAN_ONLY_MASK
    return fixed, repairs, damage, refused


@njit(**STEP_PART)
def _advance_faults(rng, shape, conditions, active, size, timer, events, i, chance):
    """Time passes: faults left alone get worse and set off others, events accumulate and age.
    Returns whether the cluster changed (beyond its events)."""
    before = active[i]
    # A dead node's evicted pods crowd the others into pressure; a runaway or an overloaded
    # deployment starves its neighbours into OOM kills; evictions and failed lookups crash pods.
    if _has(before, NODE_NOT_READY) and timer[i, NODE_NOT_READY] >= EVICTION_DELAY:
        _cascade(rng, shape, conditions, active, size, timer, i, NODE_NOT_READY, NODE_PRESSURE, chance)
    if size[i, NODE_CORDONED] >= 2:  # several cordoned nodes crowd the rest the same way
        _cascade(rng, shape, conditions, active, size, timer, i, NODE_CORDONED, NODE_PRESSURE, chance)
    _cascade(rng, shape, conditions, active, size, timer, i, RUNAWAY_DEPLOYMENT, OOM_KILLED, chance)
    _cascade(rng, shape, conditions, active, size, timer, i, OVERPROVISIONED, OOM_KILLED, chance / 2)
    _cascade(rng, shape, conditions, active, size, timer, i, UNDERSCALED, OOM_KILLED, chance / 2)
    _cascade(rng, shape, conditions, active, size, timer, i, NODE_PRESSURE, CRASHED_PODS, chance)
    _cascade(rng, shape, conditions, active, size, timer, i, DNS_FAILURE, CRASHED_PODS, chance / 2)
    faults = active[i]
    changed = faults != before
    warnings = 0.0
    rest = faults
    f = 0
    while rest:
        if rest & 1:
            warnings += WARNINGS_PER_STEP[f]
        rest >>= 1
        f += 1
    events[i, 0] = events[i, 0] * 0.8 + warnings
    events[i, 1] = events[i, 1] * 0.8 + 2.0 + 0.01 * shape[i, PODS]
    if _has(faults, NODE_NOT_READY):  # its pods wait for the eviction timeout
        timer[i, NODE_NOT_READY] += 1
        changed |= timer[i, NODE_NOT_READY] == EVICTION_DELAY
    for f in (BAD_ROLLOUT, IMAGE_PULL_FAILURE, CONFIG_ERROR):
        if _has(faults, f):  # a stuck rollout runs into its progress deadline
            timer[i, f] += 1
            changed |= timer[i, f] == PROGRESS_DEADLINE
    if _has(faults, OOM_KILLED) and timer[i, OOM_KILLED] < 0:  # restarted pods grow back to their limit
        timer[i, OOM_KILLED] += 1
        if timer[i, OOM_KILLED] == 0:
            size[i, OOM_KILLED] = max(1, shape[i, REPLICAS] // 2)
            changed = True
    if _has(faults, NODE_PRESSURE):  # the kubelet evicts one more pod every few steps
        timer[i, NODE_PRESSURE] += 1
        if timer[i, NODE_PRESSURE] >= PRESSURE_RECUR:
            timer[i, NODE_PRESSURE] = 0
            evicted = min(shape[i, PODS_PER_NODE], size[i, NODE_PRESSURE] + 1)
            changed |= evicted != size[i, NODE_PRESSURE]
            size[i, NODE_PRESSURE] = evicted
    return changed


@njit(**STEP_PART)
def _compute_truth(shape, conditions, active, size, timer, background, retrying, truth, usage, found, i):
    """The cluster as it is (counts, usage) and every finding the analyzers would report now."""
    faults = active[i]
    nodes = shape[i, NODES]
    deployments = shape[i, DEPLOYMENTS]
    per_node = shape[i, PODS_PER_NODE]

    not_ready = 1 if _has(faults, NODE_NOT_READY) else 0
    cordoned = size[i, NODE_CORDONED] if _has(faults, NODE_CORDONED) else 0
    planned = 1 if conditions[i] & PLANNED_CORDON else 0
    pressured = _has(faults, NODE_PRESSURE)
    schedulable = max(0, nodes - not_ready - cordoned - planned)
    capacity = schedulable * shape[i, POD_CAPACITY]

    # Pod objects that want a node: the desired pods, plus runaway, over-provisioned or new replicas,
    # minus the replicas a quota refuses to create.
    demand = shape[i, PODS]
    if _has(faults, RUNAWAY_DEPLOYMENT):
        demand += size[i, RUNAWAY_DEPLOYMENT]
    if _has(faults, OVERPROVISIONED):
        demand += size[i, OVERPROVISIONED]
    if _has(faults, QUOTA_EXHAUSTED):
        demand -= size[i, QUOTA_EXHAUSTED]

    # A NotReady node's pods are Unknown, then (after the eviction timeout) Terminating while their
    # replacements are scheduled elsewhere.
    evicting = not_ready == 1 and timer[i, NODE_NOT_READY] < EVICTION_DELAY
    unknown = per_node if not_ready else 0
    pvc_pending = size[i, UNBOUND_PVC] if _has(faults, UNBOUND_PVC) else 0
    to_schedule = max(0, demand - (unknown if evicting else 0) - pvc_pending)
    capacity_pending = max(0, to_schedule - capacity)
    scheduled = to_schedule - capacity_pending
    if _has(faults, INSUFFICIENT_CAPACITY):  # new pods no node has room for
        capacity_pending += size[i, INSUFFICIENT_CAPACITY]

    waiting = 0  # bound to a node, containers not started (image pull, missing config)
    if _has(faults, IMAGE_PULL_FAILURE):
        waiting += size[i, IMAGE_PULL_FAILURE]
    if _has(faults, CONFIG_ERROR):
        waiting += size[i, CONFIG_ERROR]
    waiting = min(waiting, scheduled)
    failed = retrying[i]
    if _has(faults, CRASHED_PODS):
        failed += size[i, CRASHED_PODS]
    if _has(faults, BAD_ROLLOUT):
        failed += size[i, BAD_ROLLOUT]
    if _has(faults, OOM_KILLED):
        failed += size[i, OOM_KILLED]
    if pressured:
        failed += size[i, NODE_PRESSURE]
    if _has(faults, JOB_FAILED):
        failed += size[i, JOB_FAILED]
    if _has(faults, DNS_FAILURE):
        failed += COREDNS_PODS
    failed = min(failed, scheduled - waiting)

    # The findings, starting from the benign ones this cluster always shows.
    for k in range(found.shape[1]):
        found[i, k] = background[i, k]
    unavailable = 0  # deployments with a finding
    if _has(faults, CRASHED_PODS):
        found[i, K_POD_CRASHLOOP] += size[i, CRASHED_PODS]
        found[i, K_LOG_PANIC] += size[i, CRASHED_PODS]
        found[i, K_SERVICE_NOT_READY] += min(size[i, CRASHED_PODS], deployments)
        unavailable += min(size[i, CRASHED_PODS], deployments)
    if _has(faults, BAD_ROLLOUT):
        found[i, K_POD_CRASHLOOP] += size[i, BAD_ROLLOUT]
        found[i, K_LOG_CONFIG] += size[i, BAD_ROLLOUT]
        found[i, K_SERVICE_NOT_READY] += 1
        unavailable += 1
        if timer[i, BAD_ROLLOUT] >= PROGRESS_DEADLINE:
            found[i, K_DEPLOY_DEADLINE] += 1
    if _has(faults, OOM_KILLED) and size[i, OOM_KILLED] > 0:
        found[i, K_POD_OOM] += size[i, OOM_KILLED]
        found[i, K_SERVICE_NOT_READY] += 1
        unavailable += 1
    if not_ready:
        found[i, K_NODE_NOT_READY] += 1
        if evicting:
            found[i, K_POD_UNKNOWN] += per_node
            found[i, K_SERVICE_NOT_READY] += min(per_node, deployments)
            unavailable += min(per_node, deployments)
        else:
            found[i, K_POD_TERMINATING_DEAD] += per_node
    if cordoned:
        found[i, K_NODE_CORDONED] += cordoned
    if planned:
        found[i, K_NODE_PLANNED] += 1
    if pressured:
        found[i, K_NODE_MEMORY_PRESSURE] += 1
        if size[i, NODE_PRESSURE] > 0:
            found[i, K_POD_EVICTED] += size[i, NODE_PRESSURE]
    if _has(faults, RUNAWAY_DEPLOYMENT):
        found[i, K_HPA_LIMITED] += 1
        unavailable += 1
    if _has(faults, UNDERSCALED):
        found[i, K_POD_READINESS] += size[i, UNDERSCALED]
        found[i, K_LOG_OVERLOADED] += size[i, UNDERSCALED]
        found[i, K_SERVICE_NOT_READY] += size[i, UNDERSCALED]
        unavailable += size[i, UNDERSCALED]
    if _has(faults, QUOTA_EXHAUSTED):
        found[i, K_QUOTA_EXCEEDED] += 1
        found[i, K_RS_FAILED_CREATE] += 1
        found[i, K_DEPLOY_REPLICA_FAILURE] += 1
        unavailable += 1
    if pvc_pending:
        found[i, K_PVC_PENDING] += 1
        found[i, K_POD_UNBOUND_VOLUME] += pvc_pending
        unavailable += 1
    if _has(faults, DNS_FAILURE):
        spread = size[i, DNS_FAILURE]
        found[i, K_DNS_DOWN] += 1
        found[i, K_POD_CRASHLOOP] += COREDNS_PODS
        found[i, K_POD_READINESS] += spread
        found[i, K_EVENT_DNS] += spread
        found[i, K_LOG_DNS] += spread
        found[i, K_SERVICE_NO_READY] += 1  # kube-dns
        found[i, K_SERVICE_NOT_READY] += spread  # connections made before the outage keep some pods ready
        unavailable += spread
    if _has(faults, IMAGE_PULL_FAILURE):
        found[i, K_POD_IMAGE_PULL] += size[i, IMAGE_PULL_FAILURE]
        found[i, K_SERVICE_NOT_READY] += 1
        unavailable += 1
        if timer[i, IMAGE_PULL_FAILURE] >= PROGRESS_DEADLINE:
            found[i, K_DEPLOY_DEADLINE] += 1
    if _has(faults, CONFIG_ERROR):
        found[i, K_POD_CONFIG] += size[i, CONFIG_ERROR]
        found[i, K_SERVICE_NOT_READY] += 1
        unavailable += 1
        if timer[i, CONFIG_ERROR] >= PROGRESS_DEADLINE:
            found[i, K_DEPLOY_DEADLINE] += 1
    if _has(faults, DEPENDENCY_DOWN):
        found[i, K_POD_READINESS] += size[i, DEPENDENCY_DOWN]
        found[i, K_LOG_REFUSED] += size[i, DEPENDENCY_DOWN]
        found[i, K_SERVICE_NO_READY] += 1
        unavailable += 1
    if _has(faults, SERVICE_NO_ENDPOINTS):
        found[i, K_SERVICE_NO_PODS] += 1
    if capacity_pending > 0:  # pods no node can fit: FailedScheduling, and their deployments short
        found[i, K_POD_UNSCHEDULABLE] += capacity_pending
        if not _has(faults, RUNAWAY_DEPLOYMENT):  # (a runaway's own replicas are the pending ones)
            unavailable += min(3, capacity_pending)
    if _has(faults, JOB_FAILED):
        found[i, K_JOB_FAILED] += 1
        found[i, K_POD_EXITED] += size[i, JOB_FAILED]
    if retrying[i] > 0:
        found[i, K_JOB_POD_FAILURES] += 1
        found[i, K_POD_EXITED] += retrying[i]
    if conditions[i] & NO_METRICS:
        found[i, K_METRICS_UNAVAILABLE] = 1.0
    unavailable = min(unavailable, deployments)
    found[i, K_DEPLOY_UNAVAILABLE] += unavailable

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

    truth[i, S_NODES] = nodes
    truth[i, S_READY] = schedulable
    truth[i, S_NOT_READY] = not_ready
    truth[i, S_PODS] = scheduled + pvc_pending + capacity_pending + unknown
    truth[i, S_RUNNING] = scheduled - failed - waiting
    truth[i, S_PENDING] = capacity_pending + pvc_pending + waiting
    truth[i, S_FAILED] = failed
    truth[i, S_UNKNOWN] = unknown
    truth[i, S_DEPLOYMENTS] = deployments
    truth[i, S_AVAILABLE] = deployments - unavailable
    truth[i, S_UNAVAILABLE] = unavailable
    truth[i, S_CPU] = min(100.0, pod_cpu)
    truth[i, S_MEM] = min(100.0, node_mem + pod_mem - MEM_SCALE * utilisation)
    flags = _flags(found, i)
    truth[i, S_PVC] = 1.0 if flags & 1 else 0.0
    truth[i, S_NETWORK] = 1.0 if flags & 2 else 0.0
    truth[i, S_PRESSURE] = 1.0 if flags & 4 else 0.0


@njit(**HELPER)
def _flags(counts, i):
    """The three flags (bits 0, 1, 2) that finding counts raise."""
    flags = 0
    for j in range(FLAG_KEY_INDEX.shape[0]):
        k = FLAG_KEY_INDEX[j]
        if counts[i, k] > 0.0:
            flags |= 1 << FLAG_OF[k]
    return flags


@njit(**HELPER)
def _health(truth, i):
    """Cluster health in [0, 1]: the share of pods running, deployments available, nodes ready."""
    pods = max(1.0, truth[i, S_PODS])
    deployments = max(1.0, truth[i, S_DEPLOYMENTS])
    nodes = max(1.0, truth[i, S_NODES])
    return (
        0.4 * truth[i, S_RUNNING] / pods + 0.4 * truth[i, S_AVAILABLE] / deployments + 0.2 * truth[i, S_READY] / nodes
    )


@njit(**STEP_PART)
def _refresh_seen(conditions, truth, usage, found, shown, seen, seen_found, observations, i, action):
    """What a read shows: copy it from the true state into the agent's view and its input row (only
    what changed is encoded again: the row holds the encoding of what the agent saw before). The
    flags follow the findings shown so far."""
    row = observations[i]
    lo = REFRESH_LO[action]
    hi = REFRESH_HI[action]
    changed = False
    if action == TOP_NODES or action == TOP_PODS:
        cpu, mem = 0.0, 0.0  # no metrics: unknown, not zero; the Metrics finding says so
        if not conditions[i] & NO_METRICS:
            view = USAGE_NODE_CPU if action == TOP_NODES else USAGE_POD_CPU
            cpu, mem = usage[i, view], usage[i, view + 1]
        changed = seen[i, S_CPU] != cpu or seen[i, S_MEM] != mem
        seen[i, S_CPU] = cpu
        seen[i, S_MEM] = mem
    elif lo >= 0:
        for k in range(lo, hi + 1):
            if seen[i, k] != truth[i, k]:
                seen[i, k] = truth[i, k]
                changed = True
    if not (shown[i] >> action) & 1:  # the findings changed since this read last showed them
        shown[i] |= 1 << action
        for j in range(SHOWN_START[action], SHOWN_START[action + 1]):
            k = SHOWN_KEYS[j]
            if seen_found[i, k] != found[i, k]:
                seen_found[i, k] = found[i, k]
                row[FINDINGS_AT + k] = encode_count(found[i, k])
        flags = _flags(seen_found, i)
        for bit, k in ((1, S_PVC), (2, S_NETWORK), (4, S_PRESSURE)):
            value = 1.0 if flags & bit else 0.0
            if seen[i, k] != value:
                seen[i, k] = value
                row[k] = value
    if changed:
        encode_observation(seen[i], row, lo, hi)


@njit(**HELPER)
def must_name(conditions, active, i):
    """The active faults the agent must name: all of them on a read-only cluster, else those only a
    human can fix."""
    if conditions[i] & READ_ONLY:
        return active[i]
    return active[i] & HUMAN_ONLY_MASK


@njit(**HELPER)
def verdict_errors(conditions, active, caused, named, seen_found, i):
    """How wrong a WAIT's report is: faults named that are not there or missed (of those it must
    name), faults named that no read of the episode backed with evidence (`EVIDENCE_MASKS`), faults
    the agent could fix still there, and faults its own blind remedies broke."""
    target = must_name(conditions, active, i)
    errors = popcount(named[i] ^ target)
    shown = 0
    for k in range(seen_found.shape[1]):
        if seen_found[i, k] > 0.0:
            shown |= 1 << k
    for f in range(NUM_FAULTS):
        if (named[i] >> f) & 1 and (target >> f) & 1 and not shown & EVIDENCE_MASKS[f]:
            errors += 1
    if not conditions[i] & READ_ONLY:
        errors += popcount(active[i] & FIXABLE_MASK)
    errors += popcount(active[i] & caused[i])
    return errors


@njit(**JIT)
def step_all(st, actions, observations, rewards, terminals, truncations, auto_reset, named):
    # The step loop takes the arrays one by one: a tuple of arrays live across its branches would
    # be reference-counted array by array at every one of them.
    ended = _step_loop(
        st.rng,
        st.shape,
        st.conditions,
        st.active,
        st.revealed,
        st.caused,
        st.size,
        st.timer,
        st.events,
        st.background,
        st.retrying,
        st.truth,
        st.usage,
        st.found,
        st.shown,
        st.seen,
        st.seen_found,
        st.fresh,
        st.taken,
        st.last_action,
        st.last_result,
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
    conditions,
    active,
    revealed,
    caused,
    size,
    timer,
    events,
    background,
    retrying,
    truth,
    usage,
    found,
    shown,
    seen,
    seen_found,
    fresh,
    taken,
    last_action,
    last_result,
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
        parts[R_DEGRADED] = 0.0
        parts[R_INDUCED] = 0.0
        parts[R_TERMINAL] = 0.0
        resolved_now[i] = 0
        step_harmful[i] = 0
        shape[i, STEP] += 1
        outcome[i] = OUTCOME_RUNNING
        result = RESULT_APPLIED
        fresh_before = fresh[i]
        taken_before = taken[i]
        if action != WAIT:
            taken[i] |= 1 << action

        if action == WAIT:
            # The agent's report: the episode ends, won only if the report is exact.
            errors = verdict_errors(conditions, active, caused, named, seen_found, i)
            if errors == 0:
                outcome[i] = OUTCOME_RESOLVED
                parts[R_TERMINAL] = REWARD_DONE
            else:
                outcome[i] = OUTCOME_WRONG
                parts[R_TERMINAL] = REWARD_WRONG_VERDICT - REWARD_PER_ERROR * errors
        else:
            # 1. The action: a remedy changes the cluster (a dry run on a read-only one).
            fixed = 0
            repairs = 0
            damage = 0
            if IS_REMEDY[action]:
                if conditions[i] & READ_ONLY:
                    result = RESULT_DRY_RUN
                else:
                    fixed, repairs, damage, refused = _apply_action(
                        rng, shape, conditions, active, revealed, caused, size, timer, i, action
                    )
                    if refused:
                        result = RESULT_REFUSED
                    else:
                        fresh[i] = 0  # after a change every read is stale
            changed = IS_REMEDY[action] and result == RESULT_APPLIED
            before = active[i]

            # 2. Time passes; now and then something else breaks.
            changed |= _advance_faults(rng, shape, conditions, active, size, timer, events, i, cascade_chance)
            if _uniform(rng, i) < new_fault_rate and popcount(active[i]) < max_faults:
                changed |= _inject_fault(rng, shape, conditions, active, size, timer, weights, i)
            truth[i, S_WARN] = np.floor(events[i, 0] + 0.5)  # events are counted, not averaged
            truth[i, S_NORMAL] = np.floor(events[i, 1] + 0.5)
            # Faults that broke out this step on their own (cascades, new failures) count against
            # the agent like damage: fixing a symptom again and again while its cause lasts never pays.
            arrived = active[i] & ~before & ~revealed[i]

            # 3. A read identifies the faults it tells apart; what the cluster looks like now, and
            # what the agent sees of it.
            identified = 0
            if IS_READ[action]:
                fresh[i] |= 1 << action
                if (action == TOP_NODES or action == TOP_PODS) and conditions[i] & NO_METRICS:
                    result = RESULT_UNAVAILABLE
                else:
                    identified = active[i] & ~revealed[i] & REVEAL_MASK[action]
                    revealed[i] |= identified
            new_health = health[i]
            if changed:  # (otherwise the counts and findings are what they were)
                _compute_truth(shape, conditions, active, size, timer, background, retrying, truth, usage, found, i)
                shown[i] = 0
                new_health = _health(truth, i)
            if IS_READ[action]:
                _refresh_seen(conditions, truth, usage, found, shown, seen, seen_found, observations, i, action)

            parts[R_RESOLVED] = REWARD_RESOLVED * (popcount(fixed & ~INDUCIBLE_MASK) + repairs)
            parts[R_DEGRADED] = REWARD_DEGRADED * max(0.0, health[i] - new_health) - REWARD_RESOLVED * popcount(arrived)
            parts[R_INDUCED] = REWARD_INDUCED * damage
            health[i] = new_health
            resolved_now[i] = fixed
            step_harmful[i] = 1 if damage > 0 else 0
            harmful[i] += step_harmful[i]

            if truth[i, S_READY] <= 0:
                outcome[i] = OUTCOME_CATASTROPHE
                parts[R_TERMINAL] = REWARD_CATASTROPHE
            elif shape[i, STEP] >= max_steps:
                outcome[i] = OUTCOME_TRUNCATED

        previous_action, previous_result, previous_fresh = last_action[i], last_result[i], fresh_before
        last_action[i] = action
        last_result[i] = result
        reward = parts[R_STEP] + parts[R_RESOLVED] + parts[R_DEGRADED] + parts[R_INDUCED] + parts[R_TERMINAL]
        rewards[i] = reward
        terminals[i] = (
            outcome[i] == OUTCOME_RESOLVED or outcome[i] == OUTCOME_CATASTROPHE or outcome[i] == OUTCOME_WRONG
        )
        truncations[i] = outcome[i] == OUTCOME_TRUNCATED
        episode_return[i] += reward
        if outcome[i] != OUTCOME_RUNNING:
            ended += 1
        else:
            row = observations[i]
            if previous_action >= 0:
                row[LAST_ACTION_AT + previous_action] = 0.0
            row[LAST_ACTION_AT + action] = 1.0
            if previous_result >= 0:
                row[RESULT_AT + previous_result] = 0.0
            row[RESULT_AT + result] = 1.0
            if fresh[i] != previous_fresh:
                for a in range(IS_READ.shape[0]):
                    if FRESH_INDEX[a] >= 0:
                        row[FRESH_INDEX[a]] = 1.0 if (fresh[i] >> a) & 1 else 0.0
            if taken[i] != taken_before:
                row[TAKEN_INDEX[action]] = 1.0
            row[STEP_AT] = encode_steps(shape[i, STEP])
    return ended


@njit(**COMPILED)
def _finish_episodes(st, observations, auto_reset, everyone=False):
    # Only the clusters whose episode ended are visited; the arrays are passed one by one, as to the
    # step loop (a helper that reads them off the tuple reference-counts each on every access).
    _finish_loop(
        st.rng,
        st.shape,
        st.load,
        st.conditions,
        st.active,
        st.revealed,
        st.caused,
        st.size,
        st.timer,
        st.events,
        st.background,
        st.retrying,
        st.truth,
        st.usage,
        st.found,
        st.shown,
        st.seen,
        st.seen_found,
        st.fresh,
        st.taken,
        st.last_action,
        st.last_result,
        st.health,
        st.episode_return,
        st.harmful,
        st.weights,
        st.params,
        st.outcome,
        st.final_return,
        st.final_length,
        st.final_harmful,
        st.final_health,
        st.final_active,
        st.final_conditions,
        observations,
        auto_reset,
        everyone,
    )


@njit(**HELPER)
def _finish_loop(
    rng,
    shape,
    load,
    conditions,
    active,
    revealed,
    caused,
    size,
    timer,
    events,
    background,
    retrying,
    truth,
    usage,
    found,
    shown,
    seen,
    seen_found,
    fresh,
    taken,
    last_action,
    last_result,
    health,
    episode_return,
    harmful,
    weights,
    params,
    outcome,
    final_return,
    final_length,
    final_harmful,
    final_health,
    final_active,
    final_conditions,
    observations,
    auto_reset,
    everyone,
):
    """Record each episode that ended and start a new one there (`auto_reset`), or write its last input
    row; with `everyone`, start a new episode in every cluster and record nothing."""
    for i in range(outcome.shape[0]):
        if everyone:
            _reset_cluster(
                rng,
                shape,
                load,
                conditions,
                active,
                revealed,
                caused,
                size,
                timer,
                events,
                background,
                retrying,
                truth,
                usage,
                found,
                shown,
                seen,
                seen_found,
                fresh,
                taken,
                last_action,
                last_result,
                health,
                episode_return,
                harmful,
                weights,
                params,
                observations,
                i,
            )
            continue
        if outcome[i] == OUTCOME_RUNNING:
            continue
        final_return[i] = episode_return[i]
        final_length[i] = shape[i, STEP]
        final_harmful[i] = harmful[i]
        final_health[i] = health[i]
        final_active[i] = active[i]
        final_conditions[i] = conditions[i]
        if auto_reset:
            _reset_cluster(
                rng,
                shape,
                load,
                conditions,
                active,
                revealed,
                caused,
                size,
                timer,
                events,
                background,
                retrying,
                truth,
                usage,
                found,
                shown,
                seen,
                seen_found,
                fresh,
                taken,
                last_action,
                last_result,
                health,
                episode_return,
                harmful,
                weights,
                params,
                observations,
                i,
            )
        else:
            _encode_row(shape, seen, seen_found, last_action, last_result, fresh, taken, conditions, i, observations[i])


@njit(**HELPER)
def _encode_row(shape, seen, seen_found, last_action, last_result, fresh, taken, conditions, i, row):
    """The whole input row of cluster i, from what it has seen and done."""
    encode_observation(seen[i], row)
    for k in range(seen_found.shape[1]):
        count = seen_found[i, k]
        row[FINDINGS_AT + k] = encode_count(count) if count > 0.0 else 0.0
    write_history(
        row, last_action[i], last_result[i], fresh[i], taken[i], not conditions[i] & READ_ONLY, shape[i, STEP]
    )


# ---------------------------------------------------------------------------------------------
# Episode start.


@njit(**HELPER)
def _reset_cluster(
    rng,
    shape,
    load,
    conditions,
    active,
    revealed,
    caused,
    size,
    timer,
    events,
    background,
    retrying,
    truth,
    usage,
    found,
    shown,
    seen,
    seen_found,
    fresh,
    taken,
    last_action,
    last_result,
    health,
    episode_return,
    harmful,
    weights,
    params,
    observations,
    i,
):
    # Sizes are log-uniform; pods per node uniform; deployments hold what DaemonSets do not.
    nodes = _log_uniform_int(_uniform(rng, i), params[P_MIN_NODES], params[P_MAX_NODES])
    density = _randint(rng, i, int(params[P_MIN_DENSITY]), int(params[P_MAX_DENSITY]))
    daemons = min(_randint(rng, i, 2, 5), max(0, density - 1))  # kube-proxy, the CNI, log and metrics agents
    replicas = params[P_MIN_REPLICAS] + _uniform(rng, i) * (params[P_MAX_REPLICAS] - params[P_MIN_REPLICAS])
    app_pods = max(1, nodes * (density - daemons))
    deployments = int(round(app_pods / replicas))
    deployments = min(int(params[P_MAX_DEPLOYMENTS]), max(int(params[P_MIN_DEPLOYMENTS]), deployments))
    pods = int(round(deployments * replicas)) + nodes * daemons
    load[i] = params[P_MIN_LOAD] + _uniform(rng, i) * (params[P_MAX_LOAD] - params[P_MIN_LOAD])
    shape[i, NODES] = nodes
    shape[i, DEPLOYMENTS] = deployments
    shape[i, PODS] = pods
    shape[i, REPLICAS] = max(1, int(round(replicas)))
    # Pod slots per node: a healthy cluster runs at `load` of its capacity.
    shape[i, POD_CAPACITY] = max(1, int(np.ceil(pods / (nodes * max(load[i], 0.05)))))
    shape[i, PODS_PER_NODE] = (pods + nodes - 1) // nodes
    shape[i, STEP] = 0

    # What kind of cluster, and the benign findings it shows.
    kind = 0
    if _uniform(rng, i) < params[P_READ_ONLY_SHARE]:
        kind |= READ_ONLY
    if _uniform(rng, i) >= params[P_METRICS_SHARE]:
        kind |= NO_METRICS
    noise = params[P_BACKGROUND]
    if nodes >= 5 and _uniform(rng, i) < PLANNED_CORDON_CHANCE * noise:
        kind |= PLANNED_CORDON
    conditions[i] = kind
    for k in range(background.shape[1]):
        background[i, k] = 0.0
    for j in range(BACKGROUND_KEYS.shape[0]):
        if _uniform(rng, i) < BACKGROUND_CHANCE[j] * noise:
            background[i, BACKGROUND_KEYS[j]] = _randint(rng, i, BACKGROUND_LOW[j], BACKGROUND_HIGH[j])
    retrying[i] = 1 if _uniform(rng, i) < RETRYING_JOB_CHANCE * noise else 0

    # The faults it starts with.
    active[i] = 0
    revealed[i] = 0
    caused[i] = 0
    for f in range(size.shape[1]):
        size[i, f] = 0
        timer[i, f] = 0
    low, high = int(params[P_MIN_FAULTS]), int(params[P_MAX_FAULTS])
    total = 0.0
    for k in range(low, high + 1):
        total += FAULT_COUNT_TABLE[k]
    pick = _uniform(rng, i) * total
    num_faults = high
    for k in range(low, high + 1):
        pick -= FAULT_COUNT_TABLE[k]
        if pick < 0.0:
            num_faults = k
            break
    for _ in range(num_faults):
        _inject_fault(rng, shape, conditions, active, size, timer, weights, i)
    events[i, 0] = 0.0
    events[i, 1] = 5.0 * (2.0 + 0.01 * pods)  # the steady state of `_advance_faults`
    _compute_truth(shape, conditions, active, size, timer, background, retrying, truth, usage, found, i)
    truth[i, S_WARN] = 0.0
    truth[i, S_NORMAL] = np.floor(events[i, 1] + 0.5)
    health[i] = _health(truth, i)
    episode_return[i] = 0.0
    harmful[i] = 0
    # The first look is a summary of `kubectl get nodes,pods`: counts, no object singled out yet.
    for k in range(seen.shape[1]):
        seen[i, k] = 0.0
    for k in range(FIRST_LOOK_LO, FIRST_LOOK_HI + 1):
        seen[i, k] = truth[i, k]
    for k in range(seen_found.shape[1]):
        seen_found[i, k] = 0.0
    shown[i] = 0
    fresh[i] = 0
    taken[i] = 0
    last_action[i] = -1
    last_result[i] = -1
    _encode_row(shape, seen, seen_found, last_action, last_result, fresh, taken, conditions, i, observations[i])


@njit(**JIT)
def reset_all(st, observations):
    _finish_episodes(st, observations, True, True)


# The tables above are compiled into the cached kernels: a change to any of them flushes the cache.
drop_stale(
    "kernels",
    (seed_streams, reset_all, step_all),
    fingerprint(FAULT_COUNT_TABLE, *(value for name, value in sorted(vars(layout).items()) if name[0].isupper())),
)
