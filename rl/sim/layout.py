"""The simulator's vocabulary: array columns, reward and timing constants, and the tables its
kernels read, every one derived from the fault catalogue (`rl.faults`), the findings vocabulary
(`rl.findings`) and the agent's input layout (`rl.agent_input`).

Numba reads module-level integers and arrays as compile-time constants, so the kernels
(`rl.sim.kernels`) use the names below instead of numbers.
"""

import numpy as np

from rl.actions import NUM_ACTIONS, REMEDIATION_ACTIONS, ClusterAction
from rl.agent_input import (
    COUNTS_SHOWN_BY,
    FIRST_LOOK,
    INPUT_KEY_INDEX,
    INPUT_SHOWS,
    NUM_INPUT_KEYS,
    READS,
    field_range,
)
from rl.diagnosis import EVIDENCE_KEYS as _EVIDENCE_KEYS  # (a dict of sets: kept out of the kernels' fingerprint)
from rl.faults import BENIGN, CATALOGUE, HUMAN_ONLY, METRICS_UNAVAILABLE, NUM_FAULTS, Fault
from rl.state import OBS_SIZE

A = ClusterAction
F = Fault

# Fault numbers, for the kernels.
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
IMAGE_PULL_FAILURE = int(F.IMAGE_PULL_FAILURE)
CONFIG_ERROR = int(F.CONFIG_ERROR)
DEPENDENCY_DOWN = int(F.DEPENDENCY_DOWN)
SERVICE_NO_ENDPOINTS = int(F.SERVICE_NO_ENDPOINTS)
INSUFFICIENT_CAPACITY = int(F.INSUFFICIENT_CAPACITY)
JOB_FAILED = int(F.JOB_FAILED)

# Action numbers, for the kernels.
GET_NODES = int(A.GET_NODES)
TOP_NODES = int(A.TOP_NODES)
TOP_PODS = int(A.TOP_PODS)
RESTART_FAILED_PODS = int(A.RESTART_FAILED_PODS)
SCALE_UP_DEPLOYMENT = int(A.SCALE_UP_DEPLOYMENT)
SCALE_DOWN_DEPLOYMENT = int(A.SCALE_DOWN_DEPLOYMENT)
DRAIN_NODE = int(A.DRAIN_NODE)
UNCORDON_NODE = int(A.UNCORDON_NODE)
WAIT = int(A.WAIT)
IS_REMEDY = np.array([a in REMEDIATION_ACTIONS for a in A], dtype=np.bool_)
IS_READ = np.array([a in READS for a in A], dtype=np.bool_)

# Columns of the per-cluster shape (integers drawn at reset, and the step count).
NODES, DEPLOYMENTS, PODS, REPLICAS, POD_CAPACITY, PODS_PER_NODE, STEP = range(7)
NUM_SHAPE = 7

# Bits of the per-cluster conditions drawn at reset.
READ_ONLY = 1  # remedies answer as dry runs; WAIT ends the episode with the agent's diagnosis
NO_METRICS = 2  # no metrics-server: `top` answers "unavailable"
PLANNED_CORDON = 4  # one node cordoned for planned maintenance (annotated): not a fault

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

# Indices into the float parameter vector built from a ScenarioConfig (`rl.sim.batch.scenario_params`).
(
    P_MIN_NODES,
    P_MAX_NODES,
    P_MIN_DENSITY,
    P_MAX_DENSITY,
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
    P_READ_ONLY_SHARE,
    P_METRICS_SHARE,
    P_BACKGROUND,
) = range(18)
NUM_PARAMS = 18

# Reward components, reported per step.
R_STEP, R_RESOLVED, R_DEGRADED, R_INDUCED, R_TERMINAL = range(5)
NUM_REWARD_PARTS = 5
REWARD_PART_NAMES = ("step", "resolved", "degradation", "induced", "terminal")

REWARD_STEP = -0.03  # every step costs a little: finish quickly
REWARD_RESOLVED = 0.4  # per fault fixed
REWARD_DEGRADED = -1.0  # times the drop in cluster health (0..1)
REWARD_INDUCED = -2.0  # per wrong object a remedy acted on (a healthy node drained, ...): worth ~70 reads
REWARD_DONE = 0.5  # WAIT with the exact diagnosis and nothing left for the agent: the episode is won
# A report that is not exact (something left, missed, or named that is not there) costs as much as
# about 50 reads: an SRE reads again rather than hand over a wrong diagnosis.
REWARD_WRONG_VERDICT = -1.0
REWARD_PER_ERROR = 0.5  # and this much more for each fault missed, left or falsely named
REWARD_CATASTROPHE = -1.0  # no node left Ready

# Episode outcomes written for each step.
OUTCOME_RUNNING, OUTCOME_RESOLVED, OUTCOME_CATASTROPHE, OUTCOME_TRUNCATED, OUTCOME_WRONG = range(5)

