"""Search for blind routines: fixed cycles of actions that never read the observation, each naming a
fixed set of faults at every step.

    python benchmarks/open_loop_search.py --json
    {"best": {...}, "best_naming_everything": {...}, "random": {...}, "expert": {...}, ...}

A blind routine that resolves clusters with something wrong would mean the simulator rewards
something other than diagnosis. A routine is a cycle of actions (WAIT, the agent's report, ends the
episode) and what it names: nothing, every fault type, or one fault type, the same at every step.
The search tries every cycle of length 1 and 2 with every naming, several thousand random cycles of
length 3 to 16 over all 15 actions, and a local search (replace, insert, delete, swap, repeat a
slice, change what it names) from the best of them, ranked by the clusters with a fault they
resolve. Candidates are screened on 100 seeds, the best re-scored on all 500 tuning seeds, and the
winners are reported on 1,000 other seeds of the default scenario, next to the random policy and the
scripted expert on the same seeds: resolution over every episode, over the episodes that start with
a fault (`faulty`) and over the healthy ones. On a healthy cluster "nothing is wrong" is the right
report, so a routine that WAITs at once naming nothing resolves exactly the healthy share.

Targets: the best blind routine, and the best that names every fault type, resolve at most 5% of
the episodes that start with a fault; random at most 5%; the expert at least 99%.
"""

import argparse
import json
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rl.actions import ACTION_NAMES, NUM_ACTIONS, ClusterAction  # noqa: E402
from rl.diagnosis import named_masks, policy_beliefs  # noqa: E402
from rl.faults import FAULT_NAMES, NUM_FAULTS  # noqa: E402
from rl.policies import ExpertPolicy, RandomPolicy  # noqa: E402
from rl.sim import kernels, layout  # noqa: E402
from rl.sim.batch import ClusterBatch, step_buffers  # noqa: E402
from rl.sim.scenario import ScenarioConfig  # noqa: E402

MAX_LENGTH = 16
TUNING_SEED = 10_000_000
REPORT_SEED = 20_000_000
MAX_CLUSTERS_PER_BATCH = 40_000


EVERYTHING = (1 << NUM_FAULTS) - 1
# What a blind routine may name: nothing, every fault type, or one fault type.
NAMINGS = (0, EVERYTHING) + tuple(1 << f for f in range(NUM_FAULTS))


def naming_name(mask: int) -> str:
    if mask == 0:
        return "nothing"
    if mask == EVERYTHING:
        return "everything"
    return FAULT_NAMES[mask.bit_length() - 1]


