"""Train a cluster agent with PufferLib's PuffeRL on thousands of simulated clusters.

The loop reads top to bottom: build the vectorized simulator, the policy and the trainer, then
alternate `evaluate()` (collect a batch of experience) and `train()` (PPO updates on it) until
the step budget is spent or the caller asks to stop, checkpointing every few minutes.
"""

import signal
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pufferlib
import pufferlib.vector
import torch

from rl import distributed, imitation
from rl.distributed import World
from rl.model import ModelError, ModelPolicy, atomic_torch_save, build_policy, load_plain_data
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

    def mean_and_log(self):
        # PuffeRL logs when each rank's own clock says so, and its logging all-reduces: ranks that
        # disagree abort (gloo) or hang (NCCL). `train` reduces and logs itself after every update.
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


def puffer_config(config: TrainConfig, world: World | None = None) -> dict:
    """The flat dict PuffeRL reads, from our config: this rank's share of the envs, batch and budget."""
    world = world or World()
    local_envs, local_minibatch, local_total = distributed.shard_sizes(
        config.num_envs, config.minibatch_size, config.total_steps, config.num_steps, world.size
    )
    return {
        "env": "cluster-code-rl",
        "seed": world.sim_seed(config.seed, local_envs),
        "torch_deterministic": True,
        "device": config.device,
        "cpu_offload": False,
        "batch_size": local_envs * config.num_steps,
        "bptt_horizon": config.num_steps,
        "minibatch_size": local_minibatch,
        "max_minibatch_size": local_minibatch,
        "update_epochs": config.num_epochs,
        "compile": False,
        "compile_mode": "default",
        "compile_fullgraph": False,
        "optimizer": "adam",
        "learning_rate": config.learning_rate,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_eps": 1e-8,
        "total_timesteps": local_total,
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
    world: World | None = None,
) -> TrainResult:
    """Train until `config.total_steps` agent steps, or until `should_stop()` returns True.

    `on_progress` gets a metrics dict after every PPO update. A checkpoint (policy, optimizer,
    scheduler, step counters, RNG states, config) is written to `checkpoint_dir` every
    `config.checkpoint_interval` seconds and when stopped early; `on_checkpoint` is told of each.

    Under torchrun pass `world=World.from_env()`: every rank calls `train`; rank 0's config, run id
    and checkpoint (`resume_from` is read on rank 0 only) are used by all; only rank 0 writes
    TensorBoard and checkpoints and calls the callbacks; a stop on any rank stops all of them at
    the same update; the metrics and `global_step` are sums over the ranks.
    """
    world = world or World()
    puffer_config(config, world)  # a setting that does not divide by the world size fails here
    checkpoint_payload = None
    if resume_from is not None and world.is_main:  # refuse an incompatible checkpoint before starting anything
        checkpoint_payload = read_checkpoint(resume_from)
        check_resumable(checkpoint_payload, resume_from, config)
    distributed.setup(world, config.device)
    try:
        if world.distributed:
            shared = distributed.broadcast(
                {
                    "config": config.to_dict(),
                    "run_id": run_id,
                    "checkpoint": checkpoint_payload,
                    "checkpointing": checkpoint_dir is not None,
                },
                world,
            )
            config = replace(TrainConfig.from_dict(shared["config"]), device=config.device)
            run_id, checkpoint_payload = shared["run_id"], shared["checkpoint"]
            checkpointing = shared["checkpointing"]
        else:
            checkpointing = checkpoint_dir is not None
        return _train_loop(
            config,
            run_id,
            world,
            checkpoint_dir if checkpointing else None,
            tensorboard_dir if world.is_main else None,
            checkpoint_payload,
            on_progress if world.is_main else None,
            on_checkpoint if world.is_main else None,
            should_stop,
            on_resumed if world.is_main else None,
        )
    except (torch.distributed.DistError, RuntimeError) as err:
        if world.distributed and _is_peer_failure(err):
            raise distributed.peer_failure(err, world) from None
        raise
    finally:
        distributed.teardown(world)


# The expert's demonstrations come from clusters no PPO rollout and no evaluation seed range uses.
_IMITATION_SEED_OFFSET = 1 << 40
# Each imitation round's clusters start this far from the last's: more than any run has clusters,
# and the same whatever the number of ranks (rank r's clusters follow from `World.sim_seed`).
_ROUND_SEED_STRIDE = 1 << 32
IMITATION_SHARE = 8  # imitation takes at most 1/8 of --total-steps
# Rows per imitation minibatch (whole rollout segments of `num_steps`): smaller than PPO's, for many
# more gradient steps over the same demonstrations.
IMITATION_MINIBATCH_ROWS = 2048


