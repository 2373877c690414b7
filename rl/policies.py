"""Baseline policies over batches of observations: random, and a scripted SRE runbook.

A policy maps a `(N, 18)` observation batch to `N` actions. `reset(mask)` tells it which
clusters started a new episode, so per-cluster memory (what the runbook already checked) is
cleared there. Neither policy sees anything but observations.
"""

import numpy as np

from rl.actions import NUM_ACTIONS, ClusterAction

A = ClusterAction
HIGH_USAGE = 0.46  # CPU or memory share above what a healthy cluster shows at full load (40%)


class RandomPolicy:
    name = "random"

    def __init__(self, num_envs: int, seed: int = 0):
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)

    def reset(self, mask: np.ndarray | None = None) -> None:
        pass

    def act(self, observations: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, NUM_ACTIONS, size=len(observations), dtype=np.int32)


class ExpertPolicy:
    """A runbook an on-call SRE would follow, reading only what `kubectl` has shown it.

    In order: drain NotReady nodes and uncordon cordoned ones; look at pods, deployments and
    `top pods` (again after every change it makes); check `top nodes` when memory is high and
    drain a node that reports pressure; describe Pending pods before blaming capacity; scale down
    a hot deployment that leaves pods Pending for no storage reason, scale up a hot one that is
    unavailable; for failed pods scale up when memory is at the limit, else read the logs, restart
    once, then describe; read events for Pending pods; check quotas and logs for unavailable
    deployments. With nothing left to chase it refreshes what it has seen, round robin.

    It remembers which checks it ran since the symptoms last changed, whether it already
    restarted, and which check raised the resource-pressure flag (`top nodes` or `describe`: a
    node; `resource quotas` or events: a quota).
    """

    name = "expert"
    REFRESH_CYCLE = (
        A.GET_PODS,
        A.GET_DEPLOYMENTS,
        A.TOP_PODS,
        A.GET_NODES,
        A.GET_EVENTS,
        A.CHECK_LOGS,
        A.DESCRIBE_UNHEALTHY,
        A.GET_RESOURCE_QUOTAS,
        A.TOP_NODES,
    )
    REMEDIES = (A.RESTART_FAILED_PODS, A.SCALE_UP_DEPLOYMENT, A.SCALE_DOWN_DEPLOYMENT, A.DRAIN_NODE, A.UNCORDON_NODE)

    def __init__(self, num_envs: int, seed: int = 0):
        self.num_envs = num_envs
        self.done = np.zeros((num_envs, NUM_ACTIONS), dtype=bool)  # checks run since symptoms changed
        self.restarted = np.zeros(num_envs, dtype=bool)
        self.node_pressure = np.zeros(num_envs, dtype=bool)  # pressure flag raised by a node check
        self.last_action = np.full(num_envs, -1, dtype=np.int32)
        self.last_pressure_flag = np.zeros(num_envs, dtype=bool)
        self.last_symptoms = np.zeros((num_envs, 3), dtype=np.float32)
        self.scaled_up = np.zeros(num_envs, dtype=bool)  # it scaled something up that may not need it
        self.refresh = np.zeros(num_envs, dtype=np.int32)
        self.reset(None)

    def reset(self, mask: np.ndarray | None = None) -> None:
        mask = slice(None) if mask is None else mask
        self.done[mask] = False
        self.done[mask, A.GET_PODS] = True  # the first observation lists the pods
        self.restarted[mask] = False
        self.node_pressure[mask] = False
        self.last_action[mask] = -1
        self.last_pressure_flag[mask] = False
        self.last_symptoms[mask] = 0.0
        self.scaled_up[mask] = False
        self.refresh[mask] = 0

    def act(self, o: np.ndarray) -> np.ndarray:
        n = len(o)
        rows = np.arange(n)
        nodes_known = o[:, 0] > 0
        not_ready = o[:, 2] > 0
        cordoned = nodes_known & (1.0 - o[:, 1] - o[:, 2] > 1e-3)
        pending = o[:, 5] > 0
        failed = o[:, 6] > 0
        unavailable = o[:, 10] > 0
        cpu_high = o[:, 11] >= HIGH_USAGE
        mem_high = o[:, 12] >= HIGH_USAGE
        pvc_flag = o[:, 15] > 0.5
        pressure_flag = o[:, 17] > 0.5

        # New symptoms make every check worth running again.
        symptoms = o[:, (5, 6, 10)]
        changed = np.any(np.abs(symptoms - self.last_symptoms) > 1e-6, axis=1)
        self.last_symptoms = symptoms.copy()
        self.done[changed] = False
        self.done[changed, A.GET_PODS] = True
        valid = changed & (self.last_action >= 0)
        self.done[valid, self.last_action[valid]] = True  # the read that showed the change is fresh

        # Which check raised the resource-pressure flag decides whether a node is to blame.
        raised = pressure_flag & ~self.last_pressure_flag
        by_node_check = np.isin(self.last_action, (A.TOP_NODES, A.DESCRIBE_UNHEALTHY))
        self.node_pressure |= raised & by_node_check
        self.node_pressure &= pressure_flag
        self.last_pressure_flag = pressure_flag
        done = self.done

        choices = [
            (not_ready, A.DRAIN_NODE),
            (cordoned, A.UNCORDON_NODE),
            (~done[:, A.GET_PODS], A.GET_PODS),
            (~done[:, A.GET_DEPLOYMENTS], A.GET_DEPLOYMENTS),
            (~done[:, A.TOP_PODS], A.TOP_PODS),
            (mem_high & ~done[:, A.TOP_NODES], A.TOP_NODES),
            (self.node_pressure & mem_high, A.DRAIN_NODE),
            (pending & ~done[:, A.DESCRIBE_UNHEALTHY], A.DESCRIBE_UNHEALTHY),
            (cpu_high & pending & (~pvc_flag | ~unavailable), A.SCALE_DOWN_DEPLOYMENT),
            (cpu_high & unavailable, A.SCALE_UP_DEPLOYMENT),
            (cpu_high & self.scaled_up, A.SCALE_DOWN_DEPLOYMENT),
            (failed & mem_high & ~self.node_pressure, A.SCALE_UP_DEPLOYMENT),
            (failed & ~done[:, A.CHECK_LOGS], A.CHECK_LOGS),
            (failed & ~self.restarted, A.RESTART_FAILED_PODS),
            (failed & ~done[:, A.DESCRIBE_UNHEALTHY], A.DESCRIBE_UNHEALTHY),
            (pending & ~done[:, A.GET_EVENTS], A.GET_EVENTS),
            (unavailable & ~done[:, A.GET_RESOURCE_QUOTAS], A.GET_RESOURCE_QUOTAS),
            (unavailable & ~done[:, A.CHECK_LOGS], A.CHECK_LOGS),
        ]
        actions = np.select([c for c, _ in choices], [int(a) for _, a in choices], default=-1).astype(np.int32)
        idle = actions < 0
        cycle = np.asarray(self.REFRESH_CYCLE, dtype=np.int32)
        actions[idle] = cycle[self.refresh[idle] % len(cycle)]
        self.refresh[idle] += 1

        # Remember what was checked; after a remedy the survey starts over.
        done[rows, actions] = True
        remedy = np.isin(actions, self.REMEDIES)
        done[remedy] = False
        self.restarted |= actions == A.RESTART_FAILED_PODS
        self.scaled_up |= (actions == A.SCALE_UP_DEPLOYMENT) & ~(cpu_high & unavailable) & ~mem_high
        self.scaled_up &= actions != A.SCALE_DOWN_DEPLOYMENT
        self.last_action = actions
        return actions