EVICTION_DELAY = 5  # steps a NotReady node's pods stay Unknown before they are evicted
PROGRESS_DEADLINE = 10  # steps until a stuck rollout's Deployment says ProgressDeadlineExceeded
LASTING_HARM_CHANCE = 0.5  # a blind drain, restart or scale-down breaks something only a human can mend
OOM_RECUR = 3  # steps until restarted OOMKilled pods are killed again
PRESSURE_RECUR = 2  # steps between evictions on a pressured node
CPU_SCALE = 40.0  # node-average CPU% at full utilisation of a healthy cluster
MEM_SCALE = 40.0
HOTSPOT = 40.0  # extra CPU% or memory% a hot workload or a pressured node shows
COREDNS_PODS = 2

# Columns of the usage array: CPU and memory % as `kubectl top nodes` shows them (node averages: a
# pressured node stands out) and as `kubectl top pods` shows them (pods against their requests and
# limits: a hot deployment, pods at their memory limit stand out).
USAGE_NODE_CPU, USAGE_NODE_MEM, USAGE_POD_CPU, USAGE_POD_MEM = range(4)


def mask(faults) -> int:
    return sum(1 << int(f) for f in faults)


ALL_FAULTS_MASK = (1 << NUM_FAULTS) - 1
HUMAN_ONLY_MASK = mask(HUMAN_ONLY)
FIXABLE_MASK = ALL_FAULTS_MASK & ~HUMAN_ONLY_MASK
# REVEAL_MASK[a]: the faults read a identifies; FIX_MASK / WORSE_MASK / RELIEF_MASK[a]: the faults
# remedy a fixes, makes worse, or only relieves for a while, once a read identified them.
REVEAL_MASK = np.zeros(NUM_ACTIONS, dtype=np.int64)
FIX_MASK = np.zeros(NUM_ACTIONS, dtype=np.int64)
WORSE_MASK = np.zeros(NUM_ACTIONS, dtype=np.int64)
RELIEF_MASK = np.zeros(NUM_ACTIONS, dtype=np.int64)
for _spec in CATALOGUE:
    for _table, _actions in (
        (REVEAL_MASK, _spec.revealed_by),
        (FIX_MASK, _spec.fixed_by),
        (WORSE_MASK, _spec.worse_by),
        (RELIEF_MASK, _spec.relieved_by),
    ):
        for _action in _actions:
            _table[_action] |= 1 << int(_spec.fault)
NODE_FAULTS_MASK = mask((F.NODE_NOT_READY, F.NODE_CORDONED, F.NODE_PRESSURE))
# Faults that take a whole deployment (at most deployments - 2 of them at once).
WHOLE_DEPLOYMENT_MASK = mask(
    (
        F.BAD_ROLLOUT,
        F.UNDERSCALED,
        F.QUOTA_EXHAUSTED,
        F.IMAGE_PULL_FAILURE,
        F.CONFIG_ERROR,
        F.DEPENDENCY_DOWN,
        F.SERVICE_NO_ENDPOINTS,
    )
)
# Faults that overflow the cluster's capacity: one at a time, or the two would look alike.
OVERFLOW_MASK = mask((F.RUNAWAY_DEPLOYMENT, F.INSUFFICIENT_CAPACITY))
# Faults that make pods fail or wait: with one of them identified, a restart knows why pods fail.
_FAILING_REASONS = {
    "CrashLoopBackOff",
    "OOMKilled",
    "Evicted",
    "ContainerExited",
    "ImagePullBackOff",
    "CreateContainerConfigError",
}
FAILING_PODS_MASK = mask(s.fault for s in CATALOGUE if any(e.reason in _FAILING_REASONS for e in s.findings))
# Faults mended unit by unit (a node, a deployment) or caused by the agent: their repairs are
# rewarded per unit, so that breaking something and mending it again never pays.
INDUCIBLE_MASK = mask((F.NODE_CORDONED, F.UNDERSCALED, F.OVERPROVISIONED))

# Warning events per step while a fault is active (BackOff, FailedScheduling, Evicted, ...).
WARNINGS_PER_STEP = np.zeros(NUM_FAULTS, dtype=np.float32)
for _fault, _rate in {
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
    F.IMAGE_PULL_FAILURE: 2.0,
    F.CONFIG_ERROR: 2.0,
    F.DEPENDENCY_DOWN: 2.0,
    F.SERVICE_NO_ENDPOINTS: 0.0,
    F.INSUFFICIENT_CAPACITY: 1.5,
    F.JOB_FAILED: 1.0,
}.items():
    WARNINGS_PER_STEP[_fault] = _rate

