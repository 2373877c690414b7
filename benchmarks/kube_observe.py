"""One observation, and one whole `cluster-rl diagnose`, of a 5,000-pod cluster served by the fake
API server (tests/kube_server).

The server runs in a subprocess so the figures are the backend's own: wall time of `observe()`
and the growth of this process's resident memory during it (sampled every millisecond), then the
wall time of `cluster-rl diagnose --no-simulation` (default steps, CLI start included) run as a
subprocess, best of `--repeat`. `--json` prints one line: {"pods", "nodes", "observe_seconds",
"peak_rss_mb_delta", "pages", "diagnose_seconds", "diagnose_steps", "diagnose_observations", ...}.
Targets: observe within 1 s and 200 MB (issue 6); diagnose within 5 s (issue 12).

Baselines from the same run, for the ratios: `cli_start_seconds` is `cluster-rl --help` (interpreter
and CLI start, best of `--repeat`) and `python_start_seconds` a bare `python -c pass`; on a loaded
machine all of them grow together, so `diagnose_per_cli_start` is what compares across runs.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from kube_server import write_kubeconfig  # noqa: E402

from rl.kube import KubeBackend  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRss:
    def __init__(self):
        self.baseline = rss_bytes()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.001)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def diagnose(kubeconfig: Path, policy: str, model: str | None) -> tuple[float, dict, float]:
    """Wall time of one `cluster-rl diagnose --no-simulation -o json` (a fresh process), its report,
    and the CPU seconds it used (on a loaded machine the wall time also counts waiting for a core)."""
    command = [str(Path(sys.executable).with_name("cluster-rl")), "diagnose", "--no-simulation", "-o", "json"]
    command += ["--policy", policy] + (["--model", model] if model else [])
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        command, env={**os.environ, "KUBECONFIG": str(kubeconfig)}, capture_output=True, text=True, timeout=300
    )
    seconds = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"kube_observe: diagnose failed ({done.returncode}): {done.stderr.strip()}")
    return seconds, json.loads(done.stdout), cpu


def best_wall(command: list[str], repeat: int) -> float:
    """Best wall time of a short command run `repeat` times (a baseline for the ratios)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, timeout=120)
        times.append(time.perf_counter() - started)
    return min(times)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="observations; the best is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--policy", default="expert", help="diagnose policy (model needs --model)")
    parser.add_argument("--model", default=None, help="model file for --policy model")
    args = parser.parse_args()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kube_server",
            "--synthetic-pods",
            str(args.pods),
            "--synthetic-nodes",
            str(args.nodes),
        ],
        cwd=ROOT / "tests",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("http://"):
            print("kube_observe: the fake API server did not start", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", url)
            backend = KubeBackend(kubeconfig=str(kubeconfig))
            runs = []
            for _ in range(args.repeat):
                with PeakRss() as rss:
                    started = time.perf_counter()
                    observation = backend.observe()
                    seconds = time.perf_counter() - started
                runs.append((seconds, (rss.peak - rss.baseline) / 2**20, backend.last_observe_pages))
                del observation
            backend.close()
            diagnoses = [diagnose(kubeconfig, args.policy, args.model) for _ in range(args.repeat)]
            cli_start = best_wall([str(Path(sys.executable).with_name("cluster-rl")), "--help"], args.repeat)
            python_start = best_wall([sys.executable, "-c", "pass"], args.repeat)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    seconds, _, pages = min(runs)
    diagnose_seconds, report, diagnose_cpu = min(diagnoses, key=lambda d: d[0])
    result = {
        "pods": args.pods,
        "nodes": args.nodes,
        "observe_seconds": round(seconds, 3),
        "observe_seconds_all": [round(r[0], 3) for r in runs],
        "peak_rss_mb_delta": round(max(r[1] for r in runs), 1),
        "pages": pages,
        "target_seconds": 1.0,
        "target_rss_mb": 200,
        "diagnose_seconds": round(diagnose_seconds, 3),
        "diagnose_seconds_all": [round(d[0], 3) for d in diagnoses],
        "diagnose_cpu_seconds": round(diagnose_cpu, 3),
        "load_average": round(os.getloadavg()[0], 2),
        "diagnose_policy": args.policy,
        "diagnose_steps": len(report["steps"]),
        "diagnose_observations": report.get("observations"),
        "diagnose_findings": len(report["findings"]),
        "diagnose_target_seconds": 5.0,
        "cli_start_seconds": round(cli_start, 3),
        "python_start_seconds": round(python_start, 3),
        "diagnose_per_cli_start": round(diagnose_seconds / cli_start, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"observe of {args.pods} pods: {seconds:.3f}s over {pages} pages, "
            f"peak RSS +{result['peak_rss_mb_delta']} MB; diagnose {diagnose_seconds:.3f}s wall "
            f"({result['diagnose_steps']} steps, {result['diagnose_observations']} observation(s)), "
            f"{result['diagnose_per_cli_start']}x the CLI's start ({cli_start:.3f}s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
