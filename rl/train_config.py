"""`TrainConfig`: every setting of a training run, each declared once with its bounds.

Light to import (no torch): job specs and config.json checks build their schemas from it.
"""

import math
from dataclasses import asdict, dataclass, field, fields

from rl.sim.scenario import MAX_NODES, ScenarioConfig

# Bounds on the network a model file (or a training run) may describe, checked before anything is
# allocated: a file asking for millions of layers is refused, not built until memory runs out.
MAX_HIDDEN_SIZE = 8192
MAX_NUM_LAYERS = 32


def training_scenario(**overrides) -> ScenarioConfig:
    """The clusters training draws by default: the default scenario, but over every size the
    simulator supports (3 to 1,000 nodes, log-uniform), so that the agent has met every size it may
    be asked to diagnose; the default scenario (3 to 500) is what evaluation draws."""
    return ScenarioConfig(**{"max_nodes": MAX_NODES, **overrides})


def setting(default, key: str | None = None, help: str = "", **bounds):
    """A TrainConfig field: `key` is its camelCase name in config.json's `pufferlib.trainingConfig`
    and in job specs (None: not settable there); `bounds` (gt, ge, le) are checked here and become
    the job spec schema's bounds, so each setting is declared once."""
    return field(default=default, metadata={"key": key, "help": help, "bounds": bounds})


@dataclass
class TrainConfig:
    """Everything that decides a training run. Defaults are tuned for a 2-core CPU."""

    total_steps: int = setting(12_288_000, ge=1)  # 120 episodes x 100 steps x 1024 clusters
    num_envs: int = setting(1024, "numEnvs", "Simulated clusters stepped in parallel.", ge=1, le=65536)
    num_steps: int = setting(32, "numSteps", "Steps per cluster in each batch (the rollout horizon).", ge=1, le=65536)
    seed: int = setting(0, ge=0, le=2**32 - 1)
    device: str = "cpu"
    learning_rate: float = setting(0.003, "learningRate", gt=0, le=1)
    num_epochs: int = setting(2, "numEpochs", "Passes over each batch.", ge=1, le=1000)
    minibatch_size: int = setting(8192, "batchSize", "Minibatch size of the PPO updates.", ge=1, le=2**24)
    gamma: float = setting(0.97, "gamma", "Discount factor.", gt=0, le=1)
    gae_lambda: float = setting(0.9, gt=0, le=1)
    clip_range: float = setting(0.2, "clipRange", gt=0, le=1)
    value_coefficient: float = setting(2.0, "valueCoefficient", ge=0, le=100)
    entropy_coefficient: float = setting(0.005, "entropyCoefficient", ge=0, le=100)
    diagnosis_coefficient: float = setting(
        1.0,
        "diagnosisCoefficient",
        "Weight of the diagnosis head's supervised loss (naming the true active faults) beside PPO's.",
        ge=0,
        le=100,
    )
    max_grad_norm: float = setting(0.5, "maxGradNorm", gt=0, le=1000)
    imitation_steps: int = setting(
        524_288,
        "imitationSteps",
        "Expert steps imitated before PPO starts (kickstarting), over all ranks, at most 1/8 of the total "
        "steps; 0 trains with PPO alone.",
        ge=0,
        le=2**26,
    )
    imitation_epochs: int = setting(4, "imitationEpochs", "Passes over the expert's steps.", ge=1, le=1000)
    imitation_rounds: int = setting(
        3,
        "imitationRounds",
        "Rounds of imitation: the first on the expert's episodes, the others on the network's own, the "
        "expert saying what it would have done.",
        ge=1,
        le=100,
    )
    hidden_size: int = setting(128, "hiddenSize", "Width of the network.", ge=1, le=MAX_HIDDEN_SIZE)
    num_layers: int = setting(2, "numLayers", "Hidden layers of the encoder.", ge=1, le=MAX_NUM_LAYERS)
    # An LSTM between encoder and heads. Off by default: the input itself says which reads are fresh
    # and what was done this episode (`rl.agent_input`), and the MLP trains several times faster.
    lstm: bool = False
    checkpoint_interval: float = setting(300.0, gt=0, le=86_400)  # seconds between checkpoints
    scenario: ScenarioConfig = field(default_factory=training_scenario)

    def __post_init__(self):
        for f in fields(self):
            if "bounds" in f.metadata:
                check_setting(f.name, getattr(self, f.name), f.type, f.metadata["bounds"])
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device: must be cpu or cuda, got {self.device!r}")
        if self.batch_size < self.minibatch_size:
            self.minibatch_size = self.batch_size
        if self.minibatch_size % self.num_steps:
            raise ValueError(f"minibatch_size: must be a multiple of num_steps ({self.num_steps})")
        if self.batch_size % self.minibatch_size:
            raise ValueError(f"minibatch_size: must divide num_envs * num_steps ({self.batch_size})")
        if self.total_steps < self.batch_size:
            raise ValueError(f"total_steps: must be at least one batch, num_envs * num_steps ({self.batch_size})")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scenario"] = self.scenario.to_dict()
        return d

    def with_training_config(self, training: dict) -> "TrainConfig":
        """A copy with cluster-code's camelCase `trainingConfig` keys applied.

        Unknown keys and invalid values raise ValueError naming the camelCase key.
        """
        if not isinstance(training, dict):
            raise ValueError("trainingConfig: must be a mapping")
        values = self.to_dict()
        for key, value in training.items():
            if key not in TRAINING_CONFIG_KEYS:
                raise ValueError(f"{key}: unknown training setting (known: {', '.join(TRAINING_CONFIG_KEYS)})")
            values[TRAINING_CONFIG_KEYS[key]] = value
        try:
            return TrainConfig.from_dict(values)
        except ValueError as err:
            message = str(err)
            for camel, snake in TRAINING_CONFIG_KEYS.items():
                if message.startswith(snake + ":"):
                    message = camel + message[len(snake) :]
            raise ValueError(message) from None

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown training setting")
        values = dict(values)
        if isinstance(values.get("scenario"), dict):
            values["scenario"] = ScenarioConfig.from_dict(values["scenario"])
        return cls(**values)


