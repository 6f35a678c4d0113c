"""Work split across processes and machines started by torchrun, as the trainer does.

torchrun sets ``RANK`` and ``WORLD_SIZE`` (and the rendezvous variables) in every process it
starts. Each rank takes a fixed, disjoint share of a sorted list (every ``world``-th item
from its rank on), so re-running with the same folder and world size gives every rank the
same files. At the end the ranks' results are gathered over gloo (TCP, so across machines
too) for rank 0 to report. Without torchrun everything is one rank and torch.distributed is
never touched.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

from .errors import InputError

__all__ = ["World", "current_world", "launched_world"]

T = TypeVar("T")

# The ranks meet only at the start and at the end; a rank whose share takes hours longer than
# another's must not time the others out at the final gather (gloo's default is 30 minutes).
# A rank that dies takes the others down through torchrun, not through this timeout.
_GATHER_TIMEOUT = datetime.timedelta(days=7)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``: disjoint across ranks, together all of them."""
        return list(items[self.rank :: self.size])

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (a collective: every rank must call it)."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def launched_world() -> tuple[int, int]:
    """(rank, world size) as torchrun set them in the environment, else (0, 1); nothing joined."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return 0, 1
    try:
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    except ValueError as e:
        raise InputError(f"RANK and WORLD_SIZE must be integers (as torchrun sets them): {e}") from e
    if not 0 <= rank < size:
        raise InputError(f"RANK {rank} is outside WORLD_SIZE {size}")
    return rank, size


def current_world() -> World:
    """The world torchrun started this process in (joined over gloo), or a world of one."""
    rank, size = launched_world()
    if size == 1:
        return World()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=_GATHER_TIMEOUT)
    return World(rank, size)
