"""Train a cluster agent with PufferLib's PuffeRL on thousands of simulated clusters.

The loop reads top to bottom: build the vectorized simulator, the policy and the trainer, then
alternate `evaluate()` (collect a batch of experience) and `train()` (PPO updates on it) until
the step budget is spent or the caller asks to stop, checkpointing every few minutes.
"""

import math
import os
import signal
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pufferlib
import pufferlib.vector
import torch

from rl.model import ModelError, atomic_torch_save, build_policy, check_architecture
from rl.puffer_env import ClusterPufferEnv
from rl.sim.scenario import ScenarioConfig

with warnings.catch_warnings():
    # Importing pufferl turns every RuntimeWarning into an error process-wide, and replaces the
    # SIGINT handler with os._exit(0). Undo both: we checkpoint on signals ourselves.
    _sigint = signal.getsignal(signal.SIGINT)
    import pufferlib.pufferl as pufferl
warnings.filterwarnings("default", category=RuntimeWarning)
if _sigint is not None:
    try:
        signal.signal(signal.SIGINT, _sigint)
    except ValueError:  # not the main thread: the handler pufferl installed was not either
        pass

CHECKPOINT_FORMAT = "cluster-code-rl/checkpoint"

# cluster-code's `pufferlib.trainingConfig` keys (config.json, job specs) and the settings they set.
TRAINING_CONFIG_KEYS = {
    "learningRate": "learning_rate",
    "batchSize": "minibatch_size",
    "numEpochs": "num_epochs",
    "gamma": "gamma",
    "numEnvs": "num_envs",
    "numSteps": "num_steps",
    "clipRange": "clip_range",
    "valueCoefficient": "value_coefficient",
    "entropyCoefficient": "entropy_coefficient",
    "maxGradNorm": "max_grad_norm",
    "hiddenSize": "hidden_size",
    "numLayers": "num_layers",
}


@dataclass
class TrainConfig:
    """Everything that decides a training run. Defaults are tuned for a 2-core CPU."""

    total_steps: int = 10_240_000
    num_envs: int = 1024  # simulated clusters stepped together
    num_steps: int = 32  # steps per cluster in each batch (the rollout horizon)
    seed: int = 0
    device: str = "cpu"
    learning_rate: float = 0.003
    num_epochs: int = 2  # passes over each batch
    minibatch_size: int = 8192
    gamma: float = 0.97
    gae_lambda: float = 0.9
    clip_range: float = 0.2
    value_coefficient: float = 0.5
    entropy_coefficient: float = 0.005
    max_grad_norm: float = 0.5
    hidden_size: int = 64
    num_layers: int = 2
    lstm: bool = True  # memory of what was already checked
    checkpoint_interval: float = 300.0  # seconds between checkpoints
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)

    def __post_init__(self):
        positive_ints = (
            "total_steps",
            "num_envs",
            "num_steps",
            "num_epochs",
            "minibatch_size",
            "hidden_size",
            "num_layers",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        for name in (
            "learning_rate",
            "clip_range",
            "max_grad_norm",
            "checkpoint_interval",
            "value_coefficient",
            "entropy_coefficient",
            "gamma",
            "gae_lambda",
        ):
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name}: must be a finite number, got {value!r}")
        for name in ("learning_rate", "clip_range", "max_grad_norm", "checkpoint_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        for name in ("value_coefficient", "entropy_coefficient"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name}: must be a number >= 0, got {value!r}")
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise ValueError(f"{name}: must be in (0, 1], got {value!r}")
        try:
            check_architecture(self.hidden_size, self.num_layers)
        except ValueError as err:
            raise ValueError(str(err)) from None
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


@dataclass
class TrainResult:
    policy: "torch.nn.Module"
    global_step: int
    epoch: int
    elapsed: float
    metrics: dict
    stopped: bool  # True when should_stop() ended the run early (a checkpoint was written)
    checkpoint: Path | None


class _QuietPuffeRL(pufferl.PuffeRL):
    """PuffeRL without its full-screen dashboard and its own checkpoint files: the CLI renders
    progress itself, and `train` writes checkpoints that include the optimizer state."""

    def print_dashboard(self, *args, **kwargs):
        pass

    def save_checkpoint(self):
        return None


