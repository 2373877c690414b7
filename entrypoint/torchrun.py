"""`cluster-rl train --nproc-per-node N`: the same command, N times, under torchrun's standalone launcher.

This process runs torchrun's launcher (`torch.distributed.run`, what the `torchrun` command runs)
in-process; each worker is `python -m entrypoint.cli` with this command's arguments, and sees
torchrun's environment, so it trains as one rank (`rl.distributed`). SIGTERM and SIGINT are
passed on to the workers, which stop together and checkpoint; the exit code is rank 0's.

A worker dies with the process that started it (`die_with_launcher`: the kernel's parent-death
signal, SIGKILL): a launcher killed outright (SIGKILL, the OOM killer) leaves no orphan training
on, and no orphan publishes a model (`orphaned`, checked before publishing, covers systems without
that signal).
"""

import logging
import os
import signal
import sys

from entrypoint.errors import CliError, ExitCode

STOPPED = int(ExitCode.STOPPED)
LAUNCHER_PID_ENV = "CLUSTER_RL_LAUNCHER_PID"  # set by launch_standalone for its workers
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def launched_by_torchrun() -> bool:
    """True in a process torchrun started (it always sets these)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_WORLD_SIZE" in os.environ


def die_with_launcher() -> None:
    """Under torchrun, have the kernel SIGKILL this worker when its launcher dies. Where the
    launcher is already gone (it died before this ran), exit at once."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: `orphaned` still keeps an orphan from publishing
        pass
    if orphaned():
        os._exit(STOPPED)


def orphaned() -> bool:
    """True in a worker of `launch_standalone` whose launcher is gone (it has been re-parented)."""
    launcher = os.environ.get(LAUNCHER_PID_ENV)
    return bool(launcher) and launched_by_torchrun() and str(os.getppid()) != launcher


def world_of(config):
    """Where this process stands under torchrun (one process without it), checked against the settings."""
    from rl.distributed import DistributedError, World

    try:
        world = World.from_env()
    except DistributedError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    if world.distributed:
        check_world(config, world.size)
    return world


def check_world(config, size: int) -> None:
    """num_envs, the minibatch and the budget are global: each of `size` ranks must get an equal share."""
    from rl.distributed import shard_sizes

    try:
        shard_sizes(config.num_envs, config.minibatch_size, config.total_steps, config.num_steps, size)
    except ValueError as err:
        raise CliError(f"training settings: {err}", ExitCode.USAGE) from None


class SilentReporter:
    """The reporter of ranks other than 0: they print no events."""

    def event(self, name: str, **fields) -> None:
        pass

    def progress(self, metrics: dict, force: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def launch(opts, nproc: int) -> int:
    """`cluster-rl train --nproc-per-node N`: check the run as a worker would, then start N of them."""
    from entrypoint.commands.train import prepare

    plan = prepare(opts)
    check_world(plan.config, nproc)
    if plan.config.device == "cuda":
        import torch

        if torch.cuda.device_count() < nproc:
            raise CliError(
                f"--nproc-per-node {nproc} with CUDA needs {nproc} GPUs, torch sees {torch.cuda.device_count()}",
                ExitCode.DEVICE,
            )
    argv = sys.argv[1:]
    if not opts.run_name:  # every rank must use the run id chosen here, not one of its own
        argv += ["--run-name", plan.run_id]
    return launch_standalone(nproc, argv)


def launch_standalone(nproc: int, argv: list[str]) -> int:
    """Run `cluster-rl <argv>` as `nproc` ranks on this host; rank 0's exit code."""
    import psutil
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # we report failures ourselves

    def forward(signum, frame):
        for child in psutil.Process().children():
            try:
                os.killpg(child.pid, signum)  # each worker leads its own process group
            except (ProcessLookupError, PermissionError):
                try:
                    child.send_signal(signum)
                except psutil.Error:
                    pass

    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())  # the workers' parent: they die with it
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    # torchrun's agent turns SIGTERM/SIGINT into an exception that discards the workers' exit
    # codes; we pass those signals on ourselves (above) and let the workers end as they choose.
    args = torchrun.parse_args(
        [
            "--standalone",
            f"--nproc-per-node={nproc}",
            "--max-restarts=0",
            "--signals-to-handle=SIGHUP,SIGQUIT",
            "-m",
            "entrypoint.cli",
            *argv,
        ]
    )
    try:
        torchrun.run(args)
        return 0
    except ChildFailedError as err:
        return _exit_code(err)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_code(err) -> int:
    """Rank 0's own exit code (it printed why); otherwise say which rank failed first, and 1.

    A stopped run: a rank exits 75 only after rank 0 wrote the checkpoint (they wait for it), and
    torchrun then ends the rest, rank 0 included, possibly before rank 0 exits by itself.
    """
    failures = err.failures
    if 0 in failures and failures[0].exitcode > 0:
        return failures[0].exitcode
    rank, first = min(failures.items(), key=lambda item: item[1].timestamp)
    if first.exitcode == STOPPED:
        return STOPPED
    how = f"signal {first.signal_name()}" if first.exitcode < 0 else f"exit code {first.exitcode}"
    print(f"cluster-rl: training failed: rank {rank} ended with {how}", file=sys.stderr)
    return 1
