"""Process-group plumbing: rank and world size from the launcher's environment, one ``is_main``
gate for every write, gradient averaging, and the one gather-with-gradient utility.

Works the same under ``torchrun`` and ``accelerate launch`` (both set RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT) and as a plain single process. CPU processes use gloo,
GPU processes NCCL.

Gradient scale convention
-------------------------
Each rank's loss is the mean over its *local* examples. :func:`gather_with_grad` sums, in its
backward pass, the gradients that every rank's loss sends to this rank's tensor, and
:func:`average_gradients` then divides the summed parameter gradients by the world size. Together
they give exactly the gradient of the mean loss over the global batch, as one process holding the
whole batch would compute it (tested in ``tests/test_distributed.py``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def from_environment() -> DistInfo:
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init(device_type: str) -> DistInfo:
    """Join the process group the launcher described (no-op for a single process)."""
    import torch.distributed as dist

    info = from_environment()
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend=_backend(device_type))
    return info


def use_all_cores(device: torch.device) -> None:
    """Rank 0 evaluates alone once the other ranks have left: on a CPU, give it every core this
    process may run on (torchrun set ``OMP_NUM_THREADS=1`` for each of its processes)."""
    import torch

    if device.type == "cpu" and hasattr(os, "sched_getaffinity"):
        torch.set_num_threads(len(os.sched_getaffinity(0)))


def _backend(device_type: str) -> str:
    return "nccl" if device_type == "cuda" else "gloo"


def exit_process(code: int | str | None) -> NoReturn:
    """End a process that joined a process group, skipping C++ static destructors.

    With torch 2.13 and gloo, a process that had finished its work sometimes died at exit with
    SIGABRT ("terminate called without an active exception", after Python had finalised), even
    with the group destroyed first; torchrun then reports the run as failed. Everything this
    process wrote is closed by then, so it flushes its streams and leaves with ``os._exit``.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def init_single(device_type: str) -> None:
    """A process group of one, for sharding engines (FSDP, DeepSpeed) run by a single process,
    e.g. one GPU with parameters offloaded to the CPU. No-op when a group exists."""
    import socket

    import torch.distributed as dist

    if dist.is_initialized():
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group(backend=_backend(device_type), init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)


def world() -> DistInfo:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


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
    device = torch.device("cuda", info.local_rank) if dist.get_backend() == "nccl" else None
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [v / info.world_size for v in tensor.tolist()]


def barrier() -> None:
    import torch.distributed as dist

    if world().enabled:
        dist.barrier()
