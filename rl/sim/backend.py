"""`SimBackend`: one simulated cluster behind the observe/act interface of `rl.kube.KubeBackend`."""

from dataclasses import dataclass, field

import numpy as np

from rl.actions import ACTION_NAMES, REMEDIATION_ACTIONS, ClusterAction
from rl.sim import core
from rl.sim.faults import DESCRIPTIONS, EVIDENCE, HUMAN_ONLY, Fault
from rl.sim.scenario import ScenarioConfig
from rl.state import OBS_FIELDS, OBS_SIZE, ClusterState

OUTCOMES = {
    core.OUTCOME_RUNNING: None,
    core.OUTCOME_RESOLVED: "resolved",
    core.OUTCOME_CATASTROPHE: "catastrophe",
    core.OUTCOME_TRUNCATED: "truncated",
}


@dataclass
class Reading:
    """What one look at a cluster gives the agent (the fields of `rl.kube.ClusterObservation`, plus
    the encoded observation)."""

    state: ClusterState
    observation: np.ndarray
    findings: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # entries of `degraded` that do not block resolution


class SimBackend:
    """A simulated cluster (one row of `rl.sim.core.ClusterBatch`).

    `act` steps the simulator and says in `result["data"]["outcome"]` whether the episode ended
    ("resolved", "catastrophe", "truncated") or not (None). `observe` returns what the agent has read
    so far. Unlike a real cluster, it also knows the truth: `true_state`, `active_faults`,
    `diagnosed_faults`.
    """

    simulated = True

    def __init__(self, scenario: ScenarioConfig):
        self.scenario = scenario
        self.batch = core.ClusterBatch(1, scenario)
        self._obs = np.zeros((1, OBS_SIZE), dtype=np.float32)
        self._reward = np.zeros(1, dtype=np.float32)
        self._terminal = np.zeros(1, dtype=bool)
        self._truncated = np.zeros(1, dtype=bool)
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
        self.batch.reset(self._obs)
        self.seen_faults = set()
        self._evidence = {}
        self._shown = {}
        self._note_faults()

    def observe(self) -> Reading:
        return Reading(_state_from_row(self.batch.seen[0]), self._obs[0].copy())

    def act(self, action: ClusterAction, named: int | None = None) -> dict:
        """Step the cluster. `named` (a bit mask, one bit per `Fault`) is what the agent names as
        wrong; None takes the faults its reads identified (`rl.sim.core.ClusterBatch.step`)."""
        self._action[0] = int(action)
        masks = None if named is None else np.array([named], dtype=np.int64)
        self.batch.step(
            self._action, self._obs, self._reward, self._terminal, self._truncated, auto_reset=False, named=masks
        )
        self._note_faults()
        self._note_reads(action)
        result = self._result(action)
        result["data"]["outcome"] = OUTCOMES[int(self.batch.outcome[0])]
        return result

    def close(self) -> None:
        pass

    # -- the truth, which only a simulator knows ---------------------------------------------

    def true_state(self) -> ClusterState:
        return _state_from_row(self.batch.truth[0])

    def true_health(self) -> float:
        return float(self.batch.health[0])

    def active_faults(self) -> list[Fault]:
        return core.fault_list(self.batch.active[0])

    def diagnosed_faults(self) -> list[Fault]:
        return core.fault_list(self.batch.active[0] & self.batch.revealed[0])

    def evidence(self, fault: Fault) -> str:
        return self._evidence.get(fault, "")

    def support(self, fault: Fault) -> list[dict]:
        """The reads of this episode that showed `fault`'s symptoms: `{"step", "read", "showed"}`,
        the last of each kind of read, in step order (reads that identify it, `rl.sim.core`)."""
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
            "true_health": self.true_health(),
        }

    # -- internals ----------------------------------------------------------------------------

    def _note_faults(self) -> None:
        state = self.true_state()
        for fault in self.active_faults():
            self.seen_faults.add(fault)
            self._evidence[fault] = EVIDENCE[fault].format(size=int(self.batch.size[0, fault]), state=state)

    def _note_reads(self, action: ClusterAction) -> None:
        if not core.IS_READ[action] or self.batch.outcome[0] == core.OUTCOME_RESOLVED:
            return
        state = self.true_state()
        step = int(self.batch.shape[0, core.STEP])
        for fault in core.fault_list(core.REVEAL_MASK[action] & self.batch.active[0]):
            showed = EVIDENCE[fault].format(size=int(self.batch.size[0, fault]), state=state)
            self._shown.setdefault(fault, {})[ACTION_NAMES[action]] = {
                "step": step,
                "read": ACTION_NAMES[action],
                "showed": showed,
            }

    def _result(self, action: ClusterAction) -> dict:
        batch = self.batch
        parts = {name: float(v) for name, v in zip(core.REWARD_PART_NAMES, batch.reward_parts[0], strict=True)}
        fixed = [f.name.lower() for f in core.fault_list(batch.resolved_now[0])]
        data = {"reward_parts": parts, "resolved": fixed}
        if action in REMEDIATION_ACTIONS:
            harmful = bool(batch.step_harmful[0])
            if fixed:
                message = f"{ACTION_NAMES[action]}: fixed " + ", ".join(fixed)
            elif harmful:
                message = f"{ACTION_NAMES[action]}: acted on the wrong object"
            else:
                message = f"{ACTION_NAMES[action]}: no effect"
            data["harmful"] = harmful
            return {"success": bool(fixed), "message": message, "data": data}
        if action == ClusterAction.WAIT:
            done = batch.outcome[0] == core.OUTCOME_RESOLVED
            message = "done: nothing left for the agent" if done else "waited"
            return {"success": True, "message": message, "data": data}
        diagnosed = set(self.diagnosed_faults())
        found = [f for f in core.fault_list(core.REVEAL_MASK[action] & batch.active[0]) if f in diagnosed]
        data["found"] = [DESCRIPTIONS[f] for f in found]
        seen = batch.seen[0]
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
