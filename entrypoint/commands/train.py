"""`cluster-rl train`: train an agent with PufferLib's PuffeRL on simulated clusters."""

import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import typer

from entrypoint.errors import CliError, ExitCode

DEFAULT_EPISODES = 100
DEFAULT_STEPS = 100
MODEL_FILE = "cluster_agent.pt"


@dataclass
class TrainOptions:
    """One training run as the user asked for it, from flags or a TrainJob spec."""

    episodes: int = DEFAULT_EPISODES
    steps: int = DEFAULT_STEPS
    total_steps: int | None = None
    seed: int = 0
    device: str = "auto"
    num_envs: int | None = None
    output: str | None = None  # local directory or s3://bucket/prefix/
    run_name: str | None = None
    resume: bool = False
    checkpoint_interval: float = 300.0
    verbose: bool = False
    training: dict = field(default_factory=dict)  # camelCase trainingConfig keys from a spec
    scenario: object | None = None  # a ScenarioConfig from a spec; None: defaults with max_steps=steps
    simulation: bool = True  # False: size the simulated clusters after the real one first
    context: str | None = None
    namespaces: list[str] | None = None
    kubeconfig: str | None = None


def train(
    episodes: Annotated[
        int | None,
        typer.Option(
            "--episodes",
            "-e",
            min=1,
            help="Training budget in episodes per simulated cluster: total steps = episodes x steps x num-envs.  [default: 100]",
            show_default=False,
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            "-s",
            min=1,
            max=10_000,
            help="Steps per episode (the step budget the agent gets to resolve a cluster).  [default: 100]",
            show_default=False,
        ),
    ] = None,
    no_simulation: Annotated[
        bool,
        typer.Option(
            "--no-simulation", help="Read the real cluster (read-only) and train on simulated clusters of its size."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More detail: losses in progress lines, resolved settings at start.")
    ] = False,
    total_steps: Annotated[
        int | None,
        typer.Option(
            "--total-steps",
            min=1,
            help="Agent steps to train for; overrides episodes x steps x num-envs. Rounded up to whole batches of num-envs x 32.",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", min=0, help="Random seed for the simulator and the network.  [default: 0]", show_default=False
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="auto, cpu or cuda. auto takes a GPU when torch can use one.  [default: auto]",
            show_default=False,
        ),
    ] = None,
    num_envs: Annotated[
        int | None,
        typer.Option(
            "--num-envs",
            min=1,
            max=65536,
            help="Simulated clusters stepped in parallel.  [default: 1024]",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Directory or s3://bucket/prefix/ for the model.  [default: $CLUSTER_CODE_HOME/models]",
            show_default=False,
        ),
    ] = None,
    run_name: Annotated[
        str | None,
        typer.Option("--run-name", help="Name of this run (checkpoints, TensorBoard, S3 keys); --resume continues it."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the newest checkpoint of --run-name (local, or from S3 with an s3:// --output)."
        ),
    ] = False,
    checkpoint_interval: Annotated[
        float | None,
        typer.Option(
            "--checkpoint-interval", min=1, help="Seconds between checkpoints.  [default: 300]", show_default=False
        ),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context for --no-simulation.")] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace to read with --no-simulation; repeatable. [default: all]",
            show_default=False,
        ),
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="A TrainJob spec file; flags given here override it.")
    ] = None,
) -> int:
    """Train an agent on thousands of simulated clusters with PufferLib's PuffeRL trainer.

    The budget is episodes x steps x num-envs agent steps (100 x 100 x 1024 by default, about
    10 million, under three minutes on two CPU cores); --total-steps sets it directly. The model goes to
    $CLUSTER_CODE_HOME/models/cluster_agent.pt unless --output says otherwise. On a terminal a
    live view shows progress; otherwise each line on stdout is a JSON event (start, progress,
    checkpoint, done). SIGTERM or Ctrl-C writes a checkpoint and exits with 75; --resume continues.
    """
    opts = TrainOptions()
    if job is not None:
        opts = options_from_job(_load_job(job, "TrainJob"))
    given = {
        "episodes": episodes,
        "steps": steps,
        "total_steps": total_steps,
        "seed": seed,
        "device": device,
        "num_envs": num_envs,
        "output": output,
        "run_name": run_name,
        "checkpoint_interval": checkpoint_interval,
        "context": context,
        "namespaces": namespace,
    }
    opts = replace(opts, **{k: v for k, v in given.items() if v is not None})
    if steps is not None and job is not None and opts.scenario is not None:
        opts.scenario = replace(opts.scenario, max_steps=steps)
    opts.resume = opts.resume or resume
    opts.verbose = verbose
    if no_simulation:
        opts.simulation = False
    return execute_training(opts)


