"""Training's collectives: gradient averaging, the one gather-with-gradient utility, and means
over ranks. The process group itself (rank, world size, ``init``, ``barrier``, ``exit_process``)
is :mod:`harness.ranks`, shared with evaluation; its names are importable from here too.

Gradient scale convention
-------------------------
Each rank's loss is the mean over its *local* examples. :func:`gather_with_grad` sums, in its
backward pass, the gradients that every rank's loss sends to this rank's tensor, and
:func:`average_gradients` then divides the summed parameter gradients by the world size. Together
they give exactly the gradient of the mean loss over the global batch, as one process holding the
whole batch would compute it (tested in ``tests/test_distributed.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.ranks import (
    DistInfo,
    barrier,
    collective_device,
    exit_process,
    from_environment,
    init,
    init_single,
    world,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "DistInfo",
    "average_gradients",
    "barrier",
    "exit_process",
    "from_environment",
    "gather_with_grad",
    "init",
    "init_single",
    "mean_across_ranks",
    "means_across_ranks",
    "world",
]


def _make_gather() -> type:
    import torch
    import torch.distributed as dist

    class _GatherWithGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            ctx.rank, ctx.rows = dist.get_rank(), tensor.shape[0]
            parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, tensor.contiguous())
            return torch.cat(parts, dim=0)

        @staticmethod
        def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            grad = grad.contiguous().clone()
            dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # gloo has no reduce_scatter
            return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]

    return _GatherWithGrad


_gather_fn: type | None = None


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (same shape on every rank) across ranks in rank order.

    This rank's rows keep their autograd history; in backward, the gradients all ranks send to
    this rank's rows are summed (see the module docstring for the scale convention).
    """
    global _gather_fn
    if not world().enabled:
        return tensor
    if _gather_fn is None:
        _gather_fn = _make_gather()
    return _gather_fn.apply(tensor)


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """All-reduce the gradients of ``parameters`` and divide by the world size."""
    import torch
    import torch.distributed as dist

    info = world()
    if not info.enabled:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world_size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def mean_across_ranks(value: float) -> float:
    """The mean of a Python number over ranks (for logging the global loss)."""
    return means_across_ranks(value)[0]


def means_across_ranks(*values: float) -> list[float]:
    """The means of several Python numbers over ranks, in one all-reduce."""
    import torch
    import torch.distributed as dist

    info = world()
    if not info.enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [v / info.world_size for v in tensor.tolist()]
