"""cluster-code-rl's RL library: a vectorized Kubernetes-cluster simulator, `ClusterEnv`, the
PufferLib vector env and trainer, and baseline policies.

Importing `rl` registers the gymnasium id `ClusterCode/Cluster-v0`. Torch, PufferLib and the
kubernetes client are imported only by the modules that need them.
"""

import gymnasium

from rl.actions import ClusterAction
from rl.env import ClusterEnv
from rl.sim.scenario import ScenarioConfig
from rl.state import ClusterState

__all__ = ["ClusterAction", "ClusterEnv", "ClusterState", "ScenarioConfig"]
__version__ = "0.1.0"

ENV_ID = "ClusterCode/Cluster-v0"
if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="rl.env:ClusterEnv", max_episode_steps=None)
