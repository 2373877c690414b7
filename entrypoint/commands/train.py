"""`cluster-rl train`: train an agent with PufferLib's PuffeRL on simulated clusters.

The command reads top to bottom: `train` merges flags over a TrainJob spec into `TrainOptions`;
`prepare` checks everything that can be checked before training (flags, output, config.json,
device, the run to resume) into a `Plan`; `execute_training` then cleans up what killed runs left,
trains (`_train`), and publishes (`_publish`): the model is saved under its run before the greedy
evaluation runs, so a SIGTERM during the evaluation stops at once with the model already kept; the
evaluation then decides whether it replaces the current default (`rl.promotion`).
"""

import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import typer

from entrypoint.choices import DEFAULT_PROMOTE, Device, Promote
from entrypoint.errors import CliError, ExitCode, warn
from entrypoint.prog import prog

DEFAULT_EPISODES = 120
DEFAULT_STEPS = 100
MODEL_FILE = "cluster_agent.pt"
MAX_SEED = 2**32 - 1
EVALUATION_EPISODES = 500
EVALUATION_SEED = 2_000_000_000  # + the run's seed: clusters no training run draws
# The budget measured to pass the expert runbook with the default settings (the default budget,
# 120 x 100 x 1024, whole batches of 1024 x 32; docs/benchmarks.md: "time to pass the expert").
EXPERT_PASSING_STEPS = 12_288_000


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
    resume_or_start: bool = False  # spec `resume: auto`: with no checkpoint to continue, start the run
    checkpoint_interval: float = 300.0
    verbose: bool = False
    training: dict = field(default_factory=dict)  # camelCase trainingConfig keys from a spec
    scenario: object | None = None  # a ScenarioConfig from a spec; None: defaults with max_steps=steps
    simulation: bool = True  # False: size the simulated clusters after the real one first
    context: str | None = None
    namespaces: list[str] | None = None
    kubeconfig: str | None = None
    api_timeout: float | None = None  # seconds per API request; None: rl.kube's default
    s3_timeout: float | None = None  # seconds per S3 request, retries included; None: storage's default
    promote: str = DEFAULT_PROMOTE.value  # a Promote value


