"""The cluster state every backend fills, and the 18-dim observation the agent sees.

This module owns the observation schema. The simulator writes the same normalisation in its
compiled core (`rl.sim.core.write_observation`); a test checks that both agree.
"""

from dataclasses import asdict, dataclass

import numpy as np

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

# Scales from the cluster-code guide: counts become fractions of these, events are capped at 1.
NODE_SCALE = 100.0
POD_SCALE = 1000.0
DEPLOYMENT_SCALE = 100.0
EVENT_SCALE = 50.0


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
        obs = np.array(
            [
                self.num_nodes / NODE_SCALE,
                _fraction(self.nodes_ready, self.num_nodes),
                _fraction(self.nodes_not_ready, self.num_nodes),
                self.num_pods / POD_SCALE,
                _fraction(self.pods_running, self.num_pods),
                _fraction(self.pods_pending, self.num_pods),
                _fraction(self.pods_failed, self.num_pods),
                _fraction(self.pods_unknown, self.num_pods),
                self.num_deployments / DEPLOYMENT_SCALE,
                _fraction(self.deployments_available, self.num_deployments),
                _fraction(self.deployments_unavailable, self.num_deployments),
                self.cpu_usage_percent / 100.0,
                self.memory_usage_percent / 100.0,
                self.recent_events_warning / EVENT_SCALE,
                self.recent_events_normal / EVENT_SCALE,
                float(self.has_pvc_issues),
                float(self.has_network_issues),
                float(self.has_resource_pressure),
            ],
            dtype=np.float32,
        )
        return np.clip(obs, 0.0, 1.0)

    @classmethod
    def from_observation(cls, obs) -> "ClusterState":
        """Invert `to_observation` (counts are rounded; values above a scale are lost to clipping)."""
        o = [float(x) for x in obs]
        nodes = round(o[0] * NODE_SCALE)
        pods = round(o[3] * POD_SCALE)
        deployments = round(o[8] * DEPLOYMENT_SCALE)
        return cls(
            num_nodes=nodes,
            nodes_ready=round(o[1] * nodes),
            nodes_not_ready=round(o[2] * nodes),
            num_pods=pods,
            pods_running=round(o[4] * pods),
            pods_pending=round(o[5] * pods),
            pods_failed=round(o[6] * pods),
            pods_unknown=round(o[7] * pods),
            num_deployments=deployments,
            deployments_available=round(o[9] * deployments),
            deployments_unavailable=round(o[10] * deployments),
            cpu_usage_percent=round(o[11] * 100.0, 4),
            memory_usage_percent=round(o[12] * 100.0, 4),
            recent_events_warning=round(o[13] * EVENT_SCALE),
            recent_events_normal=round(o[14] * EVENT_SCALE),
            has_pvc_issues=o[15] >= 0.5,
            has_network_issues=o[16] >= 0.5,
            has_resource_pressure=o[17] >= 0.5,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _fraction(part, total) -> float:
    return part / total if total > 0 else 0.0
