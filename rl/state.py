"""The cluster state every backend fills, and the 18-dim observation the agent sees.

This module owns the observation schema and its encoding (`encode_observation`). The simulator runs
the same function compiled by numba, and the real-cluster backend fills a `ClusterState`; a test
checks that all three agree.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np
from numba import njit

OBS_FIELDS = (
    "num_nodes",
    "nodes_ready",
    "nodes_not_ready",
    "num_pods",
    "pods_running",
    "pods_pending",
    "pods_failed",
    "pods_unknown",
    "num_deployments",
    "deployments_available",
    "deployments_unavailable",
    "cpu_usage_percent",
    "memory_usage_percent",
    "recent_events_warning",
    "recent_events_normal",
    "has_pvc_issues",
    "has_network_issues",
    "has_resource_pressure",
)
OBS_SIZE = len(OBS_FIELDS)

# Largest sizes the totals are scaled to (log scale): the limits of `rl.sim.scenario.ScenarioConfig`
# (1,000 nodes of up to 250 pods, 20,000 deployments), and the events a large cluster records in the
# recent window.
NODE_SCALE = 1000.0
POD_SCALE = 250_000.0
DEPLOYMENT_SCALE = 20_000.0
EVENT_SCALE = 10_000.0
# The smallest non-zero value a count of bad objects is encoded as: one NotReady node among 1,000
# moves its entry by at least this much from a healthy cluster's.
FIRST_BAD = 0.1

# The encoding of each entry, by index (the observation table of `rl.ClusterEnv`'s docstring):
#   0, 3, 8  totals: log1p(count) / log1p(scale), so 3 nodes and 1,000 nodes both fit in [0, 1].
#   1, 4, 9  healthy shares: 1 - bad(total - healthy, total); 1 when every object is healthy.
#   2, 5-7, 10  bad counts: bad(count, total) = 0 for none, else 0.1 + 0.9 * log1p(count) / log1p(total).
#   11, 12   CPU and memory use: percent / 100.
#   13, 14   events in the recent window: log1p(count) / log1p(EVENT_SCALE).
#   15-17    flags: 0 or 1.


@njit(cache=True, error_model="numpy", fastmath=True)
def bad_share(count, total):
    """Count-sensitive share of bad objects: 0 when none, at least FIRST_BAD for one, 1 for all."""
    if count <= 0.0 or total <= 0.0:
        return 0.0
    return _bad_share(count, math.log1p(max(total, count)))


@njit(cache=True, inline="always", error_model="numpy", fastmath=True)
def _bad_share(count, log_total):
    if count <= 0.0:
        return 0.0
    return min(1.0, FIRST_BAD + (1.0 - FIRST_BAD) * math.log1p(count) / log_total)


@njit(cache=True, error_model="numpy", fastmath=True)
def encode_observation(raw, out, first=0, last=OBS_SIZE - 1):
    """Write the observation of `raw` (the 18 ClusterState values in plain units) into `out`.

    The one definition of the encoding: `ClusterState.to_observation` calls it, the simulator's
    compiled core runs it (`rl.sim.core`), and the real-cluster backend fills a ClusterState that
    is encoded here. Every entry is clipped to [0, 1]. With `first` and `last` only the groups of
    entries that overlap them are written, and the three flags (the simulator rewrites what a read
    refreshed, and leaves the rest of the agent's view as it was).
    """
    for group in range(3):  # nodes, pods, deployments: a total, its healthy share, its bad counts
        total_at, healthy_at, first_bad, last_bad = _GROUPS[group]
        if last < total_at or first > last_bad:
            continue
        total = max(raw[total_at], 0.0)
        log_total = math.log1p(total)
        out[total_at] = min(1.0, log_total * _INVERSE_LOG_SCALE[group])
        for k in range(healthy_at, last_bad + 1):
            if total <= 0.0:
                out[k] = 0.0
                continue
            count = total - raw[k] if k == healthy_at else raw[k]
            share = _bad_share(count, log_total if count <= total else math.log1p(count))
            out[k] = 1.0 - share if k == healthy_at else share
    for k in range(max(first, 11), min(last, 14) + 1):
        if k <= 12:  # CPU and memory use
            out[k] = min(1.0, max(0.0, raw[k] * 0.01))
        else:  # events
            out[k] = min(1.0, math.log1p(max(raw[k], 0.0)) * _INVERSE_LOG_EVENTS)
    for k in range(15, 18):
        out[k] = min(1.0, max(0.0, raw[k]))


# (total, healthy share, first and last bad count) of nodes, pods and deployments, by index.
_GROUPS = ((0, 1, 2, 2), (3, 4, 5, 7), (8, 9, 10, 10))
_INVERSE_LOG_SCALE = (1.0 / math.log1p(NODE_SCALE), 1.0 / math.log1p(POD_SCALE), 1.0 / math.log1p(DEPLOYMENT_SCALE))
_INVERSE_LOG_EVENTS = 1.0 / math.log1p(EVENT_SCALE)


def _count_from_bad_share(value: float, total: int) -> int:
    if value <= 0.0 or total <= 0:
        return 0
    return round(math.expm1((value - FIRST_BAD) / (1.0 - FIRST_BAD) * math.log1p(total)))


def _total(value: float, scale: float) -> int:
    return round(math.expm1(value * math.log1p(scale)))


@dataclass
class ClusterState:
    """What the agent knows about one cluster, in plain units.

    Node, pod and deployment fields are counts; `nodes_ready` counts nodes that are Ready and
    schedulable, so a cordoned node is in neither `nodes_ready` nor `nodes_not_ready`. Usage is in
    percent (0-100). Events count the warning and normal events in the recent window. The flags say
    whether a storage, network or resource-pressure problem has been found.
    """

    num_nodes: int = 0
    nodes_ready: int = 0
    nodes_not_ready: int = 0
    num_pods: int = 0
    pods_running: int = 0
    pods_pending: int = 0
    pods_failed: int = 0
    pods_unknown: int = 0
    num_deployments: int = 0
    deployments_available: int = 0
    deployments_unavailable: int = 0
    cpu_usage_percent: float = 0.0
    memory_usage_percent: float = 0.0
    recent_events_warning: int = 0
    recent_events_normal: int = 0
    has_pvc_issues: bool = False
    has_network_issues: bool = False
    has_resource_pressure: bool = False

    def to_observation(self) -> np.ndarray:
        """The 18-dim float32 observation, every entry in [0, 1], in `OBS_FIELDS` order."""
        raw = np.array([float(getattr(self, name)) for name in OBS_FIELDS], dtype=np.float64)
        obs = np.zeros(OBS_SIZE, dtype=np.float32)
        encode_observation(raw, obs)
        return obs

    @classmethod
    def from_observation(cls, obs) -> "ClusterState":
        """Invert `to_observation` (counts are rounded; values above a scale are lost to clipping)."""
        o = [float(x) for x in obs]
        nodes = _total(o[0], NODE_SCALE)
        pods = _total(o[3], POD_SCALE)
        deployments = _total(o[8], DEPLOYMENT_SCALE)
        return cls(
            num_nodes=nodes,
            nodes_ready=nodes - _count_from_bad_share(1.0 - o[1], nodes) if nodes else 0,
            nodes_not_ready=_count_from_bad_share(o[2], nodes),
            num_pods=pods,
            pods_running=pods - _count_from_bad_share(1.0 - o[4], pods) if pods else 0,
            pods_pending=_count_from_bad_share(o[5], pods),
            pods_failed=_count_from_bad_share(o[6], pods),
            pods_unknown=_count_from_bad_share(o[7], pods),
            num_deployments=deployments,
            deployments_available=deployments - _count_from_bad_share(1.0 - o[9], deployments) if deployments else 0,
            deployments_unavailable=_count_from_bad_share(o[10], deployments),
            cpu_usage_percent=round(o[11] * 100.0, 4),
            memory_usage_percent=round(o[12] * 100.0, 4),
            recent_events_warning=_total(o[13], EVENT_SCALE),
            recent_events_normal=_total(o[14], EVENT_SCALE),
            has_pvc_issues=o[15] >= 0.5,
            has_network_issues=o[16] >= 0.5,
            has_resource_pressure=o[17] >= 0.5,
        )

    def to_dict(self) -> dict:
        return asdict(self)
