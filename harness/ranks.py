"""The process group, for training and evaluation alike: rank and world size from the launcher's
environment, one ``is_main`` gate for every write, and the few collectives every rank calls at
the same points.

Works the same under ``torchrun`` and ``accelerate launch`` (both set RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT) and as a plain single process. CPU processes use gloo,
GPU processes NCCL (whose tensors live on the rank's GPU).

A step every rank takes (encoding a shard, evaluating a task) ends with :func:`agree`: each rank
says whether its part failed, and if one did, every rank raises :class:`RankFailed` naming it, so
no rank is left waiting in a collective that another will never join.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from harness.errors import HarnessError, RunFailed

if TYPE_CHECKING:
    import torch


class RankFailed(RunFailed):
    """One rank's part of a step failed; every rank raises this, naming that rank."""


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


def _backend(device_type: str) -> str:
    return "nccl" if device_type == "cuda" else "gloo"


def init_single(device_type: str) -> None:
    """A process group of one, for sharding engines (FSDP, DeepSpeed) run by a single process,
    e.g. one GPU with parameters offloaded to the CPU. No-op when a group exists."""

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


def cores_per_process() -> int:
    """The CPU cores this process may run on, shared evenly with the other processes of its node
    (at least one): torchrun leaves each process ``OMP_NUM_THREADS=1`` otherwise."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world().world_size))
    return max(1, cores // max(1, local))


def collective_device() -> torch.device:
    """Where this rank's tensors for a collective live: its GPU under NCCL, else the CPU."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", world().local_rank)
    return torch.device("cpu")


def _said(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, (HarnessError, RunFailed)) else f"{type(exc).__name__}: {exc}"


def agree(error: BaseException | None, facts: Any = None) -> list[Any]:
    """Every rank's ``facts`` (picklable), in rank order, once every rank has said whether its part
    of a step failed (``error``). If any did, every rank raises :class:`RankFailed` naming the first
    failed rank and its message (chained to ``error`` on that rank). A single process re-raises
    ``error`` itself."""
    import torch.distributed as dist

    info = world()
    if not info.enabled:
        if error is not None:
            raise error
        return [facts]
    reports: list[Any] = [None] * info.world_size
    dist.all_gather_object(reports, (None if error is None else _said(error), facts))
    failed = [(rank, message) for rank, (message, _) in enumerate(reports) if message is not None]
    if failed:
        rank, message = failed[0]
        others = f" (ranks {', '.join(str(r) for r, _ in failed[1:])} failed too)" if len(failed) > 1 else ""
        raise RankFailed(f"rank {rank} of {info.world_size} failed: {message}{others}") from error
    return [facts for _, facts in reports]


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` (picklable) on every rank; ``obj`` itself for a single process. The hook for
    anything one rank reads and all must agree on (e.g. which texts a shared cache already holds:
    every rank must then ask the encoder for the same texts)."""
    import torch.distributed as dist

    if not world().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    import torch.distributed as dist

    if world().enabled:
        dist.barrier()


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
