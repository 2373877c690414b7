"""The GPU check (run through scripts/gpu-check.sh; standard library only).

For a bare machine with an NVIDIA GPU and its driver, Python, a CUDA build of PyTorch and nvcc, and
no network. In a few minutes it:
  1. preflight: nvidia-smi lists a GPU, torch is a CUDA build that can use it, nvcc answers;
  2. install: the wheels carried in WHEELS (`make gpu-wheels`) that the machine lacks, pufferlib-core
     compiled from its sdist with its CUDA kernel for this GPU, and this project, into a scratch
     directory (nothing of the machine's own Python is changed);
  3. status: `cluster-rl status --output json` (NVML's view of the GPU);
  4. train: `cluster-rl train --device cuda` for TRAIN_SECONDS, then SIGTERM (exit 75, checkpointed);
     its steps/s from the last progress line;
  5. benchmark: `benchmarks/train_throughput.py --device cuda --json`;
  6. nccl: `train --nproc-per-node 2 --device cuda`, two ranks over NCCL (skipped with fewer than 2 GPUs).
It writes one JSON summary (docs/gpus.md, "GPU check", documents its shape) and exits 0 when every step
passed, 1 when a step failed, 2 on bad arguments, 3 when the machine cannot run the check at all
(no GPU, no driver, a CPU-only torch, no nvcc); the summary's `error` then says why in one line.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_STEP_FAILED, EXIT_USAGE, EXIT_NO_GPU = 0, 1, 2, 3
TRAIN_STOPPED = 75  # cluster-rl train's exit code after SIGTERM: checkpointed and stopped
SCHEMA = 1
BUILD_TOOLS = ("setuptools", "wheel")


class Unfit(Exception):
    """The machine cannot run the check (exit 3)."""


class StepFailed(Exception):
    pass


def run(cmd: list[str], *, env: dict | None = None, timeout: float = 300, cwd: Path | None = None):
    return subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


PIP_BOILERPLATE = ("note:", "hint:", "╰─>", "×", "error: subprocess-exited-with-error", "[end of output]")


def error_line(text: str) -> str:
    """The line of a tool's stderr that says what went wrong: the last one naming an error, not pip's
    summary lines around a failed build; else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(PIP_BOILERPLATE) and re.search(r"error", line, re.IGNORECASE):
            if line not in ("error: metadata-generation-failed", "error: failed-wheel-build-for-install"):
                return line
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------- 1. preflight