# cluster-code's `pufferlib.trainingConfig` keys (config.json, job specs) and the fields they set.
TRAINING_CONFIG_KEYS = {f.metadata["key"]: f.name for f in fields(TrainConfig) if f.metadata.get("key")}


def training_settings() -> list:
    """The TrainConfig fields settable from config.json and job specs (those with a camelCase key)."""
    return [f for f in fields(TrainConfig) if f.metadata.get("key")]


def check_setting(name: str, value, kind, bounds: dict) -> None:
    """Raise ValueError("<name>: ...") unless `value` has the field's type and lies within `bounds`."""
    kind = {"int": int, "float": float}.get(kind, kind)
    low = bounds.get("gt", bounds.get("ge"))
    high = bounds.get("le")
    if kind is int:
        ok = not isinstance(value, bool) and isinstance(value, int)
        what = "a positive integer" if (low, high) == (1, None) else f"an integer in [{low}, {high}]"
    else:
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if ok and not math.isfinite(value):
            raise ValueError(f"{name}: must be a finite number, got {value!r}")
        if high is None:
            what = "a positive number" if bounds.get("gt") == 0 else f"a number >= {low}"
        else:
            what = f"in {'(' if 'gt' in bounds else '['}{low:g}, {high:g}]"
    if ok:
        ok = (
            ("gt" not in bounds or value > bounds["gt"])
            and ("ge" not in bounds or value >= bounds["ge"])
            and ("le" not in bounds or value <= bounds["le"])
        )
    if not ok:
        raise ValueError(f"{name}: must be {what}, got {value!r}")