def routine_rates(routines, seed: int, episodes: int, scenario: ScenarioConfig) -> np.ndarray:
    """Per routine (cycle, naming): the share of episodes resolved, of those that start with a fault,
    and of those that start healthy (clusters seeded `seed`, `seed + 1`, ...): shape (len, 3)."""
    per_batch = max(1, MAX_CLUSTERS_PER_BATCH // episodes)
    rates = []
    for start in range(0, len(routines), per_batch):
        rates.append(_rates_of_batch(routines[start : start + per_batch], seed, episodes, scenario))
    return np.concatenate(rates)


def _rates_of_batch(routines, seed, episodes, scenario) -> np.ndarray:
    k = len(routines)
    n = k * episodes
    batch = ClusterBatch(n, scenario)
    for c in range(k):  # every routine faces the same clusters
        kernels.seed_streams(batch.state.rng[c * episodes : (c + 1) * episodes], np.uint64(seed))
    obs, rewards, terminals, truncations = step_buffers(n)
    batch.reset(obs)
    faulty = batch.state.active != 0
    table = np.zeros((k, MAX_LENGTH), dtype=np.int32)
    lengths = np.zeros(k, dtype=np.int64)
    named = np.zeros(k, dtype=np.int64)
    for c, (cycle, naming) in enumerate(routines):
        table[c, : len(cycle)] = cycle
        lengths[c] = len(cycle)
        named[c] = naming
    which = np.repeat(np.arange(k), episodes)
    cycle_length = lengths[which]
    named_rows = named[which]
    running = np.ones(n, dtype=bool)
    outcome = np.zeros(n, dtype=np.int8)
    for t in range(scenario.max_steps):
        actions = table[which, t % cycle_length]
        batch.step(actions, obs, rewards, terminals, truncations, auto_reset=False, named=named_rows)
        ended = running & (batch.state.outcome != layout.OUTCOME_RUNNING)
        outcome[ended] = batch.state.outcome[ended]
        running &= ~ended
        if not running.any():
            break
    won = (outcome == layout.OUTCOME_RESOLVED).reshape(k, episodes)
    faulty = faulty.reshape(k, episodes)
    return np.stack([won.mean(axis=1), _share(won, faulty), _share(won, ~faulty)], axis=1)


def _share(won, where) -> np.ndarray:
    return np.where(where.any(axis=1), (won & where).sum(axis=1) / np.maximum(where.sum(axis=1), 1), np.nan)


def policy_rates(policy, seed: int, episodes: int, scenario: ScenarioConfig) -> list[float]:
    """The same three shares for a policy that reads its input."""
    batch = ClusterBatch(episodes, scenario)
    batch.seed(seed)
    obs, rewards, terminals, truncations = step_buffers(episodes)
    batch.reset(obs)
    faulty = batch.state.active != 0
    policy.reset(None)
    running = np.ones(episodes, dtype=bool)
    outcome = np.zeros(episodes, dtype=np.int8)
    for _ in range(scenario.max_steps):
        actions = policy.act(obs)
        named = named_masks(policy_beliefs(policy, episodes))
        batch.step(actions, obs, rewards, terminals, truncations, auto_reset=False, named=named)
        ended = running & (batch.state.outcome != layout.OUTCOME_RUNNING)
        outcome[ended] = batch.state.outcome[ended]
        running &= ~ended
        if not running.any():
            break
    won = outcome == layout.OUTCOME_RESOLVED
    return [float(won.mean()), float(won[faulty].mean()), float(won[~faulty].mean())]


def random_routines(rng: np.random.Generator, count: int) -> list:
    """Random cycles of length 3..16 with a random naming; half end in a WAIT (without one no routine
    can win)."""
    routines = []
    for j in range(count):
        length = int(rng.integers(3, MAX_LENGTH + 1))
        cycle = rng.integers(0, NUM_ACTIONS, size=length)
        if j % 2 == 0:
            cycle[-1] = ClusterAction.WAIT
        routines.append((tuple(int(a) for a in cycle), int(NAMINGS[int(rng.integers(0, len(NAMINGS)))])))
    return routines


def mutate(rng: np.random.Generator, routine) -> tuple:
    cycle, naming = routine
    if rng.random() < 0.2:  # name something else
        return cycle, int(NAMINGS[int(rng.integers(0, len(NAMINGS)))])
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
    return tuple(c), naming


def search(
    scenario: ScenarioConfig, tuning_episodes: int, screen_episodes: int, rounds: int, seed: int, namings
) -> dict:
    """The routine that resolves the most tuning episodes that start with a fault, among those whose
    naming is in `namings`."""
    rng = np.random.default_rng(seed)
    tried: dict[tuple, float] = {}

    def screen(routines):
        fresh = [r for r in dict.fromkeys(routines) if r not in tried and r[1] in namings]
        if fresh:
            for r, rates in zip(fresh, routine_rates(fresh, TUNING_SEED, screen_episodes, scenario), strict=True):
                tried[r] = float(rates[1])

    scored: dict[tuple, float] = {}  # faulty-episode rates on every tuning seed

    def score(routines):
        fresh = [r for r in dict.fromkeys(routines) if r not in scored]
        if fresh:
            for r, rates in zip(fresh, routine_rates(fresh, TUNING_SEED, tuning_episodes, scenario), strict=True):
                scored[r] = float(rates[1])

    short = [(a,) for a in range(NUM_ACTIONS)] + [(a, b) for a in range(NUM_ACTIONS) for b in range(NUM_ACTIONS)]
    screen([(c, m) for c in short for m in namings] + random_routines(rng, 3000))
    score(sorted(tried, key=tried.get, reverse=True)[:30])
    for _ in range(rounds):
        parents = sorted(scored, key=scored.get, reverse=True)[:10]
        children = [mutate(rng, p) for p in parents for _ in range(20)]
        screen(children)
        score(sorted((c for c in children if c in tried), key=tried.get, reverse=True)[:10])
    best = max(scored, key=scored.get)
    return {"best": best, "tuning_rate": scored[best], "candidates": len(tried)}


def report(routine, rates, found=None) -> dict:
    cycle, naming = routine
    entry = {
        "cycle": [ACTION_NAMES[a] for a in cycle],
        "names": naming_name(naming),
        "resolution_rate": float(rates[0]),
        "faulty_resolution_rate": float(rates[1]),
        "healthy_resolution_rate": float(rates[2]),
    }
    if found:
        entry["tuning_faulty_rate"] = found["tuning_rate"]
        entry["candidates"] = found["candidates"]
    return entry


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
    episodes = args.report_episodes
    any_naming = search(scenario, args.tuning_episodes, args.screen_episodes, args.rounds, args.seed, set(NAMINGS))
    everything = search(scenario, args.tuning_episodes, args.screen_episodes, args.rounds, args.seed, {EVERYTHING})
    bests = [any_naming["best"], everything["best"], ((ClusterAction.WAIT,), 0)]
    rates = routine_rates(bests, REPORT_SEED, episodes, scenario)
    expert = policy_rates(ExpertPolicy(episodes), REPORT_SEED, episodes, scenario)
    random = policy_rates(RandomPolicy(episodes, seed=1), REPORT_SEED, episodes, scenario)
    shares = ("resolution_rate", "faulty_resolution_rate", "healthy_resolution_rate")
    result = {
        "best": report(bests[0], rates[0], any_naming),
        "best_naming_everything": report(bests[1], rates[1], everything),
        "wait_at_once": report(bests[2], rates[2]),
        "random": dict(zip(shares, random, strict=True)),
        "expert": dict(zip(shares, expert, strict=True)),
        "tuning_seeds": [TUNING_SEED, TUNING_SEED + args.tuning_episodes - 1],
        "report_seeds": [REPORT_SEED, REPORT_SEED + episodes - 1],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
