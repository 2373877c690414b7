"""Evaluate policies on the same seeded scenarios and summarise how they did."""

from dataclasses import asdict, dataclass

import numpy as np

from rl.sim import core
from rl.sim.scenario import ScenarioConfig
from rl.state import OBS_SIZE


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

    def to_dict(self) -> dict:
        d = asdict(self)
        for key, value in d.items():
            if isinstance(value, float) and np.isnan(value):
                d[key] = None
        return d


def evaluate_policy(policy, episodes: int, seed: int, scenario: ScenarioConfig | None = None) -> PolicyResult:
    """Run `policy` for one episode on each of `episodes` clusters seeded `seed`, `seed + 1`, ...

    Every policy evaluated with the same seed and scenario faces exactly the same clusters and
    the same faults arriving at the same steps (as long as its actions agree).
    """
    if episodes < 1:
        raise ValueError(f"episodes: must be >= 1, got {episodes}")
    scenario = scenario or ScenarioConfig()
    batch = core.ClusterBatch(episodes, scenario)
    batch.seed(seed)
    obs = np.zeros((episodes, OBS_SIZE), dtype=np.float32)
    rewards = np.zeros(episodes, dtype=np.float32)
    terminals = np.zeros(episodes, dtype=bool)
    truncations = np.zeros(episodes, dtype=bool)
    batch.reset(obs)
    policy.reset(None)

    running = np.ones(episodes, dtype=bool)
    returns = np.zeros(episodes, dtype=np.float64)
    harmful = np.zeros(episodes, dtype=np.int64)
    lengths = np.zeros(episodes, dtype=np.int64)
    outcome = np.zeros(episodes, dtype=np.int8)
    health_at_end = np.zeros(episodes, dtype=np.float64)
    human_at_end = np.zeros(episodes, dtype=np.int64)
    undiagnosed_at_end = np.zeros(episodes, dtype=np.int64)
    for _ in range(scenario.max_steps):
        actions = np.asarray(policy.act(obs), dtype=np.int32)
        batch.step(actions, obs, rewards, terminals, truncations, auto_reset=False)
        returns[running] += rewards[running]
        harmful[running] += batch.step_harmful[running]
        lengths[running] += 1
        ended = running & (batch.outcome != core.OUTCOME_RUNNING)
        outcome[ended] = batch.outcome[ended]
        health_at_end[ended] = batch.final_health[ended]
        human_at_end[ended] = core.POPCOUNT[batch.final_active[ended] & core.HUMAN_ONLY_MASK]
        undiagnosed_at_end[ended] = core.POPCOUNT[batch.final_active[ended] & ~batch.revealed[ended]]
        running &= ~ended
        if not running.any():
            break
    # Episodes still running here ran out of steps without the batch seeing them end (max_steps
    # beyond the scenario's): take their state as it is.
    health_at_end[running] = batch.health[running]
    human_at_end[running] = core.POPCOUNT[batch.active[running] & core.HUMAN_ONLY_MASK]
    undiagnosed_at_end[running] = core.POPCOUNT[batch.active[running] & ~batch.revealed[running]]

    won = outcome == core.OUTCOME_RESOLVED
    return PolicyResult(
        policy=policy.name,
        resolution_rate=float(won.mean()),
        mean_steps_to_resolve=float(lengths[won].mean()) if won.any() else float("nan"),
        mean_return=float(returns.mean()),
        harmful_actions_per_episode=float(harmful.mean()),
        catastrophe_rate=float((outcome == core.OUTCOME_CATASTROPHE).mean()),
        true_health_at_end=float(health_at_end.mean()),
        unresolved_human_faults_at_end=float(human_at_end.mean()),
        undiagnosed_faults_at_end=float(undiagnosed_at_end.mean()),
    )