def run_train_job(job) -> int:
    """Run a validated TrainJob (from `cluster-rl run`)."""
    return execute_training(options_from_job(job))


def options_from_job(job) -> TrainOptions:
    from entrypoint.jobspec import SpecError, cluster_target, scenario_config, training_overrides

    spec = job.spec
    try:
        scenario = scenario_config(spec)
    except SpecError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    return TrainOptions(
        episodes=spec.episodes or DEFAULT_EPISODES,
        steps=spec.steps or scenario.max_steps,
        total_steps=spec.total_steps,
        seed=spec.seed if spec.seed is not None else 0,
        device=spec.device,
        output=spec.output,
        run_name=job.metadata.name,
        resume=spec.resume == "auto",
        checkpoint_interval=float(spec.checkpoint_interval),
        training=training_overrides(spec),
        scenario=scenario,
        simulation=spec.mode == "simulation",
        **cluster_target(spec),
    )


def _load_job(path: str, kind: str):
    from entrypoint.jobspec import SpecError, load_job

    try:
        loaded = load_job(path)
    except SpecError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if loaded.kind != kind:
        raise CliError(f"{path}: kind: expected {kind} here, got {loaded.kind}", ExitCode.USAGE)
    return loaded


# ---------------------------------------------------------------------------------------------


def execute_training(opts: TrainOptions) -> int:
    """Validate everything, then train; returns the exit code."""
    from entrypoint import home
    from entrypoint.config_file import training_config_overrides
    from entrypoint.names import check_name
    from entrypoint.storage import is_s3_uri

    if opts.device not in ("auto", "cpu", "cuda"):
        raise CliError(f"--device: must be auto, cpu or cuda, got {opts.device!r}", ExitCode.USAGE)
    if opts.resume and not opts.run_name:
        raise CliError("--resume needs --run-name: the run whose checkpoint to continue", ExitCode.USAGE)
    run_id = opts.run_name or time.strftime("train-%Y%m%d-%H%M%S", time.gmtime())
    try:
        check_name(run_id, "--run-name")
    except ValueError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    output = opts.output or str(home.models_dir())
    s3_output = is_s3_uri(output)
    if not s3_output:
        output = str(_writable_directory(Path(output).expanduser().resolve()))
    if s3_output:
        from entrypoint.storage import StorageError, parse_s3_uri

        try:
            parse_s3_uri(output)
        except StorageError as err:
            raise CliError(str(err), ExitCode.USAGE) from None

    config = _train_config(opts, training_config_overrides(home.cluster_code_home()))
    device = _resolve_device(opts.device)
    config = replace(config, device=device)

    from entrypoint.progress import make_reporter

    reporter = make_reporter(config.total_steps, verbose=opts.verbose)
    try:
        return _run(opts, config, run_id, output, s3_output, reporter)
    finally:
        reporter.close()


def _writable_directory(path: Path) -> Path:
    """Create the output directory now, so a bad --output fails before training, not after it."""
    import os

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"--output: cannot create directory {path}: {err.strerror or err}", ExitCode.STORAGE) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CliError(f"--output: directory {path} is not writable", ExitCode.STORAGE)
    return path