class _StatsLogger:
    """The logger PuffeRL calls; keeps the latest stats and mirrors them to TensorBoard."""

    def __init__(self, run_id: str, tensorboard_dir: Path | None):
        self.run_id = run_id
        self.latest: dict = {}
        self.writer = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(tensorboard_dir))

    def log(self, logs: dict, step: int):
        self.latest = dict(logs)
        if self.writer is not None:
            for key, value in logs.items():
                if isinstance(value, int | float) and np.isfinite(value):
                    self.writer.add_scalar(key, value, step)

    def close(self, model_path=None):
        if self.writer is not None:
            self.writer.close()


def puffer_config(config: TrainConfig) -> dict:
    """The flat dict PuffeRL reads, from our config."""
    return {
        "env": "cluster-code-rl",
        "seed": config.seed,
        "torch_deterministic": True,
        "device": config.device,
        "cpu_offload": False,
        "batch_size": config.batch_size,
        "bptt_horizon": config.num_steps,
        "minibatch_size": config.minibatch_size,
        "max_minibatch_size": config.minibatch_size,
        "update_epochs": config.num_epochs,
        "compile": False,
        "compile_mode": "default",
        "compile_fullgraph": False,
        "optimizer": "adam",
        "learning_rate": config.learning_rate,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_eps": 1e-8,
        "total_timesteps": config.total_steps,
        "precision": "float32",
        "use_rnn": config.lstm,
        "prio_beta0": 1.0,
        "prio_alpha": 0.0,
        "clip_coef": config.clip_range,
        "vf_clip_coef": config.clip_range,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "vtrace_rho_clip": 1.0,
        "vtrace_c_clip": 1.0,
        "vf_coef": config.value_coefficient,
        "ent_coef": config.entropy_coefficient,
        "max_grad_norm": config.max_grad_norm,
        "anneal_lr": True,
        "checkpoint_interval": 1 << 30,
        "data_dir": tempfile.gettempdir(),
    }


