"""Simulator throughput: the vectorized core against a loop over ClusterEnv, in one run, one core.

    python benchmarks/sim_throughput.py --json
    {"vectorized_sps": ..., "single_env_sps": ..., "ratio": ..., "num_envs": 4096}

Targets: at least 5 million steps/s vectorized, and at least 30x the single env.
"""

import argparse
import json
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rl.env import ClusterEnv  # noqa: E402
from rl.sim.batch import started_batch  # noqa: E402
from rl.sim.scenario import ScenarioConfig  # noqa: E402


def vectorized_sps(num_envs: int, seconds: float) -> float:
    batch, (obs, rewards, terminals, truncations) = started_batch(num_envs, ScenarioConfig(), 0)
    actions = np.random.default_rng(0).integers(0, 15, size=(64, num_envs), dtype=np.int32)
    batch.step(actions[0], obs, rewards, terminals, truncations, auto_reset=True)  # compile
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for row in actions:
            batch.step(row, obs, rewards, terminals, truncations, auto_reset=True)
        steps += len(actions) * num_envs
    return steps / (time.perf_counter() - start)


def single_env_sps(seconds: float) -> float:
    env = ClusterEnv()
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 15, size=4096)
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(int(a))
            if terminated or truncated:
                env.reset()
        steps += len(actions)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for both measurements
    except (AttributeError, OSError):
        pass
    single = single_env_sps(args.seconds)
    vectorized = vectorized_sps(args.num_envs, args.seconds)
    result = {
        "vectorized_sps": round(vectorized),
        "single_env_sps": round(single),
        "ratio": round(vectorized / single, 1),
        "num_envs": args.num_envs,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>15}: {value:,}")


if __name__ == "__main__":
    main()
