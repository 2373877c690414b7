"""Baseline policies over batches of input rows: random, a lookup of the findings, and a scripted SRE runbook.

A policy maps a batch of input rows (`rl.agent_input`: the counts, the findings the reads have
shown, which reads are fresh, the last action and its result, whether writes are allowed) to one
action per cluster. After each `act` its `beliefs` (float32, `(N, NUM_FAULTS)`) hold the probability
it gives each fault type for each cluster: what it names as wrong (see `rl.diagnosis`).
`reset(mask)` tells it which clusters started a new episode, so per-cluster memory is cleared
there. Neither policy sees anything but its input rows.
"""

import math

import numpy as np

from rl.actions import NUM_ACTIONS, ClusterAction
from rl.agent_input import (
    FINDINGS_AT,
    FRESH_INDEX,
    INPUT_KEY_INDEX,
    INPUT_KEYS,
    NUM_READS,
    READS,
    TAKEN_INDEX,
    WRITES_AT,
)
from rl.diagnosis import FINDING_FAULTS
from rl.faults import HUMAN_ONLY, NUM_FAULTS, SPECS, Fault
from rl.findings import FINDING_SCALE, FIRST_FINDING, SHOWN_BY
from rl.state import OBS_SIZE, ClusterState

A = ClusterAction
F = Fault
HIGH_USAGE = 0.46  # CPU or memory share above what a healthy cluster shows at full load (40%)