# Finding keys, for the kernels.
_K = INPUT_KEY_INDEX
K_NODE_NOT_READY = _K[("Node", "NotReady")]
K_NODE_MEMORY_PRESSURE = _K[("Node", "MemoryPressure")]
K_NODE_CORDONED = _K[("Node", "Cordoned")]
K_NODE_PLANNED = _K[("Node", "PlannedMaintenance")]
K_POD_CRASHLOOP = _K[("Pod", "CrashLoopBackOff")]
K_POD_OOM = _K[("Pod", "OOMKilled")]
K_POD_IMAGE_PULL = _K[("Pod", "ImagePullBackOff")]
K_POD_CONFIG = _K[("Pod", "CreateContainerConfigError")]
K_POD_EXITED = _K[("Pod", "ContainerExited")]
K_POD_EVICTED = _K[("Pod", "Evicted")]
K_POD_UNKNOWN = _K[("Pod", "PhaseUnknown")]
K_POD_TERMINATING_DEAD = _K[("Pod", "TerminatingOnDeadNode")]
K_POD_UNSCHEDULABLE = _K[("Pod", "Unschedulable")]
K_POD_UNBOUND_VOLUME = _K[("Pod", "UnboundVolume")]
K_POD_READINESS = _K[("Pod", "ReadinessProbeFailed")]
K_DNS_DOWN = _K[("ClusterDNS", "DNSDown")]
K_DEPLOY_UNAVAILABLE = _K[("Deployment", "ReplicasUnavailable")]
K_DEPLOY_DEADLINE = _K[("Deployment", "ProgressDeadlineExceeded")]
K_DEPLOY_REPLICA_FAILURE = _K[("Deployment", "ReplicaFailure")]
K_RS_FAILED_CREATE = _K[("ReplicaSet", "FailedCreate")]
K_JOB_FAILED = _K[("Job", "JobFailed")]
K_JOB_POD_FAILURES = _K[("Job", "PodFailures")]
K_SERVICE_NO_PODS = _K[("Service", "NoMatchingPods")]
K_SERVICE_NO_READY = _K[("Service", "NoReadyEndpoints")]
K_SERVICE_NOT_READY = _K[("Service", "NotReadyEndpoints")]
K_PVC_PENDING = _K[("PersistentVolumeClaim", "Pending")]
K_HPA_LIMITED = _K[("HorizontalPodAutoscaler", "ScalingLimited")]
K_QUOTA_EXCEEDED = _K[("ResourceQuota", "QuotaExceeded")]
K_LOG_PANIC = _K[("Log", "Panic")]
K_LOG_CONFIG = _K[("Log", "ConfigurationError")]
K_LOG_DNS = _K[("Log", "DNSResolutionFailed")]
K_LOG_REFUSED = _K[("Log", "ConnectionRefused")]
K_LOG_OVERLOADED = _K[("Log", "Overloaded")]
K_METRICS_UNAVAILABLE = _K[METRICS_UNAVAILABLE]
K_EVENT_DNS = _K[("Event", "DNSResolutionFailed")]
K_EVENT_WARNING = _K[("Event", "WarningEvent")]

# The finding keys each read shows, as a flat list per action (SHOWN_START[a]..SHOWN_START[a + 1]).
SHOWN_START = np.zeros(NUM_ACTIONS + 1, dtype=np.int64)
SHOWN_KEYS = np.array([k for a in range(NUM_ACTIONS) for k in np.flatnonzero(INPUT_SHOWS[a])], dtype=np.int64)
for _a in range(NUM_ACTIONS):
    SHOWN_START[_a + 1] = SHOWN_START[_a] + int(INPUT_SHOWS[_a].sum())

# The observation fields each read refreshes (an inclusive range of state columns; -1: none), and the
# first look at reset: `rl.agent_input.COUNTS_SHOWN_BY` and `FIRST_LOOK`, shared with the real backend.
REFRESH_LO = np.full(NUM_ACTIONS, -1, dtype=np.int64)
REFRESH_HI = np.full(NUM_ACTIONS, -1, dtype=np.int64)
for _action, _names in COUNTS_SHOWN_BY.items():
    REFRESH_LO[_action], REFRESH_HI[_action] = field_range(_names)
FIRST_LOOK_LO, FIRST_LOOK_HI = field_range(FIRST_LOOK)

# Background: the benign findings of `rl.faults.BENIGN`. Most only show; a planned cordon also takes
# a node out of service, and a retrying Job has a failed pod.
_PLAIN = [b for b in BENIGN if b.key not in (("Node", "PlannedMaintenance"), ("Job", "PodFailures"))]
BACKGROUND_KEYS = np.array([INPUT_KEY_INDEX[b.key] for b in _PLAIN], dtype=np.int64)
BACKGROUND_CHANCE = np.array([b.chance for b in _PLAIN], dtype=np.float64)
BACKGROUND_LOW = np.array([b.fewest for b in _PLAIN], dtype=np.int64)
BACKGROUND_HIGH = np.array([b.most for b in _PLAIN], dtype=np.int64)
PLANNED_CORDON_CHANCE = next(b.chance for b in BENIGN if b.key == ("Node", "PlannedMaintenance"))
RETRYING_JOB_CHANCE = next(b.chance for b in BENIGN if b.key == ("Job", "PodFailures"))

assert OBS_SIZE == 18 and NUM_INPUT_KEYS < 64

# Per fault, the input keys that back naming it (`rl.diagnosis.EVIDENCE_KEYS`), as a bit mask over
# the findings section: a report that names a fault no read of the episode backed is wrong, as
# `diagnose` never names it on a real cluster.
EVIDENCE_MASKS = np.zeros(NUM_FAULTS, dtype=np.int64)
for _fault, _keys in _EVIDENCE_KEYS.items():
    for _key in _keys:
        if _key in INPUT_KEY_INDEX:
            EVIDENCE_MASKS[_fault] |= 1 << INPUT_KEY_INDEX[_key]
