"""Evaluate policies on the same seeded scenarios and summarise how they did."""

from dataclasses import asdict, dataclass, field

import numpy as np

from rl.diagnosis import DiagnosisCounts, named_masks, policy_beliefs
from rl.faults import Fault
from rl.sim import layout
from rl.sim.batch import started_batch
from rl.sim.kernels import popcount
from rl.sim.scenario import ScenarioConfig


@dataclass
class FaultResult:
    """How a policy did in the episodes in which one fault type was active at some point."""

    episodes: int  # episodes in which the fault occurred (at the start or later)
    resolution_rate: float  # share of those episodes resolved (NaN when none)
    mean_steps_to_resolve: float  # over those resolved (NaN when none)
    recall: float  # share of episodes that ended with it active in which it was named (NaN when none)
    active_at_end: int  # episodes that ended with it active


@dataclass
class PolicyResult:
    policy: str
    resolution_rate: float  # share of episodes the agent ended with WAIT, nothing left for it to do
    mean_steps_to_resolve: float  # over the won episodes (NaN when none was won)
    mean_return: float
    harmful_actions_per_episode: float
    catastrophe_rate: float
    true_health_at_end: float = float("nan")  # mean true health when the episode ended
    unresolved_human_faults_at_end: float = float("nan")  # mean count of human-only faults still active
    undiagnosed_faults_at_end: float = float("nan")  # mean count of active faults the agent never identified
    # What the agent named at the episode's last step against the faults truly active then, summed
    # over episodes (micro-averaged); see `rl.diagnosis.DiagnosisCounts`.
    diagnosis_precision: float = float("nan")
    diagnosis_recall: float = float("nan")
    diagnosis_f1: float = float("nan")
    # Episodes the agent ended with a report (WAIT) that was not exact, and the faults such reports
    # named that were not there (false alarms), per episode.
    wrong_report_rate: float = float("nan")
    false_alarms_per_episode: float = float("nan")
    per_fault: dict[str, FaultResult] = field(default_factory=dict)  # by fault name

    def to_dict(self, per_fault: bool = False) -> dict:
        """Plain JSON-ready data (NaN as None); the per-fault table only when asked for."""
        d = asdict(self)
        if not per_fault:
            del d["per_fault"]
        return _none_for_nan(d)


def _none_for_nan(value):
    if isinstance(value, dict):
        return {k: _none_for_nan(v) for k, v in value.items()}
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def evaluate_policy(policy, episodes: int, seed: int, scenario: ScenarioConfig | None = None) -> PolicyResult:
    """Run `policy` for one episode on each of `episodes` clusters seeded `seed`, `seed + 1`, ...

    Every policy evaluated with the same seed and scenario faces exactly the same clusters and
    the same faults arriving at the same steps (as long as its actions agree). At every step the
    faults the policy names (its `beliefs`, see `rl.diagnosis`) go to the simulator: a WAIT wins
    only if nothing the agent may fix is left and they are exactly the active faults it must name.
    """
    if episodes < 1:
        raise ValueError(f"episodes: must be >= 1, got {episodes}")
    scenario = scenario or ScenarioConfig()
    batch, (obs, rewards, terminals, truncations) = started_batch(episodes, scenario, seed)
    policy.reset(None)

    running = np.ones(episodes, dtype=bool)
    returns = np.zeros(episodes, dtype=np.float64)
    harmful = np.zeros(episodes, dtype=np.int64)
    lengths = np.zeros(episodes, dtype=np.int64)
    outcome = np.zeros(episodes, dtype=np.int8)
    health_at_end = np.zeros(episodes, dtype=np.float64)
    human_at_end = np.zeros(episodes, dtype=np.int64)
    undiagnosed_at_end = np.zeros(episodes, dtype=np.int64)
    st = batch.state
    occurred = st.active.copy()  # every fault active at some point of the episode
    active_at_end = np.zeros(episodes, dtype=np.int64)
    named_at_end = np.zeros(episodes, dtype=np.int64)
    for _ in range(scenario.max_steps):
        actions = np.asarray(policy.act(obs), dtype=np.int32)
        named = named_masks(policy_beliefs(policy, episodes))
        named_at_end[running] = named[running]
        batch.step(actions, obs, rewards, terminals, truncations, auto_reset=False, named=named)
        returns[running] += rewards[running]
        harmful[running] += st.step_harmful[running]
        lengths[running] += 1
        occurred[running] |= st.active[running]
        ended = running & (st.outcome != layout.OUTCOME_RUNNING)
        outcome[ended] = st.outcome[ended]
        health_at_end[ended] = st.final_health[ended]
        active_at_end[ended] = st.final_active[ended]
        running &= ~ended
        if not running.any():
            break
    # Episodes still running here ran out of steps without the batch seeing them end (max_steps
    # beyond the scenario's): take their state as it is.
    health_at_end[running] = st.health[running]
    active_at_end[running] = st.active[running]
    human_at_end[:] = _popcounts(active_at_end & layout.HUMAN_ONLY_MASK)
    undiagnosed_at_end[:] = _popcounts(active_at_end & ~st.revealed)

    won = outcome == layout.OUTCOME_RESOLVED
    reported = won | (outcome == layout.OUTCOME_WRONG)
    diagnosis = DiagnosisCounts.of(named_at_end, active_at_end)
    return PolicyResult(
        policy=policy.name,
        resolution_rate=float(won.mean()),
        mean_steps_to_resolve=_mean(lengths[won]),
        mean_return=float(returns.mean()),
        harmful_actions_per_episode=float(harmful.mean()),
        catastrophe_rate=float((outcome == layout.OUTCOME_CATASTROPHE).mean()),
        true_health_at_end=float(health_at_end.mean()),
        unresolved_human_faults_at_end=float(human_at_end.mean()),
        undiagnosed_faults_at_end=float(undiagnosed_at_end.mean()),
        diagnosis_precision=diagnosis.precision,
        diagnosis_recall=diagnosis.recall,
        diagnosis_f1=diagnosis.f1,
        wrong_report_rate=float((outcome == layout.OUTCOME_WRONG).mean()),
        false_alarms_per_episode=float(_popcounts(named_at_end[reported] & ~active_at_end[reported]).sum() / episodes),
        per_fault=_per_fault(occurred, won, lengths, active_at_end, named_at_end),
    )


def _per_fault(occurred, won, lengths, active_at_end, named_at_end) -> dict[str, FaultResult]:
    table = {}
    for fault in Fault:
        bit = np.int64(1) << int(fault)
        had = (occurred & bit) != 0
        left = (active_at_end & bit) != 0
        table[fault.name.lower()] = FaultResult(
            episodes=int(had.sum()),
            resolution_rate=_mean(won[had]),
            mean_steps_to_resolve=_mean(lengths[had & won]),
            recall=_mean((named_at_end[left] & bit) != 0),
            active_at_end=int(left.sum()),
        )
    return table


def _popcounts(masks) -> np.ndarray:
    return np.array([popcount(int(m)) for m in masks], dtype=np.int64)


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