def _train_config(opts: TrainOptions, user_training: dict):
    from rl.sim.scenario import ScenarioConfig
    from rl.train import TrainConfig

    try:
        scenario = opts.scenario or ScenarioConfig(max_steps=opts.steps)
        config = TrainConfig(seed=opts.seed, checkpoint_interval=opts.checkpoint_interval, scenario=scenario)
        config = config.with_training_config({**user_training, **opts.training})
        if opts.num_envs is not None:
            config = replace(config, num_envs=opts.num_envs)
        total = opts.total_steps or opts.episodes * scenario.max_steps * config.num_envs
        batches = max(1, -(-total // config.batch_size))  # PuffeRL trains on whole batches
        return replace(config, total_steps=batches * config.batch_size)
    except ValueError as err:
        raise CliError(f"training settings: {err}", ExitCode.USAGE) from None


def _resolve_device(requested: str) -> str:
    from entrypoint.gpu import DeviceError, resolve_device, torch_cuda_status

    if requested == "cpu":
        return "cpu"
    torch_status = torch_cuda_status()
    try:
        device = resolve_device(requested, torch_status=torch_status)
    except DeviceError as err:
        raise CliError(str(err), ExitCode.DEVICE) from None
    if requested == "auto" and device == "cpu" and torch_status.cuda_build:
        # A CUDA build on a node without a usable GPU (the CUDA image without --gpus, say): say so.
        typer.echo(
            f"warning: --device auto: torch {torch_status.torch_version} is a CUDA {torch_status.cuda_version} "
            "build but no GPU is usable here; training on the CPU",
            err=True,
        )
    return device


class _StopFlag:
    """Set by SIGTERM/SIGINT: the trainer checkpoints at the end of its current update and exits."""

    def __init__(self):
        self.signal: str | None = None
        self._previous = {}

    def __call__(self) -> bool:
        return self.signal is not None

    def install(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signal.Signals(signum).name


def _run(opts: TrainOptions, config, run_id: str, output: str, s3_output: bool, reporter) -> int:
    from entrypoint import home
    from entrypoint.storage import StorageError, publish_model, upload_checkpoint
    from rl.model import ModelError, save_model
    from rl.train import train

    if not opts.simulation:
        config = replace(config, scenario=_scenario_from_cluster(opts, config.scenario, reporter))
    checkpoint_dir = home.checkpoints_dir() / run_id
    resume_from = _find_checkpoint(opts, run_id, output, s3_output, checkpoint_dir) if opts.resume else None
    if resume_from is not None and _finished(resume_from, config.total_steps):
        reporter.event(
            "fresh", reason=f"the newest checkpoint of {run_id} finished its run", checkpoint=str(resume_from)
        )
        resume_from = None
    if not opts.resume and checkpoint_dir.exists():
        for stale in checkpoint_dir.glob("checkpoint_*.pt"):  # a fresh run must not resume old state later
            stale.unlink()

    start_fields = {
        "run_id": run_id,
        "total_steps": config.total_steps,
        "num_envs": config.num_envs,
        "device": config.device,
        "seed": config.seed,
        "output": output,
    }
    if opts.verbose:
        start_fields["config"] = config.to_dict()
    reporter.event("start", **start_fields)

    def on_checkpoint(path: Path, metrics: dict):
        location = str(path)
        if s3_output:
            try:
                location = upload_checkpoint(path, output, run_id)
            except StorageError as err:
                reporter.event("warning", message=f"checkpoint kept locally, upload failed: {err}")
        reporter.event("checkpoint", path=location, global_step=metrics.get("global_step"))

    stop = _StopFlag()
    stop.install()
    try:
        if resume_from is not None:
            reporter.event("resuming", checkpoint=str(resume_from))
        result = train(
            config,
            run_id=run_id,
            checkpoint_dir=checkpoint_dir,
            tensorboard_dir=home.runs_dir() / run_id,
            resume_from=resume_from,
            on_progress=reporter.progress,
            on_checkpoint=on_checkpoint,
            should_stop=stop,
            on_resumed=lambda step: reporter.event("resumed", global_step=step),
        )
    except ModelError as err:
        raise CliError(str(err), ExitCode.MODEL) from None
    finally:
        stop.restore()

    if result.stopped:
        reporter.event(
            "stopped",
            signal=stop.signal,
            global_step=result.global_step,
            checkpoint=str(result.checkpoint) if result.checkpoint else None,
            resume=f"cluster-rl train --resume --run-name {run_id}",
        )
        return int(ExitCode.STOPPED)

    evaluation = _evaluate(result.policy, config)
    metadata = {
        "global_step": result.global_step,
        "seed": config.seed,
        "run_id": run_id,
        "training": config.to_dict(),
        "metrics": {**result.metrics, "evaluation": evaluation},
    }
    if s3_output:
        local = home.models_dir() / run_id / MODEL_FILE
        save_model(local, result.policy, metadata)
        try:
            model_location = publish_model(local, output, run_id)
        except StorageError as err:
            raise CliError(f"{err} (the model is kept at {local})", ExitCode.STORAGE) from None
    else:
        try:
            model_location = str(save_model(Path(output) / MODEL_FILE, result.policy, metadata))
        except OSError as err:
            raise CliError(f"cannot write the model to {output}: {err.strerror or err}", ExitCode.STORAGE) from None
    for finished in checkpoint_dir.glob("checkpoint_*.pt"):  # the run is complete: nothing to resume
        finished.unlink()
    reporter.progress(result.metrics, force=True)
    reporter.event(
        "done",
        model=model_location,
        run_id=run_id,
        global_step=result.global_step,
        elapsed=round(result.elapsed, 1),
        metrics=result.metrics,
        evaluation=evaluation,
    )
    return int(ExitCode.OK)


def _find_checkpoint(opts: TrainOptions, run_id: str, output: str, s3_output: bool, checkpoint_dir: Path):
    from rl.train import latest_checkpoint

    found = latest_checkpoint(checkpoint_dir) if checkpoint_dir.exists() else None
    if found is None and s3_output:
        from entrypoint.storage import StorageError
        from entrypoint.storage import latest_checkpoint as latest_s3_checkpoint

        try:
            found = latest_s3_checkpoint(output, run_id, checkpoint_dir)
        except StorageError as err:
            raise CliError(str(err), ExitCode.STORAGE) from None
    return found


def _finished(checkpoint: Path, total_steps: int) -> bool:
    """A checkpoint at or past the budget is a completed run (a nightly job starts anew)."""
    from rl.model import ModelError
    from rl.train import read_checkpoint

    try:
        return read_checkpoint(checkpoint)["global_step"] >= total_steps
    except ModelError as err:
        raise CliError(str(err), ExitCode.MODEL) from None


def _evaluate(policy, config) -> dict:
    """A quick greedy check on seeds training never used, for the log and the model file."""
    from rl.evaluate import evaluate_policy
    from rl.model import ModelPolicy

    result = evaluate_policy(ModelPolicy(policy), 500, 2_000_000_000 + config.seed, config.scenario)
    return {k: v for k, v in result.to_dict().items() if k != "policy"} | {"episodes": 500}


def _scenario_from_cluster(opts: TrainOptions, scenario, reporter):
    """Simulated clusters sized like the real one (read once, read-only), the faults as configured."""
    from rl.kube import KubeBackend, KubeError

    try:
        backend = KubeBackend(context=opts.context, namespaces=opts.namespaces, kubeconfig=opts.kubeconfig)
        try:
            seen = backend.observe()
        finally:
            backend.close()
    except KubeError as err:
        raise CliError(str(err), ExitCode.CLUSTER) from None
    state = seen.state
    nodes = max(3, state.num_nodes)
    deployments = max(3, state.num_deployments)
    replicas = max(1, round(state.num_pods / deployments)) if state.num_pods else 2
    sized = replace(
        scenario,
        min_nodes=max(3, nodes // 2),
        max_nodes=min(100, max(nodes * 2, 4)),
        min_deployments=max(1, deployments // 2),
        max_deployments=min(100, max(deployments * 2, 4)),
        min_replicas=max(1, replicas // 2),
        max_replicas=min(20, max(replicas * 2, 2)),
    )
    if sized.max_replicas * sized.max_deployments > 1000:
        sized = replace(sized, max_replicas=max(sized.min_replicas, 1000 // sized.max_deployments))
    reporter.event(
        "cluster",
        nodes=state.num_nodes,
        deployments=state.num_deployments,
        pods=state.num_pods,
        degraded=list(seen.degraded),
        scenario={
            k: getattr(sized, k)
            for k in ("min_nodes", "max_nodes", "min_deployments", "max_deployments", "min_replicas", "max_replicas")
        },
    )
    return sized
