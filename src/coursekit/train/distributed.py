"""Data-parallel training under ``torchrun``: one process per device, the same trainer.

A script calls :func:`setup` once; under ``torchrun`` it joins the process group (NCCL on
GPUs, Gloo on CPUs) and pins the process to its GPU, otherwise it does nothing and
describes a single process. :func:`coursekit.train.fit` then notices the process group and

* wraps the model in ``DistributedDataParallel`` (gradients averaged across processes),
* gives each process its slice of every global batch of a
  :class:`~coursekit.data.TensorLoader` (:class:`ShardedLoader`), so ``batch_size`` keeps
  meaning the global batch and the run matches a single process with that batch,
* sums metrics over processes, and lets only rank 0 print and write checkpoints.

See ``docs/distributed.md`` for launch commands on one or several machines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from coursekit.util.device import select_device


@dataclass(frozen=True)
class Context:
    """Where this process sits: its rank, how many processes there are, its device."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """``torchrun`` sets ``RANK`` and ``WORLD_SIZE`` for each process it starts."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    """A process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def setup(backend: str | None = None) -> Context:
    """Join the ``torchrun`` process group (idempotent); a no-op for a plain ``python`` run.

    ``backend`` defaults to ``"nccl"`` when CUDA is present and ``"gloo"`` otherwise.
    """
    if not launched_by_torchrun():
        return context()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() and backend != "gloo"
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs are visible; "
                "start at most one process per GPU (torchrun --nproc_per_node <number of GPUs>)."
            )
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if use_cuda else "gloo"))
    return context()


def context() -> Context:
    """The current process's :class:`Context` (world size 1 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        on_gpu = dist.get_backend() == "nccl"
        device = torch.device("cuda", local_rank) if on_gpu else torch.device("cpu")
        return Context(dist.get_rank(), local_rank, dist.get_world_size(), device)
    return Context(0, 0, 1, select_device())


def cleanup() -> None:
    """Leave the process group (call at the end of a ``torchrun`` script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    return context().is_main


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over processes (identity for a single process)."""
    if active():
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_gather_object(obj):
    """``[obj from rank 0, obj from rank 1, ...]`` (``[obj]`` for a single process)."""
    if not active():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


class ShardedLoader:
    """This process's share of every global batch from a ``TensorLoader``.

    Every process draws the same global batch (same seed, same epoch, same augmentation)
    and keeps its contiguous slice, ``torch.tensor_split`` style. With gradients averaged
    by DDP and the loss weighted by ``local size × world size / global size`` (the trainer
    reads :attr:`global_batch_size` for that), an update equals the single-process update
    on the global batch. For training, a final global batch smaller than the world size is
    dropped (some process would get no example); evaluation passes ``drop_small_last=False``.
    """

    def __init__(self, loader, rank: int, world_size: int, *, drop_small_last: bool = True):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of size {world_size}")
        self.loader, self.rank, self.world_size = loader, rank, world_size
        self.drop_small_last = drop_small_last
        self.global_batch_size = 0

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        batches = len(self.loader)
        if not self.drop_small_last:
            return batches
        size = getattr(self.loader, "dataset_size", None)
        batch_size = getattr(self.loader, "batch_size", None)
        if batches and size is not None and batch_size and not getattr(self.loader, "drop_last",
                                                                        False):
            last = size - (batches - 1) * batch_size
            if last < self.world_size:
                return batches - 1
        return batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch_index, (x, y) in enumerate(self.loader):
            if batch_index >= len(self):
                return
            self.global_batch_size = len(y)
            yield (torch.tensor_split(x, self.world_size)[self.rank],
                   torch.tensor_split(y, self.world_size)[self.rank])

