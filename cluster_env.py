"""cluster-code's `cluster_env` module, served by cluster-code-rl's environment.

The training and inference scripts that cluster-code (as released) writes for `cluster-code rl
train|diagnose` do `from cluster_env import ClusterEnv, ClusterAction`. When they run through the
host shim's Python (the image's), this module answers that import with `rl.ClusterEnv` and
`rl.ClusterAction`, so those scripts train and diagnose on our simulator (or, with
`simulation_mode=False`, on a real cluster through `rl.kube`).

cluster-code's own module also has the class attributes `OBS_DIM` and `NUM_ACTIONS`, which its
scripts read (`env.OBS_DIM`, `env.NUM_ACTIONS`); the subclass below adds them and nothing else.
"""

from rl.actions import NUM_ACTIONS as _NUM_ACTIONS
from rl.actions import ClusterAction
from rl.env import ClusterEnv as _ClusterEnv
from rl.state import OBS_SIZE, ClusterState

__all__ = ["ClusterAction", "ClusterEnv", "ClusterState"]


class ClusterEnv(_ClusterEnv):
    """`rl.ClusterEnv` (see its docstring for the spaces, rewards and episode end) under cluster-code's name."""

    OBS_DIM = OBS_SIZE
    NUM_ACTIONS = _NUM_ACTIONS
