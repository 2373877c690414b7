"""Baseline policies over batches of observations: random, and a scripted SRE runbook.

A policy maps a `(N, 18)` observation batch to `N` actions. After each `act` its `beliefs`
(float32, `(N, NUM_FAULTS)`) hold the probability it gives each fault type for each cluster: what
it names as wrong (see `rl.diagnosis`). `reset(mask)` tells it which clusters started a new
episode, so per-cluster memory (what the runbook already checked) is cleared there. Neither policy
sees anything but observations.
"""

import numpy as np

from rl.actions import NUM_ACTIONS, ClusterAction
from rl.sim.faults import NUM_FAULTS, Fault
from rl.state import ClusterState

A = ClusterAction
HIGH_USAGE = 0.46  # CPU or memory share above what a healthy cluster shows at full load (40%)
FULL_NODE_CPU = 0.399  # `top nodes` CPU of a cluster with no pod slot left


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


class ExpertPolicy:
    """A runbook an on-call SRE would follow, reading only what `kubectl` has shown it.

    It surveys the cluster with every read (nodes, `top nodes`, `top pods`, deployments, logs,
    describe, events, quotas), then fixes what the survey identified, one remedy at a time, each
    only on a target a read singled out: drain a NotReady node, then a node under memory pressure
    (`top nodes`), uncordon cordoned nodes, scale up a deployment whose pods sit at their memory
    limit (`top pods`), scale down a hot deployment that leaves pods Pending, scale up a hot one
    that is unavailable, restart failed pods once the logs have been read and memory explains
    none of them. After each remedy it reads again what that remedy touched. With nothing left to
    fix and every read fresh it says it is done (WAIT); if the episode goes on, something new broke,
    and it surveys again.

    It names what it believes is wrong from the same reads, as an SRE writing the incident note would
    (belief 1 or 0, see `_Runbook.names`): a NotReady or cordoned node from `get nodes`, a pressured
    node from `top nodes` memory, OOM kills from `top pods` memory, a runaway or under-scaled
    deployment from `top pods` CPU with Pending pods or unavailable deployments, crashed pods from
    failed pods a restart has not yet cleared, a bad rollout from failed pods a restart left behind
    that memory does not explain, an unbound PVC and a DNS failure from the flags the reads set, an
    exhausted quota from the resource-pressure flag when `top nodes` shows no pressured node.

    Its memory, per cluster: which reads are fresh since the last change, what each `top` showed,
    and how many pods were failed when it last restarted them.
    """

    name = "expert"
    SURVEY = (
        A.GET_NODES,
        A.TOP_NODES,
        A.TOP_PODS,
        A.GET_DEPLOYMENTS,
        A.CHECK_LOGS,
        A.DESCRIBE_UNHEALTHY,
        A.GET_EVENTS,
        A.GET_RESOURCE_QUOTAS,
    )
    # The reads a remedy makes stale.
    STALE_AFTER = {
        A.DRAIN_NODE: (A.GET_NODES, A.TOP_NODES, A.TOP_PODS, A.DESCRIBE_UNHEALTHY, A.GET_DEPLOYMENTS),
        A.UNCORDON_NODE: (A.GET_NODES, A.TOP_NODES, A.DESCRIBE_UNHEALTHY, A.GET_DEPLOYMENTS),
        A.SCALE_UP_DEPLOYMENT: (A.TOP_PODS, A.GET_DEPLOYMENTS, A.DESCRIBE_UNHEALTHY, A.TOP_NODES),
        A.SCALE_DOWN_DEPLOYMENT: (A.TOP_PODS, A.GET_DEPLOYMENTS, A.DESCRIBE_UNHEALTHY, A.TOP_NODES),
        A.RESTART_FAILED_PODS: (A.DESCRIBE_UNHEALTHY, A.CHECK_LOGS, A.TOP_PODS),
    }

    def __init__(self, num_envs: int, seed: int = 0):
        self.num_envs = num_envs
        self.memory = [_Runbook() for _ in range(num_envs)]
        self.beliefs = np.zeros((num_envs, NUM_FAULTS), dtype=np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        for i in range(self.num_envs) if mask is None else np.flatnonzero(mask):
            self.memory[i] = _Runbook()

    def act(self, o: np.ndarray) -> np.ndarray:
        if self.beliefs.shape[0] != len(o):
            self.beliefs = np.zeros((len(o), NUM_FAULTS), dtype=np.float32)
        return np.array([self._act_one(i, self.memory[i], o[i]) for i in range(len(o))], dtype=np.int32)

    def _act_one(self, i: int, m: "_Runbook", obs) -> int:
        m.see(obs)
        self.beliefs[i] = m.names()
        action = self._choose(m)
        m.did(action, self.STALE_AFTER.get(action, ()))
        return int(action)

    def _choose(self, m: "_Runbook") -> ClusterAction:
        # Each rule: (symptom, remedy, the reads that must single out its target first).
        for symptom, remedy, reads in self._rules(m):
            if symptom and reads <= m.valid:
                missing = [r for r in self.SURVEY if r in reads and r not in m.fresh]
                return missing[0] if missing else remedy
        for read in self.SURVEY:
            if read not in m.valid:
                return read
        return A.WAIT

    @staticmethod
    def _rules(m: "_Runbook"):
        s = m.state
        # A runaway fills the cluster: Pending pods and every node at full use. (Pending pods with
        # an unbound PVC and nodes to spare point to a deployment short of replicas.)
        cluster_full = m.node_cpu >= FULL_NODE_CPU
        hot = m.pod_cpu >= HIGH_USAGE
        deployments = {A.TOP_PODS, A.GET_DEPLOYMENTS, A.DESCRIBE_UNHEALTHY, A.TOP_NODES}
        return (
            (s.nodes_not_ready > 0, A.DRAIN_NODE, {A.GET_NODES}),
            (m.node_mem >= HIGH_USAGE, A.DRAIN_NODE, {A.TOP_NODES}),  # a node under memory pressure
            (s.num_nodes - s.nodes_ready - s.nodes_not_ready > 0, A.UNCORDON_NODE, {A.GET_NODES}),
            (m.pod_mem >= HIGH_USAGE, A.SCALE_UP_DEPLOYMENT, {A.TOP_PODS}),  # pods at their memory limit
            (
                hot and s.pods_pending > 0 and (cluster_full or not s.has_pvc_issues),
                A.SCALE_DOWN_DEPLOYMENT,
                deployments,
            ),
            (hot and s.deployments_unavailable > 0, A.SCALE_UP_DEPLOYMENT, deployments),
            (
                s.pods_failed > 0 and s.pods_failed != m.failed_after_restart,
                A.RESTART_FAILED_PODS,  # describe and the logs name why they fail
                {A.CHECK_LOGS, A.DESCRIBE_UNHEALTHY, A.TOP_PODS, A.TOP_NODES},
            ),
        )


class _Runbook:
    """One cluster's memory for ExpertPolicy."""

    def __init__(self):
        self.state = ClusterState()
        self.fresh: set = {A.GET_PODS}  # reads taken since the last change: they single out targets
        self.valid: set = {A.GET_PODS}  # reads whose figures still hold (no change touched them since)
        self.node_mem = self.node_cpu = self.pod_mem = self.pod_cpu = 0.0
        self.failed_after_restart = -1  # Failed pods a restart left (CrashLoopBackOff): not worth another
        self.last = None
        self.restarted = False
        self.rollout = False  # failed pods outlived a restart, and memory explains none of them

    def see(self, obs) -> None:
        self.state = ClusterState.from_observation(obs)
        if self.last in (A.GET_PODS, A.DESCRIBE_UNHEALTHY) and self.state.pods_failed == 0:
            self.rollout = False
        if self.last == A.TOP_NODES:
            self.node_cpu, self.node_mem = float(obs[11]), float(obs[12])
        elif self.last == A.TOP_PODS:
            self.pod_cpu, self.pod_mem = float(obs[11]), float(obs[12])
        elif self.last == A.WAIT:
            self.fresh, self.valid = set(), set()  # not done after all: something new broke, look again
            self.failed_after_restart = -1
        if self.last == A.DESCRIBE_UNHEALTHY and self.restarted:
            self.failed_after_restart = self.state.pods_failed
            self.restarted = False
            if self.failed_after_restart > 0 and max(self.pod_mem, self.node_mem) < HIGH_USAGE:
                self.rollout = True  # CrashLoopBackOff: the pods crash again, a rollback is needed

    def names(self) -> np.ndarray:
        """Its belief (1 or 0) in each fault type, from what its reads have shown."""
        s = self.state
        node_pressure = self.node_mem >= HIGH_USAGE
        oom = self.pod_mem >= HIGH_USAGE
        hot = self.pod_cpu >= HIGH_USAGE
        runaway = hot and s.pods_pending > 0 and (self.node_cpu >= FULL_NODE_CPU or not s.has_pvc_issues)
        named = {
            Fault.NODE_NOT_READY: s.nodes_not_ready > 0,
            Fault.NODE_CORDONED: s.num_nodes - s.nodes_ready - s.nodes_not_ready > 0,
            Fault.NODE_PRESSURE: node_pressure,
            Fault.OOM_KILLED: oom,
            Fault.RUNAWAY_DEPLOYMENT: runaway,
            Fault.UNDERSCALED: hot and s.deployments_unavailable > 0 and not runaway,
            Fault.CRASHED_PODS: s.pods_failed > max(self.failed_after_restart, 0) and not (oom or node_pressure),
            Fault.BAD_ROLLOUT: self.rollout,
            # The resource-pressure flag is a pressured node or an exhausted quota: `top nodes` tells them apart.
            Fault.QUOTA_EXHAUSTED: s.has_resource_pressure and not node_pressure,
            Fault.UNBOUND_PVC: s.has_pvc_issues,
            Fault.DNS_FAILURE: s.has_network_issues,
        }
        row = np.zeros(NUM_FAULTS, dtype=np.float32)
        for fault, on in named.items():
            row[fault] = 1.0 if on else 0.0
        return row

    def did(self, action, stale) -> None:
        self.last = action
        if action == A.RESTART_FAILED_PODS:
            self.restarted = True
        if action in ExpertPolicy.STALE_AFTER:
            self.fresh = set()  # after a change, a target must be singled out again
            self.valid -= set(stale)
        elif action != A.WAIT:
            self.fresh.add(action)
            self.valid.add(action)
