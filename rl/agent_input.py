"""The agent's full input: what it has read of the cluster, and what it has done.

The policy reads one float32 vector per cluster, every entry in [0, 1], built the same way by the
simulator (`rl.sim`) and by the real-cluster backend (`rl.kube`):

| offset | size | section | what it holds |
|---|---|---|---|
| 0 | 18 | counts | the 18 numbers of `rl.state` (nodes, pods, deployments, usage, events, flags) |
| 18 | NUM_INPUT_KEYS | findings | per (kind, reason) in `INPUT_KEYS`, how many objects showed it (`encode_count`) |
| FRESH_AT | 9 | fresh reads | 1 for each read taken since the agent's last change to the cluster |
| TAKEN_AT | 14 | taken | 1 for each read or remedy taken in this episode (whatever its result) |
| LAST_ACTION_AT | 15 | last action | one-hot of the agent's previous action (all 0 at the start) |
| RESULT_AT | 4 | last result | one-hot: applied, refused, dry_run, unavailable (all 0 at the start) |
| WRITES_AT | 1 | writes allowed | 1 when remedies are applied, 0 when they are dry runs (read-only) |
| STEP_AT | 1 | steps taken | log1p(steps) / log1p(100): how long the agent has been at it |

Counts and findings are staged: each read refreshes only what it shows (`rl.findings.SHOWN_BY`),
and everything else keeps what an earlier read showed, or 0 if nothing has shown it yet; the fresh
reads tell "not read" from "read, and nothing there", and which findings are stale; the taken
actions what the agent has done since the episode began. A read that cannot be answered (`top` without
metrics-server) says `unavailable`, and shows the finding ("Metrics", "Unavailable").

`ClusterEnv` returns only the counts by default (the seed's 18-number observation);
`ClusterEnv(observation="full")` returns this vector.
"""

import math

import numpy as np
from numba import njit

from rl.actions import ACTION_NAMES, NUM_ACTIONS, REMEDIATION_ACTIONS, ClusterAction
from rl.faults import BENIGN, CATALOGUE, METRICS_UNAVAILABLE
from rl.findings import FINDING_KEYS, FLAG_KEYS, KEY_INDEX, SHOWS
from rl.jit_cache import drop_stale, fingerprint
from rl.state import OBS_FIELDS, OBS_SIZE

# The finding keys the agent sees: those the simulator can produce (the catalogue's, the benign ones,
# metrics being unavailable), in vocabulary order. Other findings of a real cluster stay in its
# report; an input the agent never saw in training would only be noise to it.
_PRODUCED = {e.key for spec in CATALOGUE for e in spec.findings} | {b.key for b in BENIGN} | {METRICS_UNAVAILABLE}
INPUT_KEYS = tuple(key for key in FINDING_KEYS if key in _PRODUCED)
NUM_INPUT_KEYS = len(INPUT_KEYS)
INPUT_KEY_INDEX = {key: k for k, key in enumerate(INPUT_KEYS)}
# INPUT_SHOWS[a, k]: read a shows input key k (`rl.findings.SHOWN_BY`).
INPUT_SHOWS = SHOWS[:, [KEY_INDEX[key] for key in INPUT_KEYS]]
# FLAG_OF[k]: which of the three flags input key k raises (0, 1, 2), or -1; FLAG_KEY_INDEX: those that do.
FLAG_OF = np.full(NUM_INPUT_KEYS, -1, dtype=np.int64)
for _flag, _keys in enumerate(FLAG_KEYS):
    for _key in _keys:
        if _key in INPUT_KEY_INDEX:
            FLAG_OF[INPUT_KEY_INDEX[_key]] = _flag
FLAG_KEY_INDEX = np.flatnonzero(FLAG_OF >= 0).astype(np.int64)

# The diagnostic reads, in action order: the fresh-read section has one entry each; the taken section
# one per read and remedy.
READS = tuple(a for a in ClusterAction if a not in REMEDIATION_ACTIONS and a != ClusterAction.WAIT)
NUM_READS = len(READS)
TAKEN = tuple(a for a in ClusterAction if a != ClusterAction.WAIT)
RESULTS = ("applied", "refused", "dry_run", "unavailable")
RESULT_APPLIED, RESULT_REFUSED, RESULT_DRY_RUN, RESULT_UNAVAILABLE = range(len(RESULTS))
NO_RESULT = -1  # before the first action

FINDINGS_AT = OBS_SIZE
FRESH_AT = FINDINGS_AT + NUM_INPUT_KEYS
TAKEN_AT = FRESH_AT + NUM_READS
LAST_ACTION_AT = TAKEN_AT + len(TAKEN)
RESULT_AT = LAST_ACTION_AT + NUM_ACTIONS
WRITES_AT = RESULT_AT + len(RESULTS)
STEP_AT = WRITES_AT + 1
INPUT_SIZE = STEP_AT + 1
_INVERSE_LOG_STEPS = 1.0 / math.log1p(100.0)

