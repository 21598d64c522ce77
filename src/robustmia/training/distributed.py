"""Data-parallel training of one model: ``torchrun --nproc-per-node N -m robustmia train ...``.

torchrun starts N processes and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; the loop
finds them here and joins one process group (NCCL between GPUs, gloo on CPUs). Every rank
draws the same global batch and the same random numbers from the run's generator and keeps
its own contiguous shard of them, so the augmentations and the adversarial examples of the
shards are exactly those of one process on the whole batch, each made by the rank that
trains on it. DistributedDataParallel averages the gradients. Rank 0 alone writes the run
folder (config, split, log, checkpoints); every rank reads a checkpoint to resume.

BatchNorm statistics are per shard, as in plain DDP (rank 0's running statistics are saved).
Certified training with random projections draws its projections per shard, so it is not
the single-process estimate; everything else matches one process on the same global batch
up to floating-point summation order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
from torch import nn

from robustmia.errors import UserError
from robustmia.seeding import Draw


def world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise UserError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number; start data-parallel runs with torchrun") from None


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@dataclass(frozen=True)
class ProcessGroup:
    rank: int
    world: int
    device: torch.device

    @classmethod
    def from_env(cls, device: str = "auto") -> Optional["ProcessGroup"]:
        """The process group torchrun asked for (joined on first use), or None in a single process."""
        world = world_size()
        if world <= 1:
            return None
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        cuda = device != "cpu" and torch.cuda.is_available()
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"device {device!r} asked for, but this machine has no CUDA GPU; use --device cpu")
        dev = torch.device("cuda", local) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
        return cls(rank, world, dev)

    def wrap(self, model: nn.Module) -> nn.Module:
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def check_batches(self, n_examples: int, batch_size: int) -> None:
        """Refuse, before training, a run whose batches cannot all be split over the processes."""
        smallest = min(batch_size, n_examples % batch_size or batch_size)
        if smallest < self.world:
            raise UserError(f"a batch of {smallest} examples cannot be split over {self.world} processes; "
                            f"choose a --batch-size of at least {self.world} that leaves no smaller last batch")

    def shard(self, n: int) -> slice:
        """This rank's contiguous rows of a global batch of ``n`` (the first ranks take one more when n % world)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def shard_draw(self, draw: Draw, n: int) -> Draw:
        """``draw`` for the whole batch of ``n`` rows, of which this rank keeps its own."""
        rows = self.shard(n)

        def sharded(fn, shape, device):
            return draw(fn, (n, *shape[1:]), device)[rows]

        return sharded

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    def close(self) -> None:
        """Wait for every rank (rank 0 may still be writing), then leave the group."""
        dist.barrier()
        dist.destroy_process_group()
