"""Search for blind routines: fixed cycles of actions that never read the observation.

    python benchmarks/open_loop_search.py --json
    {"best_cycle": [...], "resolution_rate": ..., "random_rate": ..., "expert_rate": ..., ...}

A blind routine that resolves the default scenario would mean the simulator rewards something other
than diagnosis. The search tries every cycle of length 1 and 2, several thousand random cycles of
length 3 to 16 over all 15 actions, and a local search (replace, insert, delete, swap, repeat a
slice) from the best of them. Candidates are screened on 100 seeds, the best re-scored on all 500
tuning seeds, and the winner is reported on 1,000 other seeds, next to the random policy and the
scripted expert on the same seeds.

Targets: best blind cycle at most 20% resolved, random at most 10%, the expert at least 97%.
"""

import argparse
import json
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rl.actions import ACTION_NAMES, NUM_ACTIONS, ClusterAction  # noqa: E402
from rl.evaluate import evaluate_policy  # noqa: E402
from rl.policies import ExpertPolicy, RandomPolicy  # noqa: E402
from rl.sim import core  # noqa: E402
from rl.sim.scenario import ScenarioConfig  # noqa: E402
from rl.state import OBS_SIZE  # noqa: E402

MAX_LENGTH = 16
TUNING_SEED = 10_000_000
REPORT_SEED = 20_000_000
MAX_CLUSTERS_PER_BATCH = 40_000