class RandomPolicy:
    """Uniformly random actions; each step it names each fault type on a fair coin (belief 0 or 1),
    so its diagnosis figures are a floor."""

    name = "random"

    def __init__(self, num_envs: int, seed: int = 0):
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)
        # A stream of its own, so that naming does not change the actions a seed gives.
        self.naming_rng = np.random.default_rng([seed, 1])
        self.beliefs = np.zeros((num_envs, NUM_FAULTS), dtype=np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        pass

    def act(self, observations: np.ndarray) -> np.ndarray:
        n = len(observations)
        self.beliefs = self.naming_rng.integers(0, 2, size=(n, NUM_FAULTS)).astype(np.float32)
        return self.rng.integers(0, NUM_ACTIONS, size=n, dtype=np.int32)


class LookupPolicy:
    """The lookup baseline: the finding-to-fault map applied to the findings (`rl.diagnosis.FINDING_FAULTS`,
    the catalogue's signatures). It takes each read once, in action order, names the fault every
    signature finding its reads showed points at, and then WAITs; it never tries a remedy. A fault's
    belief grows with how many objects showed its signatures (1 for a thousand, 0.5 for none), so its
    most probable fault is the one with the most evidence."""

    name = "lookup"

    def __init__(self, num_envs: int, seed: int = 0):
        self.num_envs = num_envs
        self.beliefs = np.zeros((num_envs, NUM_FAULTS), dtype=np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        pass

    def act(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        self.beliefs = np.zeros((len(rows), NUM_FAULTS), dtype=np.float32)
        actions = np.full(len(rows), int(A.WAIT), dtype=np.int32)
        for i, row in enumerate(rows):
            for key, k in INPUT_KEY_INDEX.items():
                fault = FINDING_FAULTS.get(key)
                value = row[FINDINGS_AT + k]
                if fault is not None and value > 0:
                    self.beliefs[i, fault] = max(self.beliefs[i, fault], 0.5 + 0.5 * value)
            untaken = [a for a in READS if row[TAKEN_INDEX[a]] < 0.5]
            if untaken:
                actions[i] = untaken[0]
        return actions


def finding_counts(row) -> dict[tuple[str, str], int]:
    """The findings an input row holds, by (kind, reason): how many objects showed each."""
    values = np.asarray(row[FINDINGS_AT : FINDINGS_AT + len(INPUT_KEYS)], dtype=np.float64)
    counts = {}
    for k in np.flatnonzero(values > 0):
        scaled = (values[k] - FIRST_FINDING) / (1.0 - FIRST_FINDING) * math.log1p(FINDING_SCALE)
        counts[INPUT_KEYS[k]] = max(1, round(math.expm1(scaled)))
    return counts


def fresh_reads(row) -> set[ClusterAction]:
    return {a for a in READS if row[FRESH_INDEX[a]] > 0.5}


# What identifies each fault in the findings a read showed: (kind, reason) keys, any of which will do.
EVIDENCE_KEYS = {
    F.NODE_NOT_READY: (("Node", "NotReady"), ("Pod", "PhaseUnknown"), ("Pod", "TerminatingOnDeadNode")),
    F.NODE_CORDONED: (("Node", "Cordoned"),),
    F.NODE_PRESSURE: (("Node", "MemoryPressure"), ("Pod", "Evicted")),
    F.OOM_KILLED: (("Pod", "OOMKilled"),),
    F.IMAGE_PULL_FAILURE: (("Pod", "ImagePullBackOff"),),
    F.CONFIG_ERROR: (("Pod", "CreateContainerConfigError"),),
    F.DNS_FAILURE: (("ClusterDNS", "DNSDown"), ("Log", "DNSResolutionFailed"), ("Event", "DNSResolutionFailed")),
    F.CRASHED_PODS: (("Log", "Panic"),),
    F.BAD_ROLLOUT: (("Log", "ConfigurationError"),),
    F.RUNAWAY_DEPLOYMENT: (("HorizontalPodAutoscaler", "ScalingLimited"),),
    F.UNDERSCALED: (("Log", "Overloaded"),),
    F.QUOTA_EXHAUSTED: (
        ("ResourceQuota", "QuotaExceeded"),
        ("Deployment", "ReplicaFailure"),
        ("ReplicaSet", "FailedCreate"),
    ),
    F.UNBOUND_PVC: (("PersistentVolumeClaim", "Pending"), ("Pod", "UnboundVolume")),
    F.DEPENDENCY_DOWN: (("Log", "ConnectionRefused"),),
    F.SERVICE_NO_ENDPOINTS: (("Service", "NoMatchingPods"),),
    F.JOB_FAILED: (("Job", "JobFailed"),),
    F.INSUFFICIENT_CAPACITY: (("Pod", "Unschedulable"),),
}
# The order it fixes faults in: nodes first (they hold pods), then what starves others, then pods.
FIX_ORDER = (
    F.NODE_NOT_READY,
    F.NODE_PRESSURE,
    F.NODE_CORDONED,
    F.RUNAWAY_DEPLOYMENT,
    F.UNDERSCALED,
    F.OOM_KILLED,
    F.CRASHED_PODS,
)
# Faults mended a unit (a node, a deployment) at a time: fixed only with their last unit.
UNIT_FAULTS = frozenset({F.NODE_CORDONED, F.UNDERSCALED})
# The read it takes to single out a fault's target again after a change.
TARGET_READ = {
    F.NODE_NOT_READY: A.GET_NODES,
    F.NODE_PRESSURE: A.GET_NODES,
    F.NODE_CORDONED: A.GET_NODES,
    F.RUNAWAY_DEPLOYMENT: A.GET_DEPLOYMENTS,
    F.OOM_KILLED: A.DESCRIBE_UNHEALTHY,
    F.UNDERSCALED: A.CHECK_LOGS,
    F.CRASHED_PODS: A.CHECK_LOGS,
}
# Faults that take room pods need: while one lasts, pods waiting for room are its doing.
ROOM_TAKERS = frozenset({F.NODE_NOT_READY, F.NODE_PRESSURE, F.RUNAWAY_DEPLOYMENT})
# Faults that set off others while they last (`rl.sim.kernels._advance_faults`), and the read that
# shows what they set off: before its report, the runbook looks there once more.
CASCADES = {
    F.NODE_NOT_READY: A.GET_NODES,
    F.NODE_CORDONED: A.GET_NODES,
    F.RUNAWAY_DEPLOYMENT: A.DESCRIBE_UNHEALTHY,
    F.UNDERSCALED: A.DESCRIBE_UNHEALTHY,
    F.NODE_PRESSURE: A.DESCRIBE_UNHEALTHY,
    F.DNS_FAILURE: A.DESCRIBE_UNHEALTHY,
}


class ExpertPolicy:
    """A runbook an on-call SRE would follow, reading only what the next decision needs.

    It starts from the summary of `kubectl get nodes,pods` and asks only the questions that summary
    raises, each with the one read that answers it: `get nodes` when a node is not ready or cordoned,
    `describe` of the unhealthy pods when pods fail, wait or are unknown, the workloads (`get
    deployments` and the rest) always once, since quotas, services, jobs and autoscalers show nowhere
    else, and the logs when pods crash-loop or deployments are unavailable for a reason nothing else
    explains. It names each fault from the findings that identify it (`EVIDENCE_KEYS`), and fixes each
    fault it may fix as soon as a read has singled out its target (nodes first), taking that read
    again after any change. With writes allowed it names only what a human must fix; on a read-only
    cluster it names everything it found and never tries a remedy. With nothing left to fix and every
    question answered it WAITs, its report made.

    Its memory, per cluster: which reads it took and when, what each `top` showed, which faults it
    fixed (their findings stay in view until read again), and whether a drained node awaits its
    uncordon.
    """

    name = "expert"

    def __init__(self, num_envs: int, seed: int = 0):
        self.num_envs = num_envs
        self.memory = [_Runbook() for _ in range(num_envs)]
        self.beliefs = np.zeros((num_envs, NUM_FAULTS), dtype=np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        for i in range(self.num_envs) if mask is None else np.flatnonzero(mask):
            self.memory[i] = _Runbook()

    def act(self, rows: np.ndarray) -> np.ndarray:
        actions = self.propose(rows)
        self.record(actions)
        return actions

    def propose(self, rows: np.ndarray) -> np.ndarray:
        """What the runbook would do next on each cluster (and `beliefs`: what it would name), without
        doing it: `record` then says what was done, by it or by another policy it shadows."""
        if self.beliefs.shape[0] != len(rows):
            self.beliefs = np.zeros((len(rows), NUM_FAULTS), dtype=np.float32)
        actions = np.zeros(len(rows), dtype=np.int32)
        for i in range(len(rows)):
            memory = self.memory[i]
            memory.see(rows[i])
            actions[i] = memory.choose()
            self.beliefs[i] = 0.0
            for fault in memory.names():
                self.beliefs[i, fault] = 1.0
        return actions

    def record(self, actions) -> None:
        """The actions taken on each cluster after the last `propose`."""
        for i, action in enumerate(actions):
            self.memory[i].did(ClusterAction(int(action)))


class _Runbook:
    """One cluster's runbook and memory."""

    def __init__(self):
        self.step = 0
        self.last_taken: dict[ClusterAction, int] = {}  # read -> step it was last taken
        self.top = {}  # TOP_NODES / TOP_PODS -> (cpu, memory) it showed
        self.fixed: dict[Fault, int] = {}  # fault -> step it was fixed
        self.refreshed: dict[tuple[str, str], int] = {}  # finding key -> step a read last showed it
        self.last_change = -1  # step of its last remedy
        self.uncordon_due = False  # a pressured node was drained: it comes back cordoned
        self.cascade_risk: set[ClusterAction] = set()  # reads that would show what a fault set off
        self.final_checks: set[ClusterAction] = set()  # of those, the ones taken again before the report
        self.last_action = None
        self.state = ClusterState()
        self.findings: dict[tuple[str, str], int] = {}
        self.fresh: set = set()
        self.writes = True
        self.believed: set[Fault] = set()

    # -- what it knows -------------------------------------------------------------------------

    def see(self, row) -> None:
        self.state = ClusterState.from_observation(row[:OBS_SIZE])
        self.findings = finding_counts(row)
        self.fresh = fresh_reads(row)
        self.writes = row[WRITES_AT] > 0.5
        if self.last_action in (A.TOP_NODES, A.TOP_PODS):
            self.top[self.last_action] = (float(row[11]), float(row[12]))
        self.believed = self._believe()

    def _count(self, kind: str, reason: str) -> int:
        return self.findings.get((kind, reason), 0)

    def _taken_since(self, read: ClusterAction, step: int) -> bool:
        return self.last_taken.get(read, -1) > step

    def _believe(self) -> set[Fault]:
        believed = set()
        for fault, keys in EVIDENCE_KEYS.items():
            # What it fixed stays fixed until a read shows that fault's findings again.
            since = self.fixed.get(fault, -1)
            if any(self._count(*key) for key in keys if self.refreshed.get(key, 0) > since):
                believed.add(fault)
                self.fixed.pop(fault, None)
        # Connections refused are a dependency down only where a Service has no ready endpoint that
        # cluster DNS does not explain (a container that restarted before its database was up
        # logged them too, and is fine now).
        unexplained = self._count("Service", "NoReadyEndpoints") - min(1, self._count("ClusterDNS", "DNSDown"))
        if unexplained <= 0:
            believed.discard(F.DEPENDENCY_DOWN)
        # A rollout stuck past its deadline with no image or config error is a bad rollout.
        if self._count("Deployment", "ProgressDeadlineExceeded") and not believed & {
            F.IMAGE_PULL_FAILURE,
            F.CONFIG_ERROR,
        }:
            believed.add(F.BAD_ROLLOUT)
        # Pods no node can fit are a full cluster only when no runaway and no lost node explains them
        # (one it fixed explains them until the pods are looked at again).
        freed_unseen = {f for f, when in self.fixed.items() if not self._taken_since(A.DESCRIBE_UNHEALTHY, when)}
        if (believed | freed_unseen) & self._room_takers():
            believed.discard(F.INSUFFICIENT_CAPACITY)
        return believed

    def _room_takers(self) -> frozenset[Fault]:
        """The faults that would leave pods waiting for room here: a runaway always; nodes that lost
        their pods (NotReady, evicting under pressure) only when they are more than a fifth of the
        cluster (the rest of a larger one holds their pods). A cordoned node keeps its pods."""
        s = self.state
        lost = s.num_nodes - s.nodes_ready
        return ROOM_TAKERS if s.num_nodes and lost > 0.2 * s.num_nodes else frozenset({F.RUNAWAY_DEPLOYMENT})

    def names(self) -> set[Fault]:
        """What it names now: what it believes and must name (all of it on a read-only cluster)."""
        return self.believed if not self.writes else self.believed & HUMAN_ONLY

    # -- what it does --------------------------------------------------------------------------

    def choose(self) -> ClusterAction:
        if self.writes:
            for fault in FIX_ORDER:
                if fault in self.believed:
                    if self.fresh & set(SPECS[fault].revealed_by):
                        return SPECS[fault].fixed_by[0]
                    return TARGET_READ[fault]
        question = self._next_question()
        return question if question is not None else A.WAIT

    def _next_question(self) -> ClusterAction | None:
        s = self.state
        taken = self.last_taken
        cordoned = s.num_nodes - s.nodes_ready - s.nodes_not_ready
        if (s.nodes_not_ready or cordoned > 0) and A.GET_NODES not in taken:
            return A.GET_NODES
        if self.uncordon_due and not self._taken_since(A.GET_NODES, self.fixed.get(F.NODE_PRESSURE, -1)):
            return A.GET_NODES
        if s.pods_failed + s.pods_pending + s.pods_unknown > 0 and A.DESCRIBE_UNHEALTHY not in taken:
            return A.DESCRIBE_UNHEALTHY
        if A.GET_DEPLOYMENTS not in taken:
            return A.GET_DEPLOYMENTS
        if self._needs_logs():
            return A.CHECK_LOGS
        # Room freed while pods waited for it: see whether they still wait.
        if self._count("Pod", "Unschedulable"):
            freed = [self.fixed[f] for f in self._room_takers() if f in self.fixed]
            if freed and not self._taken_since(A.DESCRIBE_UNHEALTHY, max(freed)):
                return A.DESCRIBE_UNHEALTHY
        # What a fault sets off while it lasts: before the report, look once more where it would show.
        for read in self.cascade_risk:
            if read not in self.final_checks:
                self.final_checks.add(read)
                if self.last_action != read:
                    return read
        return None

    def _needs_logs(self) -> bool:
        """Pods crash-loop that the logs read so far do not explain, or deployments are unavailable
        for a reason nothing read so far gives."""
        dns = self._count("ClusterDNS", "DNSDown")
        crash_looping = self._count("Pod", "CrashLoopBackOff") - (2 if dns else 0)
        if A.CHECK_LOGS in self.last_taken:
            if self._taken_since(A.CHECK_LOGS, self.last_change):  # (logs from before a change explain nothing now)
                crash_looping -= self._count("Log", "Panic") + self._count("Log", "ConfigurationError")
            return crash_looping > 0 and not self._taken_since(
                A.CHECK_LOGS, max(self.last_taken.get(A.DESCRIBE_UNHEALTHY, -1), self.last_change)
            )
        if crash_looping > 0:
            return True
        unavailable = self._count("Deployment", "ReplicasUnavailable")
        return unavailable > self._explained_unavailable() or bool(unavailable and F.DNS_FAILURE in self.believed)

    def _explained_unavailable(self) -> int:
        """Deployments the faults it knows of make unavailable."""
        # (what it fixed before the workloads were read last no longer counts there)
        known = self.believed | {f for f, when in self.fixed.items() if not self._taken_since(A.GET_DEPLOYMENTS, when)}
        count = sum(
            1
            for f in (
                F.OOM_KILLED,
                F.IMAGE_PULL_FAILURE,
                F.CONFIG_ERROR,
                F.QUOTA_EXHAUSTED,
                F.UNBOUND_PVC,
                F.RUNAWAY_DEPLOYMENT,
                F.DEPENDENCY_DOWN,
                F.BAD_ROLLOUT,
            )
            if f in known
        )
        if F.NODE_NOT_READY in known:
            count += self._count("Pod", "PhaseUnknown")
        if self._count("Pod", "Unschedulable") and F.RUNAWAY_DEPLOYMENT not in known:
            count += min(3, self._count("Pod", "Unschedulable"))
        return count

    def did(self, action) -> None:
        self.last_action = action
        for fault, read in CASCADES.items():
            if fault in self.believed:
                self.cascade_risk.add(read)
        self.step += 1
        if action in READS_SET:
            self.last_taken[action] = self.step
            for key in KEYS_SHOWN_BY[action]:
                self.refreshed[key] = self.step
        elif action != A.WAIT and self.writes:
            self.last_change = self.step
            for fault in FIX_ORDER:
                if fault in self.believed and SPECS[fault].fixed_by[0] == action:
                    units = max(self._count(*key) for key in EVIDENCE_KEYS[fault])
                    if fault not in UNIT_FAULTS or units <= 1:
                        self.fixed[fault] = self.step
                    self.uncordon_due = self.uncordon_due or fault == F.NODE_PRESSURE
                    break
            if action == A.UNCORDON_NODE:
                self.uncordon_due = False


READS_SET = frozenset(READS)
assert NUM_READS == len(READS_SET)
KEYS_SHOWN_BY = {read: tuple(key for key in INPUT_KEYS if read in SHOWN_BY[key]) for read in READS}
