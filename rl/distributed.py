"""One training run over several processes: torchrun's ranks, DDP, and the collectives the loop needs.

torchrun starts one process per rank and tells it where it stands through the environment
(RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE); `World.from_env` reads that. The run's
settings stay global: each rank simulates its share of `num_envs` (the clusters a one-process
run gives envs rank*n..(rank+1)*n-1), collects its share of the batch and of the step budget,
and DDP averages the gradients, so the updates and the learning-rate schedule are a one-process
run's. Every decision that leads to a collective (log, checkpoint, stop) comes out of one
all-reduce that every rank makes after every update, never from one rank's clock alone.
"""

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

# A collective that waits longer than this for a peer fails the run. A peer whose process dies is
# noticed at once (torchrun's agent on its host, the closed connection elsewhere); this bounds only
# a host that vanishes without closing its connections, and must exceed the longest solo work of
# rank 0 between collectives (a checkpoint upload, bounded by the S3 timeout).
PEER_TIMEOUT = datetime.timedelta(seconds=300)


class DistributedError(Exception):
    """The run cannot go on because of its ranks (a peer died, a collective failed); one line."""


@dataclass(frozen=True)
class World:
    """Where this process stands among the run's processes; one process by default."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @classmethod
    def from_env(cls) -> "World":
        """The world torchrun describes in the environment, or a single process without it."""
        try:
            size = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
            local_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(size)))
        except ValueError:
            raise DistributedError(
                "WORLD_SIZE, RANK, LOCAL_RANK and LOCAL_WORLD_SIZE must be integers (they are set by torchrun)"
            ) from None
        if not (size >= 1 and 0 <= rank < size and 0 <= local_rank < local_size <= size):
            raise DistributedError(
                f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={size} "
                f"LOCAL_RANK={local_rank} LOCAL_WORLD_SIZE={local_size}"
            )
        return cls(rank, size, local_rank, local_size)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def cpu_threads(self) -> int:
        """torch threads for this rank: the cores shared by the ranks on this host, at most 4."""
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        return max(1, min(4, cores // self.local_size))

    def sim_seed(self, seed: int, local_envs: int) -> int:
        """Cluster i of this rank is cluster rank*n+i of a one-process run (clusters are seeded seed+i)."""
        return seed + self.rank * local_envs

    def torch_seed(self, seed: int) -> int:
        """Each rank samples its own actions and minibatches."""
        return seed + self.rank


def shard_sizes(num_envs: int, minibatch_size: int, total_steps: int, num_steps: int, size: int):
    """This rank's share of the global settings: (num_envs, minibatch_size, total_steps).

    Raises ValueError naming the setting that does not divide by the world size.
    """
    if num_envs % size:
        raise ValueError(f"num_envs ({num_envs}) must divide evenly by the world size ({size})")
    local_minibatch = minibatch_size // size
    if minibatch_size % size or local_minibatch % num_steps:
        raise ValueError(
            f"minibatch_size ({minibatch_size}) must divide evenly by the world size ({size}) "
            f"into multiples of num_steps ({num_steps})"
        )
    if total_steps % size:
        raise ValueError(f"total_steps ({total_steps}) must divide evenly by the world size ({size})")
    return num_envs // size, local_minibatch, total_steps // size


def setup(world: World, device: str) -> None:
    """Join the process group: gloo on CPU, NCCL on CUDA with one GPU per local rank."""
    if not world.distributed:
        return
    if device == "cuda":
        if torch.cuda.device_count() < world.local_size:
            raise DistributedError(
                f"{world.local_size} ranks on this host need as many GPUs, torch sees {torch.cuda.device_count()}"
            )
        torch.cuda.set_device(world.local_rank)
    backend = "nccl" if device == "cuda" else "gloo"
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend=backend, timeout=PEER_TIMEOUT)
        except (RuntimeError, ValueError) as err:
            raise DistributedError(f"rank {world.rank}: cannot join the other ranks: {_first_line(err)}") from None


def teardown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(policy: torch.nn.Module, world: World, device: str) -> torch.nn.Module:
    """DDP around the policy, keeping what PuffeRL calls on it (forward_eval, hidden_size).

    DDP broadcasts rank 0's parameters, so every rank starts from the same network.
    """
    if not world.distributed:
        return policy
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [world.local_rank] if device == "cuda" else None
    model = DistributedDataParallel(policy, device_ids=device_ids)
    model.forward_eval = policy.forward_eval  # acting needs no gradient sync
    model.hidden_size = policy.hidden_size
    return model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The network itself (state_dict keys without DDP's `module.` prefix)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def all_sum(values: np.ndarray, world: World, device: str) -> np.ndarray:
    """Sum a float64 vector over the ranks (every rank must call this at the same point)."""
    if not world.distributed:
        return values
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def broadcast(obj, world: World):
    """Rank 0's `obj` on every rank (plain data: dicts, tensors, numbers)."""
    if not world.distributed:
        return obj
    box = [obj if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj, world: World) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not world.distributed:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def peer_failure(err: BaseException, world: World) -> DistributedError:
    return DistributedError(
        f"rank {world.rank}: training stopped because another rank failed or vanished: {_first_line(err)}"
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    if not text:
        return type(err).__name__
    line = text.splitlines()[0]
    if line.startswith("[") and "] " in line:  # gloo and NCCL start with their source file: [.../pair.cc:553]
        line = line.split("] ", 1)[1]
    return line.split(". This is typically", 1)[0][:300]
