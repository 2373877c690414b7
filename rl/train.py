"""Train a cluster agent with PufferLib's PuffeRL on thousands of simulated clusters.

The loop reads top to bottom: build the vectorized simulator, the policy and the trainer, then
alternate `evaluate()` (collect a batch of experience) and `train()` (PPO updates on it) until
the step budget is spent or the caller asks to stop, checkpointing every few minutes.
"""

import os
import signal
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pufferlib
import pufferlib.vector
import torch

from rl.model import ModelError, atomic_torch_save, build_policy
from rl.puffer_env import ClusterPufferEnv
from rl.train_config import TRAINING_CONFIG_KEYS, TrainConfig, training_settings

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
__all__ = ["TRAINING_CONFIG_KEYS", "TrainConfig", "TrainResult", "train", "training_settings"]


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
