"""Per-phase cost: wall seconds, items, tokens and peak memory (CUDA max allocated, else peak RSS)."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass
class Phase:
    phase: str
    seconds: float = 0.0
    items: int | None = None
    tokens: int | None = None
    peak_memory_bytes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def measure(name: str, device: Any = None) -> Iterator[Phase]:
    """Time the block; the caller may fill ``items`` and ``tokens`` on the yielded record."""
    on_cuda = device is not None and getattr(device, "type", None) == "cuda"
    if on_cuda:
        import torch

        torch.cuda.reset_peak_memory_stats(device)
    record = Phase(name)
    start = time.perf_counter()
    try:
        yield record
    finally:
        record.seconds = time.perf_counter() - start
        if on_cuda:
            import torch

            record.peak_memory_bytes = int(torch.cuda.max_memory_allocated(device))
        else:
            record.peak_memory_bytes = peak_rss_bytes()


_PEAKS: dict[tuple[str, str], float] = {}
PEAK_BUDGET_S = 3.0


def matmul_peak(device: Any, dtype: Any) -> float:
    """FLOP/s of the best of a few large square matrix products on ``device`` in ``dtype``,
    measured once per process: the practical ceiling that MFU is taken against (2048 x 2048 on a
    CPU, 8192 x 8192 on a GPU). On a CPU a dtype other than float32 uses 1024 x 1024, and the
    repeats stop after ``PEAK_BUDGET_S`` once two are timed: without native bf16 (no AVX512-BF16
    or AMX) one 2048 product takes a minute."""
    import torch

    key = (str(device), str(dtype))
    if key not in _PEAKS:
        on_cuda = getattr(device, "type", None) == "cuda"
        size, repeats = (8192, 20) if on_cuda else (2048 if dtype == torch.float32 else 1024, 10)
        generator = torch.Generator(device=device).manual_seed(0)
        a = torch.randn(size, size, device=device, dtype=dtype, generator=generator)
        b = torch.randn(size, size, device=device, dtype=dtype, generator=generator)
        best, began = float("inf"), time.perf_counter()
        for index in range(repeats + 1):  # the first is a warm-up
            if not on_cuda and index > 2 and time.perf_counter() - began > PEAK_BUDGET_S:
                break
            if on_cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            torch.mm(a, b)
            if on_cuda:
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
        _PEAKS[key] = 2.0 * size**3 / best
    return _PEAKS[key]
