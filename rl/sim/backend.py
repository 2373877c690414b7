"""`SimBackend`: one simulated cluster behind the observe/act interface of `rl.kube.KubeBackend`."""

from dataclasses import dataclass, field

import numpy as np

from rl.actions import ACTION_NAMES, REMEDIATION_ACTIONS, ClusterAction
from rl.agent_input import INPUT_KEYS, RESULTS
from rl.faults import DESCRIPTIONS, EVIDENCE, HUMAN_ONLY, Fault, signature_keys
from rl.sim import layout
from rl.sim.batch import ClusterBatch, fault_list, step_buffers
from rl.sim.scenario import ScenarioConfig
from rl.state import OBS_FIELDS, OBS_SIZE, ClusterState

OUTCOMES = {
    layout.OUTCOME_RUNNING: None,
    layout.OUTCOME_RESOLVED: "resolved",
    layout.OUTCOME_CATASTROPHE: "catastrophe",
    layout.OUTCOME_TRUNCATED: "truncated",
    layout.OUTCOME_WRONG: "stopped",
}


@dataclass
class Reading:
    """What one look at a cluster gives the agent: the counts in plain units, the 18-number
    observation, the full input row (`rl.agent_input`), and on a real cluster the findings and what
    could not be read."""

    state: ClusterState
    observation: np.ndarray
    inputs: np.ndarray
    findings: list = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # entries of `degraded` that do not block resolution


