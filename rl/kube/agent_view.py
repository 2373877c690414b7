"""The agent's input on a real cluster, staged exactly as the simulator stages it.

The simulator (`rl.sim.kernels._refresh_seen`) shows the agent only what its reads have shown: the
first look is the summary of `kubectl get nodes,pods`; each read then refreshes its own counts
(`rl.agent_input.COUNTS_SHOWN_BY`) and its own findings (`rl.findings.SHOWN_BY`), and the three flags
follow the findings shown so far. `AgentView` does the same with a real cluster's readings
(`rl.kube.observe.Reading`): the same encoders (`rl.state.encode_observation`,
`rl.findings.encode_count` over `rl.agent_input.INPUT_KEY_INDEX`), the same history sections
(`rl.agent_input.write_history`). A `top` that metrics-server cannot answer shows the finding
("Metrics", "Unavailable") and leaves CPU and memory at 0, "unknown", as in the simulator.
"""

import numpy as np

from rl.actions import REMEDIATION_ACTIONS, ClusterAction
from rl.agent_input import (
    COUNTS_SHOWN_BY,
    FINDINGS_AT,
    FIRST_LOOK,
    INPUT_KEYS,
    INPUT_SIZE,
    NO_RESULT,
    READS,
    RESULTS,
    USAGE_READS,
    field_range,
    write_history,
)
from rl.faults import METRICS_UNAVAILABLE
from rl.findings import FLAG_KEYS, KEY_INDEX, SHOWN_BY, count_findings, encode_count
from rl.state import OBS_FIELDS, OBS_SIZE, ClusterState, encode_observation

_CPU, _MEMORY = OBS_FIELDS.index("cpu_usage_percent"), OBS_FIELDS.index("memory_usage_percent")
_FLAGS = [OBS_FIELDS.index(name) for name in ("has_pvc_issues", "has_network_issues", "has_resource_pressure")]
# Per read, the vocabulary positions of the finding keys it shows.
_SHOWN_KEYS = {read: np.array([KEY_INDEX[key] for key, reads in SHOWN_BY.items() if read in reads]) for read in READS}
_INPUT_POSITIONS = np.array([KEY_INDEX[key] for key in INPUT_KEYS])
_FLAG_POSITIONS = [np.array([KEY_INDEX[key] for key in keys]) for keys in FLAG_KEYS]
_METRICS_UNAVAILABLE = KEY_INDEX[METRICS_UNAVAILABLE]


class AgentView:
    """What the agent has read of one real cluster and done to it, as its input row.

    `start(state)` begins an episode with the first look; `record(action, result)` notes each action
    and its result (one of `rl.agent_input.RESULTS`), and `show(action, state, findings, usage)` what
    a read showed: `state` the cluster's counts (`ClusterState`), `findings` the analyzers' findings,
    `usage` (CPU %, memory %) for a `top`, None when it was unavailable.
    """

    def __init__(self, writes_allowed: bool):
        self.writes_allowed = writes_allowed
        self.start(ClusterState())

    def start(self, state: ClusterState) -> None:
        self.seen = np.zeros(OBS_SIZE, dtype=np.float64)  # the counts read so far, in plain units
        self.found = np.zeros(len(KEY_INDEX), dtype=np.float64)  # objects per finding key read so far
        lo, hi = field_range(FIRST_LOOK)
        self.seen[lo : hi + 1] = _raw(state)[lo : hi + 1]
        self.fresh = 0  # a bit per read taken since the agent's last change to the cluster
        self.taken = 0  # a bit per action taken this episode (WAIT aside)
        self.last_action = -1
        self.last_result = NO_RESULT
        self.steps = 0  # actions taken this episode

    def record(self, action: ClusterAction, result: str) -> None:
        """An action was taken, with this result: the history sections as the simulator writes them."""
        if action != ClusterAction.WAIT:
            self.taken |= 1 << int(action)
        if action in REMEDIATION_ACTIONS and result == "applied":
            self.fresh = 0  # the cluster changed: every read is stale
        if action in READS:
            self.fresh |= 1 << int(action)
        self.last_action = int(action)
        self.last_result = RESULTS.index(result)
        self.steps += 1

    def show(self, action: ClusterAction, state: ClusterState, findings, usage: tuple[float, float] | None) -> None:
        """What read `action` showed: its counts and its findings, and the flags of all findings shown."""
        if action in USAGE_READS:
            self.seen[_CPU], self.seen[_MEMORY] = usage if usage is not None else (0.0, 0.0)
        elif action in COUNTS_SHOWN_BY:
            lo, hi = field_range(COUNTS_SHOWN_BY[action])
            self.seen[lo : hi + 1] = _raw(state)[lo : hi + 1]
        counts = count_findings(findings)
        if action in USAGE_READS:
            counts[_METRICS_UNAVAILABLE] = 0.0 if usage is not None else 1.0
        shown = _SHOWN_KEYS[action]
        self.found[shown] = counts[shown]
        for flag, positions in zip(_FLAGS, _FLAG_POSITIONS, strict=True):
            self.seen[flag] = 1.0 if self.found[positions].any() else 0.0

    def state(self) -> ClusterState:
        """The counts read so far, in plain units (what `ClusterEnv.observed_state` returns)."""
        values = {}
        for k, name in enumerate(OBS_FIELDS):
            if name.startswith("has_"):
                values[name] = bool(self.seen[k] >= 0.5)
            elif name.endswith("_percent"):
                values[name] = float(self.seen[k])
            else:
                values[name] = int(self.seen[k])
        return ClusterState(**values)

    def shown_findings(self) -> dict[tuple[str, str], int]:
        """The input's finding keys shown so far, by (kind, reason): how many objects each."""
        found = self.found[_INPUT_POSITIONS]
        return {INPUT_KEYS[k]: int(found[k]) for k in np.flatnonzero(found > 0)}

    def row(self) -> np.ndarray:
        """The input row (`rl.agent_input`), float32."""
        row = np.zeros(INPUT_SIZE, dtype=np.float32)
        encode_observation(self.seen, row)
        found = self.found[_INPUT_POSITIONS]
        for k in np.flatnonzero(found > 0):
            row[FINDINGS_AT + k] = encode_count(found[k])
        write_history(row, self.last_action, self.last_result, self.fresh, self.taken, self.writes_allowed, self.steps)
        return row


def _raw(state: ClusterState) -> np.ndarray:
    return np.array([float(getattr(state, name)) for name in OBS_FIELDS], dtype=np.float64)
