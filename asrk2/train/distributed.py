"""torchrun-launched DistributedDataParallel: set-up, collectives, teardown.

torchrun (``python -m torch.distributed.run``) starts one process per device
and sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and
MASTER_PORT; a plain ``python local/train.py`` sets none of them and trains in
a single process without any process group.
"""

import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator, List, TypeVar, cast

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "dist_info_from_env",
    "init_distributed",
    "cleanup_distributed",
    "barrier",
    "all_reduce",
    "all_gather_objects",
    "until_any_rank_ends",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class DistInfo:
    """Where this process stands in the job.

    Attributes:
      rank: global rank.
      world_size: number of processes in the job.
      local_rank: rank on this machine (selects the GPU).
      local_world_size: processes on this machine (shares the CPU cores).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when there is a process group (world size > 1)."""
        return self.world_size > 1


def dist_info_from_env() -> DistInfo:
    """Reads torchrun's environment variables; defaults describe one process."""
    env = os.environ
    world = int(env.get("WORLD_SIZE", 1))
    return DistInfo(
        rank=int(env.get("RANK", 0)),
        world_size=world,
        local_rank=int(env.get("LOCAL_RANK", 0)),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", world)),
    )


def init_distributed(backend: str = "auto", use_cuda: bool = False) -> DistInfo:
    """Joins the process group when launched by torchrun with world size > 1.

    Args:
      backend: ``auto`` (nccl with CUDA, else gloo), ``gloo`` or ``nccl``.
      use_cuda: whether this job trains on GPUs (one per local rank).
    Returns:
      This process's rank information.
    """
    info = dist_info_from_env()
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    if not info.distributed or dist.is_initialized():
        return info
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if backend == "nccl" and not use_cuda:
        raise ValueError("the nccl backend needs CUDA; use gloo to train on CPUs")
    dist.init_process_group(backend, init_method="env://")
    log.info(
        "Rank %d of %d (local %d of %d), backend %s",
        info.rank, info.world_size, info.local_rank, info.local_world_size, backend,
    )  # fmt: skip
    return info


def cleanup_distributed() -> None:
    """Leaves the process group, if any."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Waits for every rank; a no-op in a single process."""
    if dist.is_initialized():
        dist.barrier()


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In-place sum (or ``max``/``min``) over ranks; returns the tensor."""
    if dist.is_initialized():
        ops = {
            "sum": dist.ReduceOp.SUM,
            "max": dist.ReduceOp.MAX,
            "min": dist.ReduceOp.MIN,
        }
        dist.all_reduce(tensor, op=ops[op])
    return tensor


def all_gather_objects(obj: Any) -> List[Any]:
    """Every rank's ``obj`` in rank order (a one-element list without a group)."""
    if not dist.is_initialized():
        return [obj]
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def until_any_rank_ends(
    batches: Iterator[T], device: torch.device, epoch: int = 0
) -> Iterator[T]:
    """``batches`` until the first rank runs out, then stop on every rank.

    Ranks that read their own data (e.g. their own Shar shards) get slightly
    different numbers of batches; a rank that went on alone would wait
    forever in the gradient all-reduce. One 1-element all-reduce per batch
    lets them end the epoch together (without a process group: ``batches``).

    Args:
      batches: this rank's batches.
      device: where the flag tensor lives (nccl reduces only CUDA tensors).
      epoch: for the log line of a rank whose batches were not all used.
    """
    while True:
        batch = next(batches, None)
        have = torch.tensor([0.0 if batch is None else 1.0], device=device)
        if float(all_reduce(have, "min")[0]) == 0.0:
            if batch is not None:
                rank = dist.get_rank() if dist.is_initialized() else 0
                log.warning("Rank %d: epoch %d ends with another rank's data; its "
                            "remaining batches are not used", rank, epoch)  # fmt: skip
            return
        yield cast(T, batch)
