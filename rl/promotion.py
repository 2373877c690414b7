"""Whether a newly trained model may replace the current default: both played greedily on the same clusters.

The final evaluation of a training run plays the new model, the scripted expert runbook and the
current default model (when there is one) on the same seeded unseen clusters. The new model is
promoted when it is not worse than the current default:

- resolution: at most one standard error below it. The standard error is that of the difference
  of the two resolution rates over the `episodes` clusters, sqrt((p(1-p) + q(1-q)) / n), and never
  less than one cluster (1 / n), so that two models that both resolve every cluster are equal;
- diagnosis F1: at most `F1_TOLERANCE` below it.

A model that resolves less than `FLOOR_SHARE_OF_EXPERT` of what the expert resolves on the same
clusters has not learned the task (a run too short to learn); the command warns about it.
"""

import math
from dataclasses import asdict, dataclass, field

from rl.evaluate import evaluate_policy
from rl.sim.scenario import ScenarioConfig

F1_TOLERANCE = 0.01  # one point of diagnosis F1; runs of the default budget differ by less
FLOOR_SHARE_OF_EXPERT = 0.5  # below half of the expert's resolution rate, a model has not learned yet


@dataclass
class SharedEvaluation:
    """Greedy results of the new model, the expert and the current default on the same clusters."""

    seed: int  # cluster i is seeded seed + i
    episodes: int
    scenario: dict  # the ScenarioConfig the clusters were drawn from, as plain data
    model: dict  # `PolicyResult.to_dict()` of the new model
    expert: dict
    current: dict | None = None  # the current default's, when there is one to compare with

    def for_metadata(self) -> dict:
        """What the model file records: its own figures, then how to rebuild the same clusters, and the expert's."""
        return {
            **self.model,
            "episodes": self.episodes,
            "seed": self.seed,
            "scenario": self.scenario,
            "expert": self.expert,
        }


def evaluate_together(new, current, episodes: int, seed: int, scenario: ScenarioConfig) -> SharedEvaluation:
    """Play `new` (a policy), the expert runbook and `current` (a policy or None) on the same clusters."""
    from rl.policies import ExpertPolicy

    def figures(policy) -> dict:
        result = evaluate_policy(policy, episodes, seed, scenario).to_dict()
        del result["policy"]
        return result

    return SharedEvaluation(
        seed=seed,
        episodes=episodes,
        scenario=asdict(scenario),
        model=figures(new),
        expert=figures(ExpertPolicy(episodes, seed)),
        current=figures(current) if current is not None else None,
    )


@dataclass
class Comparison:
    """The new model against the current default on the same clusters."""

    not_worse: bool
    worse_in: list[str] = field(default_factory=list)  # "resolution", "diagnosis F1"
    resolution_tolerance: float = 0.0
    f1_tolerance: float = F1_TOLERANCE


def resolution_tolerance(new_rate: float, current_rate: float, episodes: int) -> float:
    """One standard error of the difference of two resolution rates over `episodes` clusters, at least 1 / episodes."""
    variance = new_rate * (1 - new_rate) + current_rate * (1 - current_rate)
    return max(math.sqrt(max(variance, 0.0) / episodes), 1 / episodes)


def compare(new: dict, current: dict, episodes: int) -> Comparison:
    """`new` and `current` are `PolicyResult.to_dict()`s from the same clusters."""
    tolerance = resolution_tolerance(new["resolution_rate"], current["resolution_rate"], episodes)
    worse = []
    if new["resolution_rate"] < current["resolution_rate"] - tolerance:
        worse.append("resolution")
    if _f1(new) < _f1(current) - F1_TOLERANCE:
        worse.append("diagnosis F1")
    return Comparison(not worse, worse, tolerance)


def _f1(result: dict) -> float:
    value = result.get("diagnosis_f1")
    return 0.0 if value is None else value


def resolution_floor(expert: dict) -> float:
    """The resolution rate below which a model has not learned the task: a share of the expert's."""
    return FLOOR_SHARE_OF_EXPERT * expert["resolution_rate"]


def below_floor(evaluation: dict | None) -> bool:
    """True when an evaluation (`SharedEvaluation.for_metadata()`) resolves less than the floor."""
    if not evaluation or not evaluation.get("expert") or evaluation.get("resolution_rate") is None:
        return False
    return evaluation["resolution_rate"] < resolution_floor(evaluation["expert"])
