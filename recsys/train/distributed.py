"""Data-parallel training under ``torchrun``: which process this is, and the process group.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; with WORLD_SIZE above 1 the learner
wraps the model in DistributedDataParallel and each rank trains on its shard.
NCCL joins GPUs, gloo joins CPU processes.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """Rank 0 evaluates, prints, writes the artifact and registers the version."""
        return self.rank == 0


def current() -> Distributed | None:
    """The torchrun context, joining the process group on first use; None when not launched so."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return Distributed(rank, local_rank, world_size)


def device_for(context: Distributed) -> torch.device:
    """Each rank's own GPU, or the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", context.local_rank)
    return torch.device("cpu")


def finish() -> None:
    """Wait for every rank, then end the process group.

    Garbage first: a DistributedDataParallel wrapper caught in a reference cycle is
    freed by the collector, not when the learner drops it; freed after the group, its
    gloo work aborted the rank ("terminate called without an active exception", one
    run in several on 2 busy cores).
    """
    if not dist.is_initialized():
        return
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
