"""Data parallelism as an optimizer sees it (``harness run --num-processes N``): where this process
stands, and the collectives a data-parallel ``train`` calls. Part of the plugin contract (re-exported
as ``harness.api.parallel``); the launching and the run's division of labour live in
:mod:`harness.running.distributed`.

In one process every collective returns its input untouched and communicates nothing, so an
optimizer written with them computes exactly what it computes without them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

@dataclass
class DataParallel:
    """Where this process stands: rank ``rank`` of ``world_size`` (one process: 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


_state = DataParallel()


def state() -> DataParallel:
    return _state


def set_state(new: DataParallel) -> None:
    """Set by :func:`harness.running.distributed.init` once the process group is joined."""
    global _state
    _state = new


def shard(items: list) -> list:
    """This rank's contiguous slice of a global batch (the batch itself in one process)."""
    if not _state.enabled:
        return items
    size = len(items) // _state.world_size
    return items[_state.rank * size : (_state.rank + 1) * size]


def broadcast_parameters(*models) -> None:
    """Rank 0's weights on every rank (they are built identically; this makes sure)."""
    if not _state.enabled:
        return
    for model in models:
        for tensor in list(model.parameters()) + list(model.buffers()):
            torch.distributed.broadcast(tensor.data, src=0)


def average_gradients(optimizer) -> None:
    """All-reduce every gradient to its mean over ranks (one flat collective), as DDP does."""
    if not _state.enabled:
        return
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    flat /= _state.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(metrics: dict[str, float], device: torch.device | None = None) -> dict[str, float]:
    """Each scalar's mean over ranks (same keys, same order on every rank); the dict itself in one process."""
    if not _state.enabled:
        return metrics
    values = torch.tensor([float(v) for v in metrics.values()], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.SUM)
    return dict(zip(metrics, (values / _state.world_size).tolist()))


def any_over_ranks(flag: bool, device: torch.device | None = None) -> bool:
    """Whether ``flag`` holds on any rank (the same answer on every rank): a check that stops a
    run -- NaN in one rank's batch -- stops every rank at the same point; ``flag`` in one process."""
    if not _state.enabled:
        return flag
    value = torch.tensor([int(flag)], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())