def _kickstart(model, config: TrainConfig, pconfig: dict, local_envs: int, world: World, should_stop) -> dict:
    """Imitate the scripted expert before PPO: `config.imitation_steps` over all ranks, but at most
    an eighth of the run's budget, so that a short run is not mostly imitation; in
    `config.imitation_rounds` rounds, the first on the expert's episodes and the others on the
    network's own, the expert saying what it would have done (`rl.imitation`)."""
    steps = min(config.imitation_steps, config.total_steps // IMITATION_SHARE)
    rounds = config.imitation_rounds
    segments_per_env = max(1, steps // (config.num_envs * config.num_steps * rounds))

    def stop_requested() -> bool:
        # A signal cuts the imitation short; the first PPO update then checkpoints and stops. All
        # ranks decide together: a rank leaving early would leave the others in DDP's all-reduce.
        local = np.array([should_stop is not None and should_stop()], dtype=np.float64)
        return bool(distributed.all_sum(local, world, config.device)[0] > 0)

    network = getattr(model, "module", model)
    generator = torch.Generator().manual_seed(world.torch_seed(config.seed))
    data = None
    losses = {}
    for round_ in range(rounds):
        learner = None
        if round_ > 0:
            learner = ModelPolicy(network, config.device, sample=True, seed=world.torch_seed(config.seed) + round_)
            learner.context = config.num_steps
        more = imitation.demonstrations(
            local_envs,
            config.num_steps,
            segments_per_env,
            config.scenario if round_ == 0 else _harder(config.scenario),
            pconfig["seed"] + _IMITATION_SEED_OFFSET + round_ * _ROUND_SEED_STRIDE,
            config.gamma,
            stop_requested,
            learner,
        )
        network.train()
        if more is None:
            return losses
        data = more if data is None else imitation.joined(data, more)
        losses = imitation.imitate(
            model,
            data,
            config.imitation_epochs,
            max(1, min(pconfig["minibatch_size"], IMITATION_MINIBATCH_ROWS) // config.num_steps),
            config.learning_rate,
            config.value_coefficient,
            config.max_grad_norm,
            generator,
            config.device,
            stop_requested,
        )
    return losses


def _harder(scenario):
    """The scenario with at least two faults per cluster where it allows them: the rounds on the
    network's own episodes spend its mistakes where the runbook's reasoning matters most (PPO then
    trains on the scenario as it is)."""
    return replace(scenario, min_faults=max(scenario.min_faults, min(2, scenario.max_faults)))


def _is_peer_failure(err: BaseException) -> bool:
    """A collective that failed because a peer went away (not a bug of ours)."""
    if isinstance(err, torch.distributed.DistError):
        return True
    text = str(err).lower()
    return any(s in text for s in ("connection", "gloo", "nccl", "timed out", "peer", "socket", "broken pipe"))


def _train_loop(
    config: TrainConfig,
    run_id: str,
    world: World,
    checkpoint_dir: Path | None,
    tensorboard_dir: Path | None,
    checkpoint_payload: dict | None,
    on_progress,
    on_checkpoint,
    should_stop,
    on_resumed,
) -> TrainResult:
    pconfig = puffer_config(config, world)
    local_envs = pconfig["batch_size"] // config.num_steps
    torch.manual_seed(world.torch_seed(config.seed))
    np.random.seed(world.torch_seed(config.seed) % 2**32)
    if config.device == "cpu":
        torch.set_num_threads(world.cpu_threads())

    vecenv = pufferlib.vector.make(
        ClusterPufferEnv,
        backend=pufferlib.vector.Serial,
        num_envs=1,
        seed=pconfig["seed"],
        env_kwargs={"num_envs": local_envs, "scenario": config.scenario},
    )
    env = vecenv.envs[0]
    policy = build_policy(config.hidden_size, config.num_layers, config.lstm).to(config.device)
    policy.diagnosis_weight = config.diagnosis_coefficient
    env.named_source = policy.named_faults  # a WAIT counts only if the head named the human-only faults
    model = distributed.wrap(policy, world, config.device)  # DDP gives every rank rank 0's weights
    logger = _StatsLogger(run_id, tensorboard_dir)
    if checkpoint_payload is None and config.imitation_steps > 0:
        kickstart_losses = _kickstart(model, config, pconfig, local_envs, world, should_stop)
        logger.log({f"imitation/{k}": v for k, v in kickstart_losses.items()}, 0)
    with warnings.catch_warnings():
        # PuffeRL sets up float32 autocast even on CPU, where torch warns that it does nothing.
        warnings.filterwarnings("ignore", message=".*CPU [Aa]utocast")
        trainer = _QuietPuffeRL(pconfig, vecenv, model, logger)
    start_step = global_step = 0
    start = time.monotonic()
    last_checkpoint = start
    checkpoint = None
    stopped = False
    metrics: dict = {}
    try:  # from here on the trainer runs a utilization thread: the finally below stops it
        if checkpoint_payload is not None:
            start_step = global_step = _restore(trainer, env, checkpoint_payload, config, world)
            if on_resumed is not None:
                on_resumed(start_step)
            start = last_checkpoint = time.monotonic()
        while trainer.global_step < pconfig["total_timesteps"]:
            trainer.evaluate()
            episodes = _take_episode_stats(trainer)
            # PuffeRL keeps an update's losses only when it logs, which it decides by the clock.
            trainer.last_log_time = float("-inf")
            trainer.train()
            trainer.losses["diagnosis_loss"] = policy.take_diagnosis_loss()  # mean over the update
            stop_here = should_stop is not None and should_stop()
            due = world.is_main and time.monotonic() - last_checkpoint >= config.checkpoint_interval
            # One all-reduce per update on every rank: the metrics and the decisions to stop and
            # to checkpoint (rank 0's clock), so every rank takes them at the same update.
            local = np.array(
                [
                    trainer.global_step,
                    env.episodes_total,
                    *episodes,
                    *(trainer.losses.get(k, float("nan")) for k in _LOSSES),
                    stop_here,
                    due,
                ],
                dtype=np.float64,
            )
            total = distributed.all_sum(local, world, config.device)
            global_step = int(total[0])
            stopping, due = bool(total[-2]), bool(total[-1])
            metrics, losses = _metrics(trainer, total, world, metrics, start, start_step)
            logger.log(_tensorboard_scalars(metrics, losses, trainer), global_step)
            if on_progress is not None:
                on_progress(metrics)
            if checkpoint_dir is not None and (stopping or due):
                checkpoint = save_checkpoint(trainer, env, config, run_id, checkpoint_dir, world, global_step)
                last_checkpoint = time.monotonic()
                if on_checkpoint is not None and checkpoint is not None:
                    on_checkpoint(checkpoint, metrics)
            if stopping:
                # The others wait for rank 0's checkpoint: torchrun stops every worker once one exits.
                distributed.barrier(world)
                stopped = True
                break
    finally:
        trainer.utilization.stop()
        vecenv.close()
        logger.close()

    return TrainResult(
        policy=distributed.unwrap(trainer.uncompiled_policy).cpu().eval(),
        global_step=global_step,
        epoch=int(trainer.epoch),
        elapsed=time.monotonic() - start,
        metrics=metrics,
        stopped=stopped,
        checkpoint=checkpoint,
    )


_EPISODE_KEYS = ("episode_return", "episode_length", "resolution_rate", "harmful_actions")
_LOSSES = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "explained_variance", "diagnosis_loss")


def _take_episode_stats(trainer) -> list[float]:
    """This update's finished episodes from the env's reports: count, then sums of each `_EPISODE_KEYS`
    (a report holds means over `episodes` episodes), so that ranks can add them up."""
    stats, trainer.stats = trainer.stats, defaultdict(list)
    counts = np.asarray(stats.get("episodes", []), dtype=np.float64)
    sums = [float(counts.sum())]
    for key in _EPISODE_KEYS:
        values = np.asarray(stats.get(key, []), dtype=np.float64)
        sums.append(float(values @ counts) if values.shape == counts.shape and counts.size else 0.0)
    return sums


def _metrics(trainer, total: np.ndarray, world: World, previous: dict, start: float, start_step: int):
    """The progress numbers and the mean losses from one update's all-reduced vector (see `_train_loop`)."""
    global_step, episodes_total, count = int(total[0]), int(total[1]), total[2]
    elapsed = time.monotonic() - start
    steps_here = global_step - start_step
    metrics = {
        "global_step": global_step,
        "epoch": int(trainer.epoch),
        "sps": round(steps_here / elapsed, 1) if elapsed > 0 else 0.0,
        "episodes": episodes_total,
    }
    names = ("mean_return", "mean_episode_length", "resolution_rate", "harmful_actions")
    for i, name in enumerate(names):  # no episode ended in this update: keep the last numbers
        metrics[name] = _stat(total[3 + i] / count) if count > 0 else previous.get(name)
    losses = total[3 + len(names) : 3 + len(names) + len(_LOSSES)] / world.size
    for name, value in zip(_LOSSES, losses, strict=True):
        if name in ("policy_loss", "value_loss", "entropy", "diagnosis_loss"):
            metrics[name] = _stat(value)
    metrics["elapsed"] = round(elapsed, 2)
    return metrics, dict(zip(_LOSSES, losses.tolist(), strict=True))


def _tensorboard_scalars(metrics: dict, losses: dict, trainer) -> dict:
    scalars = {
        "SPS": metrics["sps"],
        "agent_steps": metrics["global_step"],
        "learning_rate": trainer.optimizer.param_groups[0]["lr"],
        "environment/episodes": metrics["episodes"],
        "environment/episode_return": metrics["mean_return"],
        "environment/episode_length": metrics["mean_episode_length"],
        "environment/resolution_rate": metrics["resolution_rate"],
        "environment/harmful_actions": metrics["harmful_actions"],
    }
    scalars.update({f"losses/{k}": v for k, v in losses.items()})
    return {k: v for k, v in scalars.items() if v is not None}


def _stat(value):
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 4)


def _rank_state(trainer, env) -> dict:
    """What differs between ranks and must survive a resume: their RNG streams and episode counts."""
    return {
        "torch_rng": torch.get_rng_state(),
        "sim_rng": torch.from_numpy(env.batch.state.rng.view(np.int64).copy()),
        "episodes_total": int(env.episodes_total),
    }


def save_checkpoint(
    trainer,
    env,
    config: TrainConfig,
    run_id: str,
    checkpoint_dir: Path,
    world: World | None = None,
    global_step: int | None = None,
) -> Path | None:
    """Write everything needed to continue this run, atomically; return the file's path.

    Under torchrun every rank calls this (it gathers their RNG states); rank 0 alone writes, and
    the others get None. The simulator streams are stored in a one-process run's order (rank r's
    clusters are r*n..(r+1)*n-1), so a checkpoint can continue at another world size.
    """
    world = world or World()
    states = distributed.gather(_rank_state(trainer, env), world)
    if not world.is_main:
        return None
    if global_step is None:
        global_step = int(trainer.global_step) * world.size
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "run_id": run_id,
        "global_step": int(global_step),
        "epoch": int(trainer.epoch),
        "policy": {k: v.detach().cpu() for k, v in distributed.unwrap(trainer.uncompiled_policy).state_dict().items()},
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "world_size": world.size,
        "torch_rng": states[0]["torch_rng"],
        "rank_torch_rng": [s["torch_rng"] for s in states],
        "sim_rng": torch.cat([s["sim_rng"] for s in states]),
        "episodes_total": sum(s["episodes_total"] for s in states),
        "config": config.to_dict(),
    }
    path = atomic_torch_save(payload, checkpoint_dir / f"checkpoint_{global_step:012d}.pt")
    for old in sorted(checkpoint_dir.glob("checkpoint_*.pt"))[:-2]:  # keep the last two
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    found = sorted(Path(checkpoint_dir).glob("checkpoint_*.pt"))
    return found[-1] if found else None