# The counts each read refreshes: a range of `rl.state.OBS_FIELDS`, first and last included. Every read
# also refreshes the three flags from the findings shown so far; TOP_NODES and TOP_PODS refresh CPU
# and memory, each with its own view (the nodes' use, the pods' use). Remedies and WAIT refresh nothing.
COUNTS_SHOWN_BY = {
    ClusterAction.GET_NODES: ("num_nodes", "nodes_not_ready"),
    ClusterAction.GET_PODS: ("num_pods", "pods_unknown"),
    ClusterAction.DESCRIBE_UNHEALTHY: ("num_pods", "pods_unknown"),
    ClusterAction.GET_DEPLOYMENTS: ("num_deployments", "deployments_unavailable"),
    ClusterAction.GET_EVENTS: ("recent_events_warning", "recent_events_normal"),
    ClusterAction.TOP_NODES: ("cpu_usage_percent", "memory_usage_percent"),
    ClusterAction.TOP_PODS: ("cpu_usage_percent", "memory_usage_percent"),
}
# The first look at a cluster, before any action: the summary of `kubectl get nodes,pods` (counts of
# nodes and pods by state, no object singled out, no finding).
FIRST_LOOK = ("num_nodes", "pods_unknown")
USAGE_READS = (ClusterAction.TOP_NODES, ClusterAction.TOP_PODS)


def field_range(names: tuple[str, str]) -> tuple[int, int]:
    """The first and last index of a range of `OBS_FIELDS` given by its first and last name."""
    return OBS_FIELDS.index(names[0]), OBS_FIELDS.index(names[1])


# Where each action's fresh-read entry is (-1: not a read).
FRESH_INDEX = np.full(NUM_ACTIONS, -1, dtype=np.int64)
for _k, _read in enumerate(READS):
    FRESH_INDEX[_read] = FRESH_AT + _k
TAKEN_INDEX = np.full(NUM_ACTIONS, -1, dtype=np.int64)
for _k, _action in enumerate(TAKEN):
    TAKEN_INDEX[_action] = TAKEN_AT + _k

INPUT_FIELDS = (
    tuple(OBS_FIELDS)
    + tuple(f"finding:{kind}/{reason}" for kind, reason in INPUT_KEYS)
    + tuple(f"fresh:{ACTION_NAMES[a]}" for a in READS)
    + tuple(f"taken:{ACTION_NAMES[a]}" for a in TAKEN)
    + tuple(f"last_action:{name}" for name in ACTION_NAMES)
    + tuple(f"last_result:{name}" for name in RESULTS)
    + ("writes_allowed", "steps_taken")
)
assert len(INPUT_FIELDS) == INPUT_SIZE


@njit(cache=True, error_model="numpy", fastmath=True)
def write_history(row, action, result, fresh, taken, writes_allowed, steps):
    """Write the history sections of one input row: which reads are fresh and which actions were
    taken this episode (`fresh`, `taken`: a bit per action), the last action and its result (-1: none
    yet), whether writes are allowed, and how many steps the agent has taken."""
    for a in range(NUM_ACTIONS):
        if FRESH_INDEX[a] >= 0:
            row[FRESH_INDEX[a]] = 1.0 if (fresh >> a) & 1 else 0.0
        if TAKEN_INDEX[a] >= 0:
            row[TAKEN_INDEX[a]] = 1.0 if (taken >> a) & 1 else 0.0
    for a in range(NUM_ACTIONS):
        row[LAST_ACTION_AT + a] = 1.0 if a == action else 0.0
    for r in range(len(RESULTS)):
        row[RESULT_AT + r] = 1.0 if r == result else 0.0
    row[WRITES_AT] = 1.0 if writes_allowed else 0.0
    row[STEP_AT] = encode_steps(steps)


@njit(cache=True, inline="always", error_model="numpy", fastmath=True)
def encode_steps(steps):
    """The steps an agent has taken, as one input entry."""
    return min(1.0, math.log1p(max(steps, 0)) * _INVERSE_LOG_STEPS)


# The layout above is compiled into the cached `write_history`: a change flushes its cache.
drop_stale(
    "agent_input",
    (write_history, encode_steps),
    fingerprint(FRESH_AT, TAKEN_AT, LAST_ACTION_AT, RESULT_AT, WRITES_AT, STEP_AT, FRESH_INDEX, TAKEN_INDEX),
)


def shown_keys(row) -> frozenset[tuple[str, str]]:
    """The finding keys an input row shows (those a read of this episode found at least once)."""
    values = np.asarray(row[FINDINGS_AT : FINDINGS_AT + NUM_INPUT_KEYS])
    return frozenset(INPUT_KEYS[k] for k in np.flatnonzero(values > 0))
