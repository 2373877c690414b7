"""Scenario knobs: the distribution of clusters and faults an episode is drawn from."""

from dataclasses import asdict, dataclass, field, fields

from rl.faults import FAULT_NAMES, INDUCED_ONLY, INJECTABLE, Fault

MIN_NODES, MAX_NODES = 3, 1000
MIN_DEPLOYMENTS, MAX_DEPLOYMENTS = 1, 20_000  # 1: `train --from-cluster` sizes small clusters down to 1
MAX_REPLICAS = 50
MAX_PODS_PER_NODE = 250  # the kubelet's default limit is 110; some clusters raise it
MAX_FAULTS = 4

DEFAULT_FAULT_WEIGHTS = {Fault(f).name.lower(): 1.0 for f in INJECTABLE}
# How many faults a cluster starts with, 0 to MAX_FAULTS: most real clusters have nothing or one thing
# wrong when someone looks. Restricted to [min_faults, max_faults] and renormalised.
FAULT_COUNT_WEIGHTS = (0.22, 0.33, 0.22, 0.13, 0.10)
assert len(FAULT_COUNT_WEIGHTS) == MAX_FAULTS + 1


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything that shapes a simulated episode. Invalid values raise ValueError naming the field.

    Cluster sizes are drawn log-uniformly from the inclusive node range (as many 3-30 node clusters as
    30-300 node ones); each cluster runs `min_pods_per_node` to `max_pods_per_node` pods per node (a
    few DaemonSet pods on every node, the rest in deployments of `min_replicas` to `max_replicas`
    replicas, their number kept within the deployment range). Limits: 3 to 1,000 nodes, 1 to 20,000
    deployments. `fault_weights` gives the relative chance of each fault type (names from
    `rl.faults.FAULT_NAMES`; weight 0 disables one). Each episode starts with between `min_faults` and
    `max_faults` distinct faults (by default 0 in 22% of episodes, 1 in 33%, 2, 3 and 4 in the rest:
    `FAULT_COUNT_WEIGHTS`); each step a healthy part of the cluster fails with probability
    `new_fault_rate` (at most `max_faults` at a time), and each fault left alone sets off its follow-on
    fault with probability `cascade_chance` (see `rl.faults`). A share `read_only_share` of episodes
    is read-only: remedies answer as dry runs and WAIT ends the episode with the agent's diagnosis. A
    share `metrics_share` of clusters runs metrics-server (the others answer `top` with "unavailable").
    `background` scales the chance of the benign findings real clusters show (PodDisruptionBudgets
    that allow no disruption, suspended CronJobs, old restarts' error logs, a node cordoned for planned
    maintenance, ...): 0 gives spotless clusters.
    """

    min_nodes: int = 3
    max_nodes: int = MAX_NODES
    min_pods_per_node: int = 10
    max_pods_per_node: int = 110
    min_deployments: int = 3
    max_deployments: int = MAX_DEPLOYMENTS
    min_replicas: int = 2
    max_replicas: int = 6
    min_load: float = 0.3
    max_load: float = 0.7
    min_faults: int = 0
    max_faults: int = MAX_FAULTS
    new_fault_rate: float = 0.005
    cascade_chance: float = 0.15
    max_steps: int = 100
    read_only_share: float = 0.25
    metrics_share: float = 0.85
    background: float = 1.0
    fault_weights: dict = field(default_factory=lambda: dict(DEFAULT_FAULT_WEIGHTS))

    def __post_init__(self):
        for name in (
            "min_nodes",
            "max_nodes",
            "min_pods_per_node",
            "max_pods_per_node",
            "min_deployments",
            "max_deployments",
            "min_replicas",
            "max_replicas",
            "min_faults",
            "max_faults",
            "max_steps",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}: must be an integer, got {value!r}")
        for name in (
            "min_load",
            "max_load",
            "new_fault_rate",
            "cascade_chance",
            "read_only_share",
            "metrics_share",
            "background",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise ValueError(f"{name}: must be a number, got {value!r}")
        _check_range("nodes", self.min_nodes, self.max_nodes, MIN_NODES, MAX_NODES)
        _check_range("pods_per_node", self.min_pods_per_node, self.max_pods_per_node, 1, MAX_PODS_PER_NODE)
        _check_range("deployments", self.min_deployments, self.max_deployments, MIN_DEPLOYMENTS, MAX_DEPLOYMENTS)
        _check_range("replicas", self.min_replicas, self.max_replicas, 1, MAX_REPLICAS)
        _check_range("load", self.min_load, self.max_load, 0.0, 0.9)
        _check_range("faults", self.min_faults, self.max_faults, 0, MAX_FAULTS)
        for name, high in (
            ("new_fault_rate", 0.5),
            ("cascade_chance", 1.0),
            ("read_only_share", 1.0),
            ("metrics_share", 1.0),
            ("background", 4.0),
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= high:
                raise ValueError(f"{name}: must be between 0 and {high:g}, got {value}")
        if not 1 <= self.max_steps <= 10_000:
            raise ValueError(f"max_steps: must be between 1 and 10000, got {self.max_steps}")
        if not isinstance(self.fault_weights, dict):
            raise ValueError("fault_weights: must be a mapping of fault name to weight")
        for name, weight in self.fault_weights.items():
            if name not in FAULT_NAMES or Fault[name.upper()] in INDUCED_ONLY:
                allowed = ", ".join(sorted(Fault(f).name.lower() for f in INJECTABLE))
                raise ValueError(f"fault_weights.{name}: unknown fault (known: {allowed})")
            if (
                isinstance(weight, bool)
                or not isinstance(weight, int | float)
                or not weight >= 0
                or weight == float("inf")
            ):
                raise ValueError(f"fault_weights.{name}: must be a finite number >= 0, got {weight!r}")
        if self.max_faults > 0 and sum(self.fault_weights.values()) <= 0:
            raise ValueError("fault_weights: at least one fault needs a positive weight")

    @classmethod
    def from_dict(cls, values: dict) -> "ScenarioConfig":
        """Build from a plain mapping (a job spec or config file); unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ValueError(f"{key}: unknown scenario setting (known: {', '.join(sorted(known))})")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_range(name, low, high, lowest, highest):
    if not lowest <= low <= highest:
        raise ValueError(f"min_{name}: must be between {lowest} and {highest}, got {low}")
    if not lowest <= high <= highest:
        raise ValueError(f"max_{name}: must be between {lowest} and {highest}, got {high}")
    if low > high:
        raise ValueError(f"min_{name}: must not exceed max_{name} ({low} > {high})")