def preflight(python: str) -> dict:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise Unfit("nvidia-smi not found: this check needs a machine with an NVIDIA GPU and its driver")
    query = run(
        [smi, "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader,nounits"], timeout=60
    )
    rows = [line for line in query.stdout.splitlines() if line.strip()]
    if query.returncode != 0 or not rows:
        why = last_line(query.stderr) or last_line(query.stdout) or f"exit code {query.returncode}"
        raise Unfit(f"nvidia-smi lists no GPU ({why})")
    gpus = []
    for row in rows:
        fields = [f.strip() for f in row.split(",")]
        if len(fields) < 3:
            raise Unfit(f"nvidia-smi answered something unexpected: {row!r}")
        gpus.append(
            {
                "name": fields[0],
                "driver_version": fields[1],
                "memory_total_mib": int(fields[2]) if fields[2].isdigit() else None,
                "compute_capability": fields[3] if len(fields) > 3 else None,
            }
        )
    probe = run(
        [
            python,
            "-c",
            "import json, torch; c = torch.cuda.is_available(); print(json.dumps({'torch': torch.__version__, "
            "'cuda': torch.version.cuda, 'available': c, 'capability': list(torch.cuda.get_device_capability(0)) "
            "if c else None, 'device': torch.cuda.get_device_name(0) if c else None}))",
        ],
        timeout=120,
    )
    if probe.returncode != 0:
        raise Unfit(f"{python} cannot import torch: {last_line(probe.stderr)}")
    torch_info = json.loads(last_line(probe.stdout))
    if not torch_info["cuda"]:
        raise Unfit(f"torch {torch_info['torch']} is a CPU-only build: this check needs PyTorch's CUDA build")
    if not torch_info["available"]:
        raise Unfit(
            f"torch {torch_info['torch']} (CUDA {torch_info['cuda']}) cannot use the GPU nvidia-smi lists "
            f"(driver {gpus[0]['driver_version']}): check the driver and CUDA_VISIBLE_DEVICES"
        )
    nvcc = shutil.which("nvcc") or next(
        (str(p) for p in (Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc",) if p.exists()), None
    )
    if nvcc is None:
        raise Unfit("nvcc not found (PATH, CUDA_HOME): pufferlib's CUDA kernel cannot be compiled")
    release = re.search(r"release (\d+\.\d+)", run([nvcc, "--version"], timeout=60).stdout)
    return {
        "gpus": gpus,
        "python": run([python, "-c", "import platform; print(platform.python_version())"]).stdout.strip(),
        "torch": torch_info["torch"],
        "torch_cuda": torch_info["cuda"],
        "torch_device": torch_info["device"],
        "capability": ".".join(map(str, torch_info["capability"])),
        "nvcc": nvcc,
        "nvcc_release": release.group(1) if release else None,
    }


# --------------------------------------------------------------------------- 2. install


def wheel_distribution(path: Path) -> str:
    """The distribution name of a wheel or sdist file, canonical (lower case, dashes)."""
    name = path.name.split("-", 1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(python: str, names: list[str]) -> set[str]:
    code = (
        "import json, sys; from importlib import metadata\n"
        "out = []\n"
        "for n in sys.argv[1:]:\n"
        "    try: metadata.version(n); out.append(n)\n"
        "    except metadata.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    result = run([python, "-c", code, *names])
    return set(json.loads(result.stdout)) if result.returncode == 0 else set()


def install(python: str, wheels: Path, site: Path, env: dict, capability: str, nvcc: str) -> dict:
    build_tools = site.parent / "build-tools"
    if not wheels.is_dir():
        raise StepFailed(f"no carried wheels at {wheels}: run `make gpu-wheels` where PyPI answers and carry them")
    files = sorted(wheels.glob("*.whl"))
    sdists = sorted(wheels.glob("pufferlib_core-*.tar.gz"))
    if not sdists:
        raise StepFailed(f"{wheels} lacks pufferlib-core's sdist: run `make gpu-wheels` again")
    # The build tools always come from the carried set (pufferlib-core needs setuptools >= 77), on a
    # path of their own that only the builds below see; the rest only where the machine lacks them.
    tools = [f for f in files if wheel_distribution(f) in BUILD_TOOLS]
    have = installed(python, [wheel_distribution(f) for f in files if f not in tools])
    chosen = [f for f in files if f not in tools and wheel_distribution(f) not in have]
    pip = [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile", "--target"]
    for target, group in ((site, chosen), (build_tools, tools)):
        if group:
            result = run([*pip, str(target), *map(str, group)], env=env, timeout=300)
            if result.returncode != 0:
                raise StepFailed(f"installing the carried wheels failed: {error_line(result.stderr)}")
    build_env = dict(
        env,
        PYTHONPATH=os.pathsep.join([str(build_tools), env["PYTHONPATH"]]),
        PUFFERLIB_BUILD_CUDA="1",
        TORCH_CUDA_ARCH_LIST=capability,
        MAX_JOBS=str(os.cpu_count() or 1),
        CUDA_HOME=env.get("CUDA_HOME") or str(Path(nvcc).resolve().parent.parent),
    )
    started = time.monotonic()
    result = run([*pip, str(site), "--no-build-isolation", str(sdists[-1])], env=build_env, timeout=600)
    if result.returncode != 0:
        raise StepFailed(f"building pufferlib-core with its CUDA kernel failed: {error_line(result.stderr)}")
    compile_seconds = round(time.monotonic() - started, 1)
    extension = next(site.glob("pufferlib/_C*.so"), None)
    kernel = run([python, str(REPO / "scripts" / "image" / "cuda_kernel.py"), str(extension or "")])
    if kernel.returncode != 0:
        raise StepFailed(f"pufferlib's extension holds no CUDA kernel: {last_line(kernel.stderr)}")
    result = run([*pip, str(site), "--no-build-isolation", str(REPO)], env=build_env, timeout=300)
    if result.returncode != 0:
        raise StepFailed(f"installing cluster-code-rl failed: {error_line(result.stderr)}")
    imports = run([python, "-c", "import torch, pufferlib._C, rl.train, entrypoint.cli"], env=env, timeout=120)
    if imports.returncode != 0:
        raise StepFailed(f"the installed project does not import: {last_line(imports.stderr)} (carry that wheel)")
    return {
        "carried": [f.name for f in chosen],
        "already_there": sorted(have),
        "pufferlib_arch_list": capability,
        "pufferlib_compile_seconds": compile_seconds,
        "pufferlib_kernel": json.loads(kernel.stdout),
    }


# --------------------------------------------------------------------------- 3.-6.


def cli(python: str) -> list[str]:
    return [python, "-c", "from entrypoint.cli import main; main()"]


def status(python: str, env: dict) -> dict:
    result = run([*cli(python), "status", "--output", "json"], env=env, timeout=120)
    if result.returncode != 0:
        raise StepFailed(f"status failed (exit {result.returncode}): {last_line(result.stderr)}")
    gpu = json.loads(result.stdout)["gpu"]
    if gpu["device_auto"] != "cuda":
        raise StepFailed(f"status: device auto -> {gpu['device_auto']}, not cuda ({gpu['reason']})")
    return {"gpu": gpu}


def train(python: str, env: dict, seconds: float) -> dict:
    cmd = [*cli(python), "train", "--device", "cuda", "--total-steps", "1000000000", "--run-name", "gpu-check"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    elapsed = round(time.monotonic() - started, 1)
    events = []
    for line in out.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    progress = [e for e in events if e.get("event") == "progress"]
    start = next((e for e in events if e.get("event") == "start"), {})
    summary = {
        "exit_code": proc.returncode,
        "seconds": elapsed,
        "device": start.get("device"),
        "global_step": progress[-1].get("global_step") if progress else None,
        "sps": progress[-1].get("sps") if progress else None,
    }
    if proc.returncode not in (0, TRAIN_STOPPED) or summary["device"] != "cuda" or not progress:
        raise StepFailed(f"train --device cuda: exit {proc.returncode}, {last_line(err) or 'no progress'}", summary)
    return summary


def benchmark(python: str, env: dict, steps: int) -> dict:
    cmd = [
        python,
        str(REPO / "benchmarks" / "train_throughput.py"),
        "--device",
        "cuda",
        "--json",
        "--steps",
        str(steps),
    ]
    result = run(cmd, env=env, timeout=240)
    if result.returncode != 0:
        raise StepFailed(f"benchmarks/train_throughput.py failed: {last_line(result.stderr)}")
    return {"result": json.loads(last_line(result.stdout))}


def nccl(python: str, env: dict) -> dict:
    """`train --nproc-per-node 2 --device cuda`: two ranks over NCCL, one GPU each."""
    count = run([python, "-c", "import torch; print(torch.cuda.device_count())"], env=env, timeout=120)
    gpus = int(count.stdout.strip() or 0) if count.returncode == 0 else 0
    if gpus < 2:
        # NCCL gives each rank a GPU of its own; two ranks cannot share one.
        return {"skipped": f"{gpus} GPU(s): a 2-process NCCL run needs 2", "gpus": gpus}
    cmd = [*cli(python), "train", "--nproc-per-node", "2", "--device", "cuda", "--total-steps", "262144"]
    cmd += ["--run-name", "gpu-check-nccl"]
    result = run(cmd, env=env, timeout=300)
    done = {}
    for line in result.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "done":
            done = event
    summary = {"exit_code": result.returncode, "gpus": gpus, "global_step": done.get("global_step")}
    if result.returncode != 0 or not done:
        raise StepFailed(
            f"train --nproc-per-node 2 --device cuda: exit {result.returncode}, {last_line(result.stderr)}", summary
        )
    return summary


# --------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/gpu-check.sh", description="The GPU check; see docs/gpus.md.")
    parser.add_argument("--wheels", type=Path, default=REPO / "gpu-wheels", help="carried wheels (make gpu-wheels)")
    parser.add_argument("--summary", type=Path, default=None, help="JSON summary (default: $OUT or . /gpu-check.json)")
    parser.add_argument("--python", default=os.environ.get("GPU_CHECK_PYTHON", "python3"))
    parser.add_argument("--train-seconds", type=float, default=60.0)
    parser.add_argument("--bench-steps", type=int, default=1_000_000)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    summary_path = args.summary or Path(os.environ.get("OUT") or ".") / "gpu-check.json"
    started = time.monotonic()
    summary: dict = {
        "schema": SCHEMA,
        "ok": False,
        "error": None,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": None,
        "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
        "steps": {},
    }
    work = Path(tempfile.mkdtemp(prefix="gpu-check."))
    site = work / "site"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        CLUSTER_CODE_HOME=str(work / "home"),
        NUMBA_CACHE_DIR=str(work / "numba-cache"),
        PYTHONUNBUFFERED="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    code = EXIT_OK

    def step(name: str, func, *func_args):
        t0 = time.monotonic()
        try:
            result = func(*func_args)
            record = {"ok": True, **result}
        except StepFailed as exc:
            record = {"ok": False, "error": exc.args[0], **(exc.args[1] if len(exc.args) > 1 else {})}
        except (subprocess.TimeoutExpired, OSError, ValueError, KeyError) as exc:
            record = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        record["seconds"] = round(time.monotonic() - t0, 1)
        summary["steps"][name] = record
        return record

    try:
        try:
            info = preflight(args.python)
        except Unfit as exc:
            summary["error"] = str(exc)
            code = EXIT_NO_GPU
        else:
            summary["host"].update(info)
            summary["steps"]["preflight"] = {"ok": True}
            if step("install", install, args.python, args.wheels, site, env, info["capability"], info["nvcc"])["ok"]:
                step("status", status, args.python, env)
                step("train", train, args.python, env, args.train_seconds)
                step("benchmark", benchmark, args.python, env, args.bench_steps)
                step("nccl", nccl, args.python, env)
            failed = [n for n, r in summary["steps"].items() if not r["ok"]]
            if failed:
                summary["error"] = f"{failed[0]}: {summary['steps'][failed[0]]['error']}"
                code = EXIT_STEP_FAILED
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary["ok"] = code == EXIT_OK
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = summary_path.with_name(summary_path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, summary_path)
    if summary["error"]:
        print(f"gpu-check: {summary['error']}", file=sys.stderr)
    print(f"gpu-check: {'passed' if code == EXIT_OK else 'failed'}; summary in {summary_path}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