def cycle_rates(cycles: list[tuple[int, ...]], seed: int, episodes: int, scenario: ScenarioConfig) -> np.ndarray:
    """The share of `episodes` clusters (seeds `seed`, `seed + 1`, ...) each cycle resolves."""
    per_batch = max(1, MAX_CLUSTERS_PER_BATCH // episodes)
    rates = []
    for start in range(0, len(cycles), per_batch):
        rates.append(_rates_of_batch(cycles[start : start + per_batch], seed, episodes, scenario))
    return np.concatenate(rates)


def _rates_of_batch(cycles, seed, episodes, scenario) -> np.ndarray:
    k = len(cycles)
    n = k * episodes
    batch = core.ClusterBatch(n, scenario)
    for c in range(k):  # every cycle faces the same clusters
        core.seed_streams(batch.rng[c * episodes : (c + 1) * episodes], np.uint64(seed))
    obs = np.zeros((n, OBS_SIZE), dtype=np.float32)
    rewards = np.zeros(n, dtype=np.float32)
    terminals = np.zeros(n, dtype=bool)
    truncations = np.zeros(n, dtype=bool)
    batch.reset(obs)
    table = np.zeros((k, MAX_LENGTH), dtype=np.int32)
    lengths = np.zeros(k, dtype=np.int64)
    for c, cycle in enumerate(cycles):
        table[c, : len(cycle)] = cycle
        lengths[c] = len(cycle)
    which = np.repeat(np.arange(k), episodes)
    cycle_length = lengths[which]
    running = np.ones(n, dtype=bool)
    outcome = np.zeros(n, dtype=np.int8)
    for t in range(scenario.max_steps):
        actions = table[which, t % cycle_length]
        batch.step(actions, obs, rewards, terminals, truncations, auto_reset=False)
        ended = running & (batch.outcome != core.OUTCOME_RUNNING)
        outcome[ended] = batch.outcome[ended]
        running &= ~ended
        if not running.any():
            break
    return (outcome == core.OUTCOME_RESOLVED).reshape(k, episodes).mean(axis=1)


def random_cycles(rng: np.random.Generator, count: int) -> list[tuple[int, ...]]:
    """Random cycles of length 3..16; half of them hold a WAIT (without one no cycle can win)."""
    cycles = []
    for j in range(count):
        length = int(rng.integers(3, MAX_LENGTH + 1))
        cycle = rng.integers(0, NUM_ACTIONS, size=length)
        if j % 2 == 0:
            cycle[-1] = ClusterAction.WAIT
        cycles.append(tuple(int(a) for a in cycle))
    return cycles


def mutate(rng: np.random.Generator, cycle: tuple[int, ...]) -> tuple[int, ...]:
    c = list(cycle)
    kind = int(rng.integers(0, 5))
    if kind == 0 or len(c) == 1:  # replace one action
        c[int(rng.integers(0, len(c)))] = int(rng.integers(0, NUM_ACTIONS))
    elif kind == 1 and len(c) < MAX_LENGTH:  # insert one
        c.insert(int(rng.integers(0, len(c) + 1)), int(rng.integers(0, NUM_ACTIONS)))
    elif kind == 2 and len(c) > 1:  # delete one
        del c[int(rng.integers(0, len(c)))]
    elif kind == 3:  # swap two
        i, j = rng.integers(0, len(c), size=2)
        c[i], c[j] = c[j], c[i]
    else:  # repeat a slice (a remedy twice, a read before a remedy, ...)
        i = int(rng.integers(0, len(c)))
        j = int(rng.integers(i + 1, len(c) + 1))
        c = (c + c[i:j])[:MAX_LENGTH]
    return tuple(c)


def search(scenario: ScenarioConfig, tuning_episodes: int, screen_episodes: int, rounds: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    tried: dict[tuple[int, ...], float] = {}

    def screen(cycles):
        fresh = [c for c in dict.fromkeys(cycles) if c not in tried]
        if fresh:
            for c, r in zip(fresh, cycle_rates(fresh, TUNING_SEED, screen_episodes, scenario), strict=True):
                tried[c] = float(r)

    scored: dict[tuple[int, ...], float] = {}  # rates on every tuning seed

    def score(cycles):
        fresh = [c for c in dict.fromkeys(cycles) if c not in scored]
        if fresh:
            for c, r in zip(fresh, cycle_rates(fresh, TUNING_SEED, tuning_episodes, scenario), strict=True):
                scored[c] = float(r)

    singles = [(a,) for a in range(NUM_ACTIONS)]
    pairs = [(a, b) for a in range(NUM_ACTIONS) for b in range(NUM_ACTIONS)]
    screen(singles + pairs + random_cycles(rng, 3000))
    score(sorted(tried, key=tried.get, reverse=True)[:30])
    for _ in range(rounds):
        parents = sorted(scored, key=scored.get, reverse=True)[:10]
        children = [mutate(rng, p) for p in parents for _ in range(20)]
        screen(children)
        score(sorted(children, key=lambda c: tried.get(c, 0.0), reverse=True)[:10])
    best = max(scored, key=scored.get)
    return {"best": best, "tuning_rate": scored[best], "candidates": len(tried)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuning-episodes", type=int, default=500)
    parser.add_argument("--screen-episodes", type=int, default=100)
    parser.add_argument("--report-episodes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=12, help="local-search rounds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search itself")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    scenario = ScenarioConfig()
    started = time.perf_counter()
    found = search(scenario, args.tuning_episodes, args.screen_episodes, args.rounds, args.seed)
    best = found["best"]
    episodes = args.report_episodes
    result = {
        "best_cycle": [ACTION_NAMES[a] for a in best],
        "resolution_rate": float(cycle_rates([best], REPORT_SEED, episodes, scenario)[0]),
        "random_rate": evaluate_policy(RandomPolicy(episodes, seed=1), episodes, REPORT_SEED, scenario).resolution_rate,
        "expert_rate": evaluate_policy(ExpertPolicy(episodes), episodes, REPORT_SEED, scenario).resolution_rate,
        "tuning_rate": found["tuning_rate"],
        "candidates": found["candidates"],
        "tuning_seeds": [TUNING_SEED, TUNING_SEED + args.tuning_episodes - 1],
        "report_seeds": [REPORT_SEED, REPORT_SEED + episodes - 1],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