class SimBackend:
    """A simulated cluster (one row of `rl.sim.batch.ClusterBatch`).

    `act` steps the simulator and says in `result["data"]["outcome"]` whether the episode ended
    ("resolved", "stopped": a WAIT whose report was not exact, "catastrophe", "truncated") or not
    (None). `observe` returns what the agent has read so far. Unlike a real cluster, it also knows
    the truth: `true_state`, `active_faults`, `diagnosed_faults`.
    """

    simulated = True

    def __init__(self, scenario: ScenarioConfig):
        self.scenario = scenario
        self.batch = ClusterBatch(1, scenario)
        self._buffers = step_buffers(1)
        self._action = np.zeros(1, dtype=np.int32)
        self._seeded = False
        self.seen_faults: set[Fault] = set()  # every fault active at some point of this episode
        self._evidence: dict[Fault, str] = {}
        self._shown: dict[Fault, dict[str, dict]] = {}  # fault -> read name -> what it showed last

    def reset(self, seed: int | None, fallback_seed) -> None:
        if seed is not None:
            self.batch.seed(seed)
            self._seeded = True
        elif not self._seeded:
            self.batch.seed(fallback_seed())
            self._seeded = True
        self.batch.reset(self._buffers.observations)
        self.seen_faults = set()
        self._evidence = {}
        self._shown = {}
        self._note_faults()

    def observe(self) -> Reading:
        inputs = self._buffers.observations[0].copy()
        return Reading(_state_from_row(self.batch.state.seen[0]), inputs[:OBS_SIZE].copy(), inputs)

    @property
    def read_only(self) -> bool:
        return bool(self.batch.state.conditions[0] & layout.READ_ONLY)

    def act(self, action: ClusterAction, named: int | None = None) -> dict:
        """Step the cluster. `named` (a bit mask, one bit per `Fault`) is what the agent names as
        wrong; None takes the faults its reads identified (`rl.sim.batch.ClusterBatch.step`)."""
        self._action[0] = int(action)
        masks = None if named is None else np.array([named], dtype=np.int64)
        b = self._buffers
        self.batch.step(
            self._action, b.observations, b.rewards, b.terminals, b.truncations, auto_reset=False, named=masks
        )
        self._note_faults()
        self._note_reads(action)
        result = self._result(action)
        result["data"]["outcome"] = OUTCOMES[int(self.batch.state.outcome[0])]
        return result

    def close(self) -> None:
        pass

    # -- the truth, which only a simulator knows ---------------------------------------------

    def true_state(self) -> ClusterState:
        return _state_from_row(self.batch.state.truth[0])

    def true_health(self) -> float:
        return float(self.batch.state.health[0])

    def active_faults(self) -> list[Fault]:
        return fault_list(self.batch.state.active[0])

    def diagnosed_faults(self) -> list[Fault]:
        st = self.batch.state
        return fault_list(st.active[0] & st.revealed[0])

    def must_name(self) -> list[Fault]:
        """The active faults a WAIT must name now (all of them when read-only)."""
        return fault_list(self.batch.state.active[0] & self.batch.must_name_masks()[0])

    def shown_findings(self) -> dict[tuple[str, str], int]:
        """The findings the reads of this episode have shown, by (kind, reason): how many objects."""
        counts = self.batch.state.seen_found[0]
        return {INPUT_KEYS[k]: int(counts[k]) for k in np.flatnonzero(counts > 0)}

    def evidence(self, fault: Fault) -> str:
        return self._evidence.get(fault, "")

    def support(self, fault: Fault) -> list[dict]:
        """The reads of this episode that identified `fault` or showed one of its signature findings:
        `{"step", "read", "showed", "findings"}`, the last of each kind of read, in step order."""
        return sorted(self._shown.get(fault, {}).values(), key=lambda e: e["step"])

    def info(self) -> dict:
        """The truth of this step for `info`: faults by name, which are diagnosed, the health."""
        active = self.active_faults()
        diagnosed = set(self.diagnosed_faults())
        return {
            "issues": [DESCRIPTIONS[f] + (" [diagnosed]" if f in diagnosed else "") for f in active],
            "needs_human": [DESCRIPTIONS[f] for f in active if f in diagnosed and f in HUMAN_ONLY],
            "active_faults": [f.name.lower() for f in active],
            "diagnosed_faults": [f.name.lower() for f in active if f in diagnosed],
            "must_name": [f.name.lower() for f in self.must_name()],
            "read_only": self.read_only,
            "true_health": self.true_health(),
        }

    # -- internals ----------------------------------------------------------------------------

    def _note_faults(self) -> None:
        state = self.true_state()
        for fault in self.active_faults():
            self.seen_faults.add(fault)
            self._evidence[fault] = EVIDENCE[fault].format(size=int(self.batch.state.size[0, fault]), state=state)

    def _note_reads(self, action: ClusterAction) -> None:
        """Remember, per active fault, the reads that identified it or showed one of its signature
        findings (what a report cites as evidence)."""
        st = self.batch.state
        if not layout.IS_READ[action] or st.outcome[0] == layout.OUTCOME_RESOLVED:
            return
        state = self.true_state()
        step = int(st.shape[0, layout.STEP])
        keys = layout.SHOWN_KEYS[layout.SHOWN_START[action] : layout.SHOWN_START[action + 1]]
        shown = {INPUT_KEYS[k]: int(st.found[0, k]) for k in keys if st.found[0, k] > 0}
        identified = st.active[0] & st.revealed[0] & layout.REVEAL_MASK[action]
        for fault in fault_list(st.active[0]):
            signatures = [key for key in signature_keys(fault) if key in shown]
            if not (identified >> fault) & 1 and not signatures:
                continue
            self._shown.setdefault(fault, {})[ACTION_NAMES[action]] = {
                "step": step,
                "read": ACTION_NAMES[action],
                "showed": EVIDENCE[fault].format(size=int(st.size[0, fault]), state=state),
                "findings": [f"{kind} {reason} x{shown[(kind, reason)]}" for kind, reason in signatures],
            }

    def _result(self, action: ClusterAction) -> dict:
        st = self.batch.state
        parts = {name: float(v) for name, v in zip(layout.REWARD_PART_NAMES, st.reward_parts[0], strict=True)}
        fixed = [f.name.lower() for f in fault_list(st.resolved_now[0])]
        result = RESULTS[st.last_result[0]]
        data = {"reward_parts": parts, "resolved": fixed, "result": result}
        if action in REMEDIATION_ACTIONS:
            harmful = bool(st.step_harmful[0])
            if result == "dry_run":
                message = f"{ACTION_NAMES[action]}: dry run (read-only cluster), nothing changed"
            elif result == "refused":
                message = f"{ACTION_NAMES[action]}: nothing to act on"
            elif fixed:
                message = f"{ACTION_NAMES[action]}: fixed " + ", ".join(fixed)
            elif harmful:
                message = f"{ACTION_NAMES[action]}: acted on the wrong object"
            else:
                message = f"{ACTION_NAMES[action]}: no effect"
            data["harmful"] = harmful
            return {"success": bool(fixed), "message": message, "data": data}
        if action == ClusterAction.WAIT:
            done = st.outcome[0] == layout.OUTCOME_RESOLVED
            message = "done: the report is exact" if done else "done: the report is not exact"
            return {"success": bool(done), "message": message, "data": data}
        if result == "unavailable":
            data["found"] = []
            return {"success": False, "message": f"{ACTION_NAMES[action]}: metrics unavailable", "data": data}
        diagnosed = set(self.diagnosed_faults())
        found = [f for f in fault_list(layout.REVEAL_MASK[action] & st.active[0]) if f in diagnosed]
        data["found"] = [DESCRIPTIONS[f] for f in found]
        seen = st.seen[0]
        data["observed"] = {name: float(seen[k]) for k, name in enumerate(OBS_FIELDS)}
        message = f"{ACTION_NAMES[action]}: " + ("; ".join(data["found"]) if data["found"] else "nothing new")
        return {"success": True, "message": message, "data": data}


def _state_from_row(row) -> ClusterState:
    values = {}
    for k, name in enumerate(OBS_FIELDS):
        v = float(row[k])
        if name.startswith("has_"):
            values[name] = v >= 0.5
        elif name.endswith("_percent"):
            values[name] = v
        else:
            values[name] = int(round(v))
    return ClusterState(**values)
