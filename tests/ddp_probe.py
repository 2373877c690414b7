"""Helper for tests/test_distributed.py: trains through `rl.train.train` as one rank (under torchrun)
or as the one-process reference, and writes what the tests compare into OUT_DIR.

    torchrun --standalone --nproc-per-node 2 tests/ddp_probe.py same-seeds OUT_DIR
    python tests/ddp_probe.py reference OUT_DIR
    torchrun --standalone --nproc-per-node 2 tests/ddp_probe.py normal-seeds OUT_DIR

`same-seeds` forces every rank onto rank 0's seeds, so each rank collects the very batch the
reference collects with half the envs: DDP's averaged gradient is then that batch's gradient, and
the final weights must be bitwise the reference's. `normal-seeds` records each rank's first
observations (rank r must see the clusters a one-process run gives envs r*n..(r+1)*n-1) and its
final weights, which DDP keeps identical although the ranks learn from different data.
"""

import sys
from pathlib import Path

import numpy as np
import torch

from rl.distributed import World
from rl.puffer_env import ClusterPufferEnv
from rl.sim.scenario import ScenarioConfig
from rl.train import TrainConfig, train

LOCAL_ENVS = 32
LOCAL_MINIBATCH = 512
LOCAL_STEPS = 32 * 32 * 3  # three updates
LOCAL_IMITATION = 32 * 32 * 2  # two segments of the expert's steps per cluster, imitated first


def config(ranks: int) -> TrainConfig:
    return TrainConfig(
        total_steps=LOCAL_STEPS * ranks,
        imitation_steps=LOCAL_IMITATION * ranks,
        num_envs=LOCAL_ENVS * ranks,
        num_steps=32,
        minibatch_size=LOCAL_MINIBATCH * ranks,
        checkpoint_interval=3600.0,
        scenario=ScenarioConfig(max_steps=30),
    )


class SameSeeds(World):
    """Every rank simulates and samples exactly like rank 0."""

    def sim_seed(self, seed: int, local_envs: int) -> int:
        return seed

    def torch_seed(self, seed: int) -> int:
        return seed


def save_weights(result, out: Path, name: str) -> None:
    torch.save({k: v.clone() for k, v in result.policy.state_dict().items()}, out / name)


def main(mode: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if mode == "same-seeds":
        world = SameSeeds.from_env()
        result = train(config(world.size), run_id="probe", world=world)
        if world.is_main:
            save_weights(result, out, "distributed.pt")
    elif mode == "reference":
        # one process, with the thread count each of two ranks on this host gets
        result = train(config(1), run_id="probe", world=World(local_size=2))
        save_weights(result, out, "reference.pt")
    elif mode == "normal-seeds":
        world = World.from_env()
        seen = {}
        original = ClusterPufferEnv.reset

        def recording_reset(self, seed=None):
            result = original(self, seed)
            seen.setdefault("first", self.observations.copy())
            return result

        ClusterPufferEnv.reset = recording_reset
        result = train(config(world.size), run_id="probe", world=world)
        np.save(out / f"rank{world.rank}.npy", seen["first"])
        save_weights(result, out, f"rank{world.rank}.pt")  # DDP keeps the ranks' weights equal
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
