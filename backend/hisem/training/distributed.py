"""Data-parallel training with PyTorch's own engine: `torchrun --nproc_per_node N hisem train ...`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; without them training runs
as one process. gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistContext:
    """Join the process group when launched by torchrun; a no-op context otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    log.info("rank %d/%d joined the %s process group", rank, world_size, backend)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def broadcast_object(ctx: DistContext, obj: object) -> object:
    """Rank 0's object on every rank (e.g. the validation score deciding the best checkpoint)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_object(ctx: DistContext, obj: object) -> list[object]:
    """Every rank's ``obj``, in rank order, on every rank (e.g. RNG states for last.pt)."""
    if not ctx.enabled:
        return [obj]
    out: list[object] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def parameter_checksum(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in name order: equal on all ranks iff weights are in sync.

    Buffers (BatchNorm running statistics) are left out on purpose: DDP broadcasts rank 0's buffers
    at the start of every forward, so after the last step each rank holds its own last update, and
    only rank 0's (the one saved in checkpoints) matters.
    """
    digest = hashlib.sha256()
    for name, param in sorted(module.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def gather_checksums(ctx: DistContext, module: torch.nn.Module) -> list[str]:
    """Every rank's parameter checksum, gathered on all ranks."""
    return [str(c) for c in gather_object(ctx, parameter_checksum(module))]
