"""The command name the hints show: `cluster-rl`, or the host shim's when it runs the image.

The host shim (`cluster-code-rl`, entrypoint/shim.py) sets CLUSTER_RL_PROG for the container, so a
hint such as "run `cluster-code-rl train` first" names a command that exists where the user is.
"""

import os

PROG_ENV = "CLUSTER_RL_PROG"
DEFAULT_PROG = "cluster-rl"
HOST_SHIM_PROG = "cluster-code-rl"


def prog() -> str:
    """`cluster-code-rl` when the host shim runs us, else `cluster-rl` (any other value is ignored)."""
    return HOST_SHIM_PROG if os.environ.get(PROG_ENV) == HOST_SHIM_PROG else DEFAULT_PROG