def read_checkpoint(path: Path) -> dict:
    payload = load_plain_data(path, "checkpoint")
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


def _restore(trainer, env, payload: dict, config: TrainConfig, world: World) -> int:
    """Continue from `payload` (on every rank); the global step it was taken at.

    At the world size it was written with, each rank takes back its own RNG streams. At another
    size the simulator streams are resharded (they are stored in a one-process run's order) and
    each rank's sampling stream starts afresh from its seed and the step: the run goes on, but not
    with the exact actions the original world would have sampled.
    """
    try:
        global_step = int(payload["global_step"])
        distributed.unwrap(trainer.uncompiled_policy).load_state_dict(payload["policy"])
        trainer.optimizer.load_state_dict(payload["optimizer"])
        trainer.scheduler.load_state_dict(payload["scheduler"])
        rank_rngs = payload.get("rank_torch_rng") or [payload["torch_rng"]]
        if len(rank_rngs) == world.size:
            torch.set_rng_state(rank_rngs[world.rank])
        else:
            torch.manual_seed(world.torch_seed(config.seed) + global_step)
        streams = payload["sim_rng"].numpy().view(np.uint64)
        n = env.batch.state.rng.shape[0]
        env.batch.state.rng[:] = streams[world.rank * n : (world.rank + 1) * n]
        env.restart_episodes()  # clusters start fresh episodes from the saved streams
        env.episodes_total = int(payload["episodes_total"]) if world.is_main else 0
        if global_step % world.size:
            raise ValueError(f"its step {global_step} does not divide by the world size {world.size}")
        trainer.global_step = global_step // world.size
        trainer.epoch = int(payload["epoch"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"checkpoint of run {payload.get('run_id')!r} does not fit this run: {reason}") from None
    return global_step