def train(
    config: TrainConfig,
    run_id: str,
    checkpoint_dir: Path | None = None,
    tensorboard_dir: Path | None = None,
    resume_from: Path | None = None,
    on_progress: Callable[[dict], None] | None = None,
    on_checkpoint: Callable[[Path, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_resumed: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train until `config.total_steps` agent steps, or until `should_stop()` returns True.

    `on_progress` gets a metrics dict after every PPO update. A checkpoint (policy, optimizer,
    scheduler, step counters, RNG states, config) is written to `checkpoint_dir` every
    `config.checkpoint_interval` seconds and when stopped early; `on_checkpoint` is told of each.
    """
    checkpoint_payload = None
    if resume_from is not None:  # refuse an incompatible checkpoint before starting anything
        checkpoint_payload = read_checkpoint(resume_from)
        check_resumable(checkpoint_payload, resume_from, config)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    if config.device == "cpu":
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

    vecenv = pufferlib.vector.make(
        ClusterPufferEnv,
        backend=pufferlib.vector.Serial,
        num_envs=1,
        seed=config.seed,
        env_kwargs={"num_envs": config.num_envs, "scenario": config.scenario},
    )
    env = vecenv.envs[0]
    policy = build_policy(config.hidden_size, config.num_layers, config.lstm).to(config.device)
    logger = _StatsLogger(run_id, tensorboard_dir)
    with warnings.catch_warnings():
        # PuffeRL sets up float32 autocast even on CPU, where torch warns that it does nothing.
        warnings.filterwarnings("ignore", message=".*CPU [Aa]utocast")
        trainer = _QuietPuffeRL(puffer_config(config), vecenv, policy, logger)
    start_step = 0
    start = time.monotonic()
    last_checkpoint = start
    checkpoint = None
    stopped = False
    metrics: dict = {}
    try:  # from here on the trainer runs a utilization thread: the finally below stops it
        if checkpoint_payload is not None:
            start_step = _restore(trainer, env, checkpoint_payload)
            if on_resumed is not None:
                on_resumed(start_step)
            start = last_checkpoint = time.monotonic()
        while trainer.global_step < config.total_steps:
            trainer.evaluate()
            trainer.train()
            metrics = _metrics(trainer, env, logger, start, start_step)
            if on_progress is not None:
                on_progress(metrics)
            stopping = should_stop is not None and should_stop()
            due = time.monotonic() - last_checkpoint >= config.checkpoint_interval
            if checkpoint_dir is not None and (stopping or due):
                checkpoint = save_checkpoint(trainer, env, config, run_id, checkpoint_dir)
                last_checkpoint = time.monotonic()
                if on_checkpoint is not None:
                    on_checkpoint(checkpoint, metrics)
            if stopping:
                stopped = True
                break
    finally:
        trainer.utilization.stop()
        vecenv.close()
        logger.close()

    return TrainResult(
        policy=trainer.uncompiled_policy.cpu().eval(),
        global_step=int(trainer.global_step),
        epoch=int(trainer.epoch),
        elapsed=time.monotonic() - start,
        metrics=metrics,
        stopped=stopped,
        checkpoint=checkpoint,
    )


def _metrics(trainer, env, logger, start: float, start_step: int) -> dict:
    stats = logger.latest
    elapsed = time.monotonic() - start
    steps_here = trainer.global_step - start_step
    return {
        "global_step": int(trainer.global_step),
        "epoch": int(trainer.epoch),
        "sps": round(steps_here / elapsed, 1) if elapsed > 0 else 0.0,
        "episodes": int(env.episodes_total),
        "mean_return": _stat(stats, "environment/episode_return"),
        "resolution_rate": _stat(stats, "environment/resolution_rate"),
        "mean_episode_length": _stat(stats, "environment/episode_length"),
        "harmful_actions": _stat(stats, "environment/harmful_actions"),
        "policy_loss": _stat(stats, "losses/policy_loss"),
        "value_loss": _stat(stats, "losses/value_loss"),
        "entropy": _stat(stats, "losses/entropy"),
        "elapsed": round(elapsed, 2),
    }


def _stat(stats: dict, key: str):
    value = stats.get(key)
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 4)


def save_checkpoint(trainer, env, config: TrainConfig, run_id: str, checkpoint_dir: Path) -> Path:
    """Write everything needed to continue this run, atomically; return the file's path."""
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "run_id": run_id,
        "global_step": int(trainer.global_step),
        "epoch": int(trainer.epoch),
        "policy": {k: v.detach().cpu() for k, v in trainer.uncompiled_policy.state_dict().items()},
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "sim_rng": torch.from_numpy(env.batch.rng.view(np.int64).copy()),
        "episodes_total": int(env.episodes_total),
        "config": config.to_dict(),
    }
    path = atomic_torch_save(payload, checkpoint_dir / f"checkpoint_{trainer.global_step:012d}.pt")
    for old in sorted(checkpoint_dir.glob("checkpoint_*.pt"))[:-2]:  # keep the last two
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    found = sorted(Path(checkpoint_dir).glob("checkpoint_*.pt"))
    return found[-1] if found else None


def read_checkpoint(path: Path) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"{path}: not a readable checkpoint (truncated or corrupt): {type(err).__name__}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not a cluster-code-rl checkpoint")
    return payload


def check_resumable(payload: dict, path: Path, config: TrainConfig) -> None:
    """Raise ModelError unless the checkpoint was made with the settings that shape its tensors."""
    saved = payload.get("config")
    if not isinstance(saved, dict):
        raise ModelError(f"{path}: checkpoint does not record its training settings")
    for key in ("num_envs", "num_steps", "hidden_size", "num_layers", "lstm"):
        if saved.get(key) != getattr(config, key):
            raise ModelError(
                f"{path}: checkpoint was made with {key}={saved.get(key)}, "
                f"this run has {getattr(config, key)}; resume with the same settings"
            )


def _restore(trainer, env, payload: dict) -> int:
    try:
        trainer.uncompiled_policy.load_state_dict(payload["policy"])
        trainer.optimizer.load_state_dict(payload["optimizer"])
        trainer.scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["torch_rng"])
        env.batch.rng[:] = payload["sim_rng"].numpy().view(np.uint64)
        env.batch.reset(env.observations)  # clusters start fresh episodes from the saved streams
        env.episodes_total = int(payload["episodes_total"])
        trainer.global_step = int(payload["global_step"])
        trainer.epoch = int(payload["epoch"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"checkpoint of run {payload.get('run_id')!r} does not fit this run: {reason}") from None
    return trainer.global_step