def train(
    episodes: Annotated[
        int | None,
        typer.Option(
            "--episodes",
            "-e",
            min=1,
            max=10**9,
            help="Training budget in episodes per simulated cluster: total steps = episodes x steps x num-envs.  [default: 120]",
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
            max=10**12,
            help="Agent steps to train for; overrides episodes x steps x num-envs. Rounded up to whole batches of num-envs x 32.",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            max=MAX_SEED,
            help="Random seed for the simulator and the network, 0 to 2^32-1.  [default: 0]",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        Device | None,
        typer.Option(
            "--device",
            help="auto takes a GPU when torch can use one.  [default: auto]",
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
            "--resume",
            help="Continue the newest checkpoint of --run-name (local, or from S3 with an s3:// --output); "
            "without --run-name, the one unfinished run of this home.",
        ),
    ] = False,
    checkpoint_interval: Annotated[
        float | None,
        typer.Option(
            "--checkpoint-interval",
            min=1,
            max=86_400,
            help="Seconds between checkpoints.  [default: 300]",
            show_default=False,
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
    api_timeout: Annotated[
        float | None,
        typer.Option(
            "--api-timeout",
            min=0.1,
            max=600,
            help="Connect and read timeout of each Kubernetes API request, in seconds (--no-simulation).  [default: 10]",
            show_default=False,
        ),
    ] = None,
    s3_timeout: Annotated[
        float | None,
        typer.Option(
            "--s3-timeout",
            min=1,
            max=3600,
            help="Seconds one S3 request may take, retries included.  [default: 60]",
            show_default=False,
        ),
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="A TrainJob spec file; flags given here override it.")
    ] = None,
    promote: Annotated[
        Promote | None,
        typer.Option(
            "--promote",
            help="Whether the model becomes the default (cluster_agent.pt in the output, or what latest.json "
            "names): if-better when it is not worse than the current default on the same unseen clusters (or "
            "there is none); otherwise it is kept under <run-id>/.  [default: if-better]",
            show_default=False,
        ),
    ] = None,
    nproc_per_node: Annotated[
        int | None,
        typer.Option(
            "--nproc-per-node",
            min=1,
            max=1024,
            help="Train as this many processes on this host (torchrun's standalone launcher, DDP; one GPU "
            "each with CUDA). num-envs and the minibatch must divide by it. Under torchrun itself, leave it out.",
        ),
    ] = None,
) -> int:
    """Train an agent on thousands of simulated clusters with PufferLib's PuffeRL trainer.

    The budget is episodes x steps x num-envs agent steps (120 x 100 x 1024 by default, about
    12 million, under three minutes on two CPU cores); --total-steps sets it directly. The model
    becomes $CLUSTER_CODE_HOME/models/cluster_agent.pt (or the default in --output) when it is not
    worse than the model there on the same unseen clusters; otherwise it is kept under
    models/<run-id>/. On a terminal a live view shows progress; otherwise each line on stdout is a
    JSON event (start, progress, checkpoint, not_promoted, done). SIGTERM or Ctrl-C writes a
    checkpoint and exits with 75; --resume continues.
    """
    from entrypoint.jobspec import load_job_for

    opts = TrainOptions()
    if job is not None:
        opts = options_from_job(load_job_for(job, "TrainJob"))
    given = {
        "episodes": episodes,
        "steps": steps,
        "total_steps": total_steps,
        "seed": seed,
        "device": device.value if device is not None else None,
        "num_envs": num_envs,
        "output": output,
        "run_name": run_name,
        "checkpoint_interval": checkpoint_interval,
        "context": context,
        "namespaces": namespace,
        "api_timeout": api_timeout,
        "s3_timeout": s3_timeout,
        "promote": promote.value if promote is not None else None,
    }
    opts = replace(opts, **{k: v for k, v in given.items() if v is not None})
    if steps is not None and job is not None and opts.scenario is not None:
        opts.scenario = replace(opts.scenario, max_steps=steps)
    if resume:  # the flag asks for a run to continue: none to continue is an error, even under a spec
        opts.resume, opts.resume_or_start = True, False
    opts.verbose = verbose
    if no_simulation:
        opts.simulation = False
    if nproc_per_node is not None and nproc_per_node > 1:
        from entrypoint import torchrun

        if not torchrun.launched_by_torchrun():
            return torchrun.launch(opts, nproc_per_node)
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
        resume_or_start=spec.resume == "auto",
        checkpoint_interval=float(spec.checkpoint_interval),
        training=training_overrides(spec),
        scenario=scenario,
        simulation=spec.mode == "simulation",
        s3_timeout=spec.s3_timeout,
        promote=spec.promote,
        **cluster_target(spec),
    )


# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """A checked training run: everything `execute_training` needs, nothing left to validate."""

    opts: TrainOptions
    config: object  # rl.train.TrainConfig
    run_id: str
    output: str  # an absolute local directory or an s3:// prefix
    s3_output: bool
    checkpoint_dir: Path
    local_model: Path  # the run's model file, <output>/<run-id>/cluster_agent.pt (for S3: the copy uploaded)
    default_model: Path | None  # local output: <output>/cluster_agent.pt, the model `diagnose` uses; S3: None
    world: object = None  # rl.distributed.World: this process's rank under torchrun


def execute_training(opts: TrainOptions) -> int:
    """Check everything, then train and publish; returns the exit code."""
    from entrypoint.progress import make_reporter
    from entrypoint.torchrun import SilentReporter, die_with_launcher, launched_by_torchrun, world_of

    if launched_by_torchrun():
        die_with_launcher()
    plan = prepare(opts)
    plan.world = world_of(plan.config)
    if plan.world.is_main:
        reporter = make_reporter(plan.config.total_steps, verbose=opts.verbose)
    else:  # under torchrun only rank 0 reports
        reporter = SilentReporter()
    try:
        return _run(plan, reporter)
    finally:
        reporter.close()


def prepare(opts: TrainOptions) -> Plan:
    """Every check that can fail before training starts: a bad run costs seconds, not hours."""
    from entrypoint import home, storage
    from entrypoint.config_file import training_config_overrides
    from entrypoint.names import check_name, check_namespace

    try:
        for namespace in opts.namespaces or []:
            check_namespace(namespace, "--namespace")
    except ValueError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if opts.device not in {d.value for d in Device}:
        raise CliError(f"--device: must be auto, cpu or cuda, got {opts.device!r}", ExitCode.USAGE)
    try:
        storage.set_timeout(opts.s3_timeout)
        output = storage.check_location(opts.output or str(home.models_dir()), "--output")
    except storage.StorageError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if output.lower().endswith(".pt") and not Path(output).expanduser().is_dir():
        # `--output agent.pt` (or AGENT.PT) would otherwise become a directory agent.pt/ holding cluster_agent.pt.
        raise CliError(
            f"--output: {output} looks like a model file name; --output is the directory (or s3:// prefix) "
            f"that {MODEL_FILE} is written into",
            ExitCode.USAGE,
        )
    if opts.resume and not opts.run_name:
        opts = replace(opts, run_name=_unfinished_run(home.checkpoints_dir()))
    run_id = opts.run_name or new_run_id()
    try:
        check_name(run_id, "--run-name")
    except ValueError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    s3_output = storage.is_s3_uri(output)
    if s3_output:
        local_model, default_model = home.models_dir() / run_id / MODEL_FILE, None
    else:
        output = str(_writable_directory(Path(output).expanduser().resolve()))
        local_model, default_model = Path(output) / run_id / MODEL_FILE, Path(output) / MODEL_FILE
        _check_model_target(default_model)
    _check_model_target(local_model)

    config = _train_config(opts, training_config_overrides(home.cluster_code_home()))
    config = replace(config, device=_resolve_device(opts.device))
    return Plan(opts, config, run_id, output, s3_output, home.checkpoints_dir() / run_id, local_model, default_model)


def new_run_id() -> str:
    """`train-<UTC date>-<time>-<6 random hex digits>`: runs started in the same second (two pods of
    a CronJob, two shells) must not share checkpoints, TensorBoard logs or S3 keys."""
    import secrets

    return time.strftime("train-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def _unfinished_run(checkpoints: Path) -> str:
    """The run `--resume` without `--run-name` continues: the only one with checkpoints left."""
    runs = []
    if checkpoints.is_dir():
        for run in checkpoints.iterdir():
            found = sorted(run.glob("checkpoint_*.pt")) if run.is_dir() else []
            if found:
                runs.append((found[-1].stat().st_mtime, run.name))
    if not runs:
        raise CliError(
            f"--resume: no unfinished run in {checkpoints}; pass --run-name (with an s3:// --output, "
            "its checkpoints are looked up there)",
            ExitCode.USAGE,
        )
    if len(runs) > 1:
        names = ", ".join(name for _, name in sorted(runs, reverse=True))
        raise CliError(
            f"--resume: several unfinished runs, newest first: {names}; pick one with --run-name", ExitCode.USAGE
        )
    return runs[0][1]


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


def _check_model_target(path: Path) -> None:
    """The model file's path must be free or a regular file, checked before hours of training."""
    from rl.files import NotARegularFile, check_writable_target

    try:
        check_writable_target(path)
    except NotARegularFile as err:
        raise CliError(f"--output: cannot write the model: {err}", ExitCode.STORAGE) from None


def _train_config(opts: TrainOptions, user_training: dict):
    from rl.train import TrainConfig
    from rl.train_config import training_scenario

    try:
        scenario = opts.scenario or training_scenario(max_steps=opts.steps)
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


class _Interrupted(Exception):
    """Raised by the signal handler while the final evaluation runs."""


class _StopFlag:
    """SIGTERM/SIGINT handling. While training, a signal sets the flag and the trainer checkpoints
    at the end of its current update; inside `interrupting()` it stops the work at once."""

    def __init__(self):
        self.signal: str | None = None
        self._previous = {}
        self._interrupt = False

    def __call__(self) -> bool:
        return self.signal is not None

    def install(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def interrupting(self):
        """A context in which a signal (or one already received) raises `_Interrupted`."""
        from contextlib import contextmanager

        @contextmanager
        def context():
            if self.signal is not None:
                raise _Interrupted
            self._interrupt = True
            try:
                yield
            finally:
                self._interrupt = False

        return context()

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT and not self._interrupt:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signal.Signals(signum).name
        if self._interrupt:
            raise _Interrupted


def _run(plan: Plan, reporter) -> int:
    main = plan.world.is_main  # under torchrun rank 0 alone touches files, S3 and the cluster
    if main:
        _clean_up_home(plan, reporter)
    resume_from = _checkpoint_to_resume(plan, reporter) if plan.opts.resume and main else None
    if not plan.opts.simulation and main:  # the other ranks take rank 0's settings
        plan.config = replace(plan.config, scenario=_scenario_from_cluster(plan.opts, plan.config.scenario, reporter))
    start_fields = {
        "run_id": plan.run_id,
        "total_steps": plan.config.total_steps,
        "num_envs": plan.config.num_envs,
        "device": plan.config.device,
        "seed": plan.config.seed,
        "output": plan.output,
    }
    if plan.opts.verbose:
        start_fields["config"] = plan.config.to_dict()
    reporter.event("start", **start_fields)

    stop = _StopFlag()
    stop.install()
    try:
        result = _train(plan, resume_from, stop, reporter)
        if result.stopped:
            reporter.event(
                "stopped",
                signal=stop.signal,
                global_step=result.global_step,
                checkpoint=str(result.checkpoint) if result.checkpoint else None,
                resume=f"{prog()} train --resume --run-name {plan.run_id}",
            )
            return int(ExitCode.STOPPED)
        if not main:
            return int(ExitCode.OK)
        return _publish(plan, result, stop, reporter)
    finally:
        stop.restore()


def _clean_up_home(plan: Plan, reporter) -> None:
    """Remove what killed runs left: temp files of interrupted writes, and the checkpoints of an
    earlier run of this name when this one starts afresh (it must not resume old state later)."""
    from entrypoint import home
    from rl.files import remove_stale_temp_files

    removed = []
    for directory in (home.checkpoints_dir(), home.models_dir()):
        removed += remove_stale_temp_files(directory, recursive=True)
    if not plan.s3_output:
        removed += remove_stale_temp_files(plan.output)
        removed += remove_stale_temp_files(plan.local_model.parent)
    if removed:
        reporter.event("cleanup", removed=[str(p) for p in removed])
    if not plan.opts.resume:
        _remove_checkpoints(plan)


def _remove_checkpoints(plan: Plan) -> None:
    if not plan.checkpoint_dir.exists():
        return
    try:
        for stale in plan.checkpoint_dir.glob("checkpoint_*.pt"):
            stale.unlink()
    except OSError as err:
        raise CliError(
            f"cannot remove old checkpoints in {plan.checkpoint_dir}: {err.strerror or err}", ExitCode.STORAGE
        ) from None


def _checkpoint_to_resume(plan: Plan, reporter) -> Path | None:
    """The checkpoint `--resume` continues. Without one, `--resume` is exit 2 (a spec's `resume:
    auto` starts the run). A checkpoint whose own run reached its budget is a finished run: this
    one starts afresh (a nightly job). A checkpoint of an unfinished run is never given up: a budget
    at or below its step is exit 2, with the checkpoint kept."""
    from rl.train import latest_checkpoint

    found = latest_checkpoint(plan.checkpoint_dir) if plan.checkpoint_dir.exists() else None
    if found is None and plan.s3_output:
        from entrypoint.storage import StorageError
        from entrypoint.storage import latest_checkpoint as latest_s3_checkpoint

        try:
            found = latest_s3_checkpoint(plan.output, plan.run_id, plan.checkpoint_dir)
        except StorageError as err:
            raise CliError(str(err), ExitCode.STORAGE) from None
    if found is None:
        if plan.opts.resume_or_start:
            reporter.event("fresh", reason=f"no checkpoint of {plan.run_id} to resume")
            return None
        where = str(plan.checkpoint_dir) + (f" nor under {plan.output}" if plan.s3_output else "")
        raise CliError(
            f"--resume: run {plan.run_id} has no checkpoint to continue (none in {where}); "
            "leave out --resume to start it",
            ExitCode.USAGE,
        )
    step, budget = _progress(found)
    if budget is not None and step >= budget:
        reporter.event(
            "fresh", reason=f"the newest checkpoint of {plan.run_id} finished its run", checkpoint=str(found)
        )
        _remove_checkpoints(plan)  # its model was written; left here, they would shadow this run's own
        return None
    if step >= plan.config.total_steps:
        goal = f" (its run was to reach {budget})" if budget is not None else ""
        raise CliError(
            f"--resume: the checkpoint of run {plan.run_id} is at step {step}{goal}, and this run's budget is "
            f"{plan.config.total_steps} steps; pass a --total-steps above {step} to continue it (the checkpoint "
            f"{found} is kept)",
            ExitCode.USAGE,
        )
    reporter.event("resuming", run_id=plan.run_id, checkpoint=str(found))
    return found


def _progress(checkpoint: Path) -> tuple[int, int | None]:
    """A checkpoint's step, and the budget its run was started with (None if it does not say)."""
    from rl.model import ModelError
    from rl.train import read_checkpoint

    try:
        payload = read_checkpoint(checkpoint)
    except ModelError as err:
        raise CliError(str(err), ExitCode.MODEL) from None
    step = payload.get("global_step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise CliError(f"{checkpoint}: checkpoint does not record its step", ExitCode.MODEL)
    budget = (payload.get("config") or {}).get("total_steps") if isinstance(payload.get("config"), dict) else None
    return step, budget if isinstance(budget, int) and not isinstance(budget, bool) else None


def _train(plan: Plan, resume_from: Path | None, stop: _StopFlag, reporter):
    """PuffeRL until the budget is spent or a signal arrives; checkpoints mirrored to S3."""
    from entrypoint import home
    from entrypoint.storage import StorageError, upload_checkpoint
    from rl.distributed import DistributedError
    from rl.model import ModelError
    from rl.train import train

    def on_checkpoint(path: Path, metrics: dict):
        location = str(path)
        if plan.s3_output:
            try:
                location = upload_checkpoint(path, plan.output, plan.run_id)
            except StorageError as err:
                reporter.event("warning", message=f"checkpoint kept locally, upload failed: {err}")
        reporter.event("checkpoint", path=location, global_step=metrics.get("global_step"))

    try:
        return train(
            plan.config,
            run_id=plan.run_id,
            checkpoint_dir=plan.checkpoint_dir,
            tensorboard_dir=home.runs_dir() / plan.run_id,
            resume_from=resume_from,
            on_progress=reporter.progress,
            on_checkpoint=on_checkpoint,
            should_stop=stop,
            on_resumed=lambda step: reporter.event("resumed", global_step=step),
            world=plan.world,
        )
    except ModelError as err:
        raise CliError(str(err), ExitCode.MODEL) from None
    except DistributedError as err:
        raise CliError(str(err), ExitCode.FAILURE) from None
    except OSError as err:
        raise CliError(
            f"cannot write a checkpoint to {plan.checkpoint_dir}: {err.strerror or err}", ExitCode.STORAGE
        ) from None


def _publish(plan: Plan, result, stop: _StopFlag, reporter) -> int:
    """Keep the model under its run, evaluate it greedily beside the expert runbook and the current
    default on the same clusters (a signal skips this), then make it the default if the gate lets it.

    A model whose weights are not all finite is never written. The run's model file is written
    first, without the evaluation, so a SIGTERM during the evaluation leaves a complete model kept;
    the file is rewritten with the evaluation when it finishes.
    """
    from entrypoint.torchrun import orphaned
    from rl.model import all_finite
    from rl.promotion import below_floor

    if orphaned():
        raise CliError(
            "the --nproc-per-node launcher is gone: this orphaned worker does not publish its model", ExitCode.STOPPED
        )
    if not all_finite(result.policy):
        raise CliError(
            f"training diverged: the network's weights are not all finite numbers (NaN or infinity); "
            f"nothing was written and any earlier model is kept. Lower learningRate or maxGradNorm "
            f"(run {plan.run_id})",
            ExitCode.MODEL,
        )
    metadata = {
        "global_step": result.global_step,
        "seed": plan.config.seed,
        "run_id": plan.run_id,
        "training": plan.config.to_dict(),
        "metrics": dict(result.metrics),
    }
    saved = _save(plan, result.policy, metadata)
    current = _current_default(plan) if plan.opts.promote == Promote.if_better.value else None
    reporter.event("evaluating", model=str(saved), episodes=EVALUATION_EPISODES)
    evaluation, skipped = None, None
    try:
        with stop.interrupting():
            evaluation = _evaluate(result.policy, current, plan.config)
    except _Interrupted:
        skipped = f"stopped by {stop.signal}"
    figures = evaluation.for_metadata() if evaluation is not None else None
    if figures is not None:
        metadata["metrics"]["evaluation"] = figures
        saved = _save(plan, result.policy, metadata)
    if below_floor(figures):
        reporter.event("warning", **_too_short(figures, result.global_step))
    default = _default_location(plan)
    refusal = _refusal(plan, current, evaluation, skipped)
    location, uploaded = str(saved), None
    if plan.s3_output:
        uploaded = _upload(plan, saved, promoted=refusal is None, unread=bool(current and current.unreadable))
        location = uploaded.uri
    if current is not None and current.unreadable:
        raise CliError(
            f"{current.unreadable}: the new model could not be compared with the current default, so "
            f"latest.json is unchanged; the model is uploaded to {location} (--promote always publishes "
            "without comparing)",
            ExitCode.STORAGE,
        )
    if refusal is None:
        if current is not None and current.problem:
            reporter.event(
                "warning",
                reason="unusable_default",
                model=current.location,
                message=f"the current default {current.location} cannot be used ({current.problem}); "
                "the new model replaces it",
            )
        location = _promote(plan, saved, uploaded)
    else:
        refusal["message"] += f"; kept at {location}, the default is unchanged"
        if refusal["reason"] != "never":
            refusal["message"] += " (--promote always replaces it)"
        reporter.event("not_promoted", model=location, default=default, **refusal)
    for finished in plan.checkpoint_dir.glob("checkpoint_*.pt"):  # the run is complete: nothing to resume
        finished.unlink()
    reporter.progress(result.metrics, force=True)
    done = {
        "model": location,
        "run_id": plan.run_id,
        "global_step": result.global_step,
        "elapsed": round(result.elapsed, 1),
        "metrics": result.metrics,
        "evaluation": figures,
        "promoted": refusal is None,
        "default": default,
        "default_evaluation": evaluation.current if evaluation is not None else None,
    }
    if skipped:
        done["evaluation_skipped"] = skipped
    reporter.event("done", **done)
    return int(ExitCode.OK)


@dataclass
class _Default:
    """The current default model a new one is compared with."""

    location: str  # its path, or its S3 URI
    policy: object = None  # the network, when it could be loaded
    problem: str | None = None  # why it cannot be used: a corrupt or incompatible model, replaced by the new one
    unreadable: str | None = None  # why S3 could not be read (endpoint, credentials): nothing to compare with


def _default_location(plan: Plan) -> str:
    """Where the default model is: the local file, or the latest.json under the S3 prefix."""
    if plan.s3_output:
        from entrypoint.storage import pointer_uri

        return pointer_uri(plan.output)
    return str(plan.default_model)


def _current_default(plan: Plan) -> _Default | None:
    """The model the new one must not be worse than; None when there is none yet (the first model).

    A default that cannot be used (corrupt, truncated, from an incompatible version: anything
    `load_model` refuses, or a latest.json that names nothing valid) is returned with its problem:
    the new model replaces it. An S3 store that cannot be read at all (endpoint, credentials,
    permissions) is returned as unreadable: the new model cannot be compared, latest.json is left
    alone and the run ends with exit 4 once the model is uploaded.
    """
    from rl.model import ModelError, load_model

    if plan.s3_output:
        from entrypoint import home
        from entrypoint.storage import StorageError, UnusableModelError, current_model, pointer_uri

        try:
            found = current_model(plan.output, home.cluster_code_home())
        except UnusableModelError as err:
            return _Default(pointer_uri(plan.output), problem=str(err))
        except StorageError as err:
            return _Default(pointer_uri(plan.output), unreadable=str(err))
        if found is None:
            return None
        path, location = found
    else:
        path = location = plan.default_model
        if not path.exists() and not path.is_symlink():
            return None
    try:
        policy, _ = load_model(path)
    except ModelError as err:
        return _Default(str(location), problem=str(err).removeprefix(f"{path}: "))
    return _Default(str(location), policy=policy)


def _refusal(plan: Plan, current: _Default | None, evaluation, skipped: str | None) -> dict | None:
    """None when the new model becomes the default; otherwise the `not_promoted` event's fields."""
    from rl.promotion import compare

    promote = plan.opts.promote
    if promote == Promote.never.value:
        return {"reason": "never", "message": "not promoted (--promote never)"}
    if promote == Promote.always.value or current is None or current.problem:
        return None
    if current.unreadable:
        return {"reason": "unreadable", "message": f"not promoted: {current.unreadable}"}
    if evaluation is None:
        return {
            "reason": "not_evaluated",
            "message": f"not promoted: the evaluation was {skipped}, so the new model was not compared "
            "with the current default",
        }
    new, old = evaluation.model, evaluation.current
    comparison = compare(new, old, evaluation.episodes)
    if comparison.not_worse:
        return None
    return {
        "reason": "worse",
        "worse_in": comparison.worse_in,
        "episodes": evaluation.episodes,
        "new": {k: new[k] for k in ("resolution_rate", "diagnosis_f1")},
        "current": {k: old[k] for k in ("resolution_rate", "diagnosis_f1")},
        "tolerance": {
            "resolution_rate": round(comparison.resolution_tolerance, 4),
            "diagnosis_f1": comparison.f1_tolerance,
        },
        "message": f"not promoted: the new model resolves {new['resolution_rate']:.1%} of "
        f"{evaluation.episodes} unseen clusters (diagnosis F1 {_f1(new)}), the current default "
        f"{old['resolution_rate']:.1%} of the same (F1 {_f1(old)})",
    }


def _f1(result: dict) -> str:
    return "-" if result.get("diagnosis_f1") is None else f"{result['diagnosis_f1']:.3f}"


def _too_short(figures: dict, global_step: int) -> dict:
    """The `warning` event of a run whose model resolves less than the floor (half the expert's)."""
    from rl.promotion import FLOOR_SHARE_OF_EXPERT, resolution_floor

    expert = figures["expert"]["resolution_rate"]
    floor = resolution_floor(figures["expert"])
    head = (
        f"the model resolves {figures['resolution_rate']:.1%} of {figures['episodes']} unseen clusters greedily, "
        f"below the floor of {floor:.1%} ({FLOOR_SHARE_OF_EXPERT:.0%} of the {expert:.1%} the expert runbook "
        "resolves on the same clusters)"
    )
    if global_step < EXPERT_PASSING_STEPS:
        advice = (
            f"{global_step:,} steps are too few to learn; {EXPERT_PASSING_STEPS / 1e6:.1f} M steps pass the expert "
            f"(`{prog()} train` with no flags, or --total-steps {EXPERT_PASSING_STEPS})"
        )
    else:
        advice = (
            f"{global_step:,} steps pass the expert with the default settings ({EXPERT_PASSING_STEPS / 1e6:.1f} M "
            "do): check this run's training settings (config.json, the job spec's training)"
        )
    return {
        "reason": "too_short",
        "message": f"{head}: {advice}",
        "resolution_rate": figures["resolution_rate"],
        "floor": round(floor, 4),
        "expert_resolution_rate": expert,
        "global_step": global_step,
        "competent_steps": EXPERT_PASSING_STEPS,
    }


def _upload(plan: Plan, saved: Path, promoted: bool, unread: bool = False):
    """Upload the run's model under its S3 run prefix. One that is not promoted goes one level down
    when latest.json names <run-id>/cluster_agent.pt itself (a run name that comes back, as a nightly
    job's does), or when that cannot be read (`unread`: it could not be a moment ago): the default's
    object is never replaced under it."""
    from entrypoint.storage import NOT_PROMOTED_DIR, StorageError, latest_key, model_key, upload_model

    folder = None
    if not promoted:
        try:
            taken = unread or latest_key(plan.output) == model_key(plan.output, plan.run_id)
        except StorageError:
            taken = True
        folder = NOT_PROMOTED_DIR if taken else None
    try:
        return upload_model(saved, plan.output, plan.run_id, folder)
    except StorageError as err:
        raise CliError(f"{err} (the model is kept at {saved})", ExitCode.STORAGE) from None


def _promote(plan: Plan, saved: Path, uploaded) -> str:
    """Make the run's model the default: latest.json names it, or it replaces <output>/cluster_agent.pt."""
    if plan.s3_output:
        from entrypoint.storage import StorageError, point_latest

        try:
            point_latest(plan.output, uploaded)
        except StorageError as err:
            raise CliError(
                f"{err} (the model is uploaded to {uploaded.uri}; latest.json still names the previous model)",
                ExitCode.STORAGE,
            ) from None
        return uploaded.uri
    from rl.files import atomic_write

    try:
        atomic_write(plan.default_model, saved.read_bytes())
    except OSError as err:
        raise CliError(
            f"cannot write the model to {plan.default_model}: {(err.strerror or str(err)).lower()}; it is kept at "
            f"{saved}; the previous model there is unchanged",
            ExitCode.STORAGE,
        ) from None
    _remove_run_copy(saved)
    return str(plan.default_model)


def _remove_run_copy(path: Path) -> None:
    """The run's file and its directory, once empty: a promoted model lives at the default path only."""
    try:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    except OSError:
        pass  # the directory holds something else (or is gone): leave it


def _save(plan: Plan, policy, metadata: dict) -> Path:
    """Write the run's model file; when that fails, keep it under the home and say where, then exit 4."""
    from entrypoint import home
    from rl.model import save_model

    try:
        return save_model(plan.local_model, policy, metadata)
    except OSError as err:
        problem = f"cannot write the model to {plan.local_model}: {(err.strerror or str(err)).lower()}"
    try:
        plan.local_model.parent.rmdir()  # the run's directory, if this write created it and nothing else is there
    except OSError:
        pass
    fallback = home.models_dir() / plan.run_id / MODEL_FILE
    kept = "it could not be saved anywhere else either"
    if fallback != plan.local_model:
        try:
            kept = f"it is kept at {save_model(fallback, policy, metadata)}"
        except OSError:
            pass
    raise CliError(f"{problem}; {kept}; the default model is unchanged", ExitCode.STORAGE)


def _evaluate(policy, current: _Default | None, config):
    """The new model, the expert runbook and the current default, greedy, on the same unseen clusters."""
    from rl.model import ModelPolicy
    from rl.promotion import evaluate_together

    return evaluate_together(
        ModelPolicy(policy),
        ModelPolicy(current.policy) if current is not None and current.policy is not None else None,
        EVALUATION_EPISODES,
        EVALUATION_SEED + config.seed,
        config.scenario,
    )


def _scenario_from_cluster(opts: TrainOptions, scenario, reporter):
    """Simulated clusters sized like the real one (read once, read-only), the faults as configured."""
    from entrypoint.errors import unexpected_cluster_answer
    from rl.kube import KubeBackend, KubeError

    timeout = {"request_timeout": opts.api_timeout} if opts.api_timeout is not None else {}
    try:
        backend = KubeBackend(
            context=opts.context, namespaces=opts.namespaces, kubeconfig=opts.kubeconfig, warn=warn, **timeout
        )
    except KubeError as err:
        raise CliError(str(err), ExitCode.CLUSTER) from None
    try:
        seen = backend.observe()
    except KubeError as err:
        raise CliError(str(err), ExitCode.CLUSTER) from None
    except (AttributeError, TypeError, KeyError, ValueError) as err:  # data from the server, not our state
        raise unexpected_cluster_answer(backend.api.host, err) from None
    finally:
        backend.close()
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
