"""The agent's 15 actions, in the order cluster-code and trained models depend on."""

from enum import IntEnum


class ClusterAction(IntEnum):
    GET_NODES = 0
    GET_PODS = 1
    GET_EVENTS = 2
    GET_DEPLOYMENTS = 3
    CHECK_LOGS = 4
    DESCRIBE_UNHEALTHY = 5
    RESTART_FAILED_PODS = 6
    SCALE_UP_DEPLOYMENT = 7
    SCALE_DOWN_DEPLOYMENT = 8
    DRAIN_NODE = 9
    UNCORDON_NODE = 10
    TOP_NODES = 11
    TOP_PODS = 12
    GET_RESOURCE_QUOTAS = 13
    WAIT = 14


NUM_ACTIONS = len(ClusterAction)
ACTION_NAMES = tuple(a.name for a in ClusterAction)

# Actions that change the cluster. On a real cluster they are dry runs unless writes are allowed.
REMEDIATION_ACTIONS = frozenset(
    {
        ClusterAction.RESTART_FAILED_PODS,
        ClusterAction.SCALE_UP_DEPLOYMENT,
        ClusterAction.SCALE_DOWN_DEPLOYMENT,
        ClusterAction.DRAIN_NODE,
        ClusterAction.UNCORDON_NODE,
    }
)


def validate_action(action) -> ClusterAction:
    """Return `action` as a ClusterAction, or raise ValueError saying what was wrong with it."""
    try:
        value = int(action)
    except (TypeError, ValueError):
        raise ValueError(f"action must be an integer in [0, {NUM_ACTIONS - 1}], got {action!r}") from None
    if value != action or not 0 <= value < NUM_ACTIONS:
        raise ValueError(f"action must be an integer in [0, {NUM_ACTIONS - 1}], got {action!r}")
    return ClusterAction(value)
