"""What evaluating a run's tasks cost, from each task's ``evaluate:<task>`` timing and the run's
model size: ``harness leaderboard --efficiency`` and the latest runs of ``harness browse``.

A sum is over every task asked about or none: a run lacking a task's timing (or a number in it)
gets None there, never a partial sum that would read as the whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

EVALUATE = "evaluate:"  # the phase of a task's evaluation: evaluate:<task>
FIELDS = ("seconds", "items", "tokens", "peak_memory_bytes", "texts_requested", "memo_hits", "cache_hits")
HEADERS = ("Eval s", "Texts/s", "Tokens/s", "Memo %", "Cache %", "Peak MiB", "Dim", "Params")


@dataclass(frozen=True)
class RunCost:
    """A run's model size and, per task, the numbers of its latest evaluate timing (``FIELDS``)."""

    n_parameters: int | None = None
    embed_dim: int | None = None
    tasks: dict[str, dict[str, float | None]] = field(default_factory=dict)


def run_costs(rows: Iterable[Sequence[Any]]) -> dict[int, RunCost]:
    """Rows of (run id, n_parameters, embed_dim, phase, seconds, items, tokens, peak_memory_bytes,
    details as a dict), a run's timings in the order recorded (phase None: a run without one), as
    each run's cost; a task timed twice (a resumed run) keeps its last row."""
    costs: dict[int, RunCost] = {}
    for run_id, n_parameters, embed_dim, phase, seconds, items, tokens, peak, details in rows:
        cost = costs.setdefault(run_id, RunCost(n_parameters, embed_dim))
        if phase is not None and phase.startswith(EVALUATE):
            details = details or {}
            requested = details.get("texts_requested")
            cache_hits = details.get(
                "cache_hits", 0 if requested is not None else None
            )  # rows from before the cache: none
            values = (seconds, items, tokens, peak, requested, details.get("memo_hits"), cache_hits)
            cost.tasks[phase.removeprefix(EVALUATE)] = dict(zip(FIELDS, values))
    return costs


def _values(rows: list[dict[str, float | None]] | None, name: str) -> list[float] | None:
    """``name`` of every row, or None where a row (or the rows) lack it."""
    if rows is None or any(row[name] is None for row in rows):
        return None
    return [row[name] for row in rows]


def _total(values: list[float] | None) -> float | None:
    return None if values is None else sum(values)


def _ratio(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


def efficiency(cost: RunCost, tasks: Sequence[str]) -> dict[str, float | None]:
    """The evaluation of ``tasks``: its seconds, texts and tokens per second, the share of
    requested texts the memo and the embedding cache answered (0-1), its peak memory, and the
    run's model size. Where nothing was encoded (every vector from the memo or the cache) there is
    no rate to tell: None."""
    rows = [cost.tasks[task] for task in tasks] if tasks and all(task in cost.tasks for task in tasks) else None
    names = ("seconds", "items", "tokens", "texts_requested", "memo_hits", "cache_hits")
    seconds, items, tokens, requested, hits, cached = (_total(_values(rows, name)) for name in names)
    peaks = _values(rows, "peak_memory_bytes")
    return {
        "eval_seconds": seconds,
        "texts_per_s": _ratio(items or None, seconds),
        "tokens_per_s": _ratio(tokens if items else None, seconds),
        "memo_hit_rate": _ratio(hits, requested),
        "cache_hit_rate": _ratio(cached, requested),
        "peak_memory_bytes": None if peaks is None else max(peaks),
        "embed_dim": cost.embed_dim,
        "n_parameters": cost.n_parameters,
    }


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def parameters_label(n: int | None) -> str:
    """Parameters in millions (``134.5M``), or thousands below a million (``22.7K``)."""
    if n is None:
        return "-"
    return f"{n / 1e6:.1f}M" if n >= 10**6 else f"{n / 1e3:.3g}K"


def efficiency_cells(numbers: dict[str, float | None]) -> list[str]:
    """``efficiency``'s numbers as shown, under ``HEADERS``."""
    peak = numbers["peak_memory_bytes"]
    return [
        _number(numbers["eval_seconds"], ".2f"),
        _number(numbers["texts_per_s"], ".1f"),
        _number(numbers["tokens_per_s"], ".0f"),
        _percent(numbers["memo_hit_rate"]),
        _percent(numbers["cache_hit_rate"]),
        "-" if peak is None else f"{peak / 2**20:.0f}",
        _number(numbers["embed_dim"], "d"),
        parameters_label(numbers["n_parameters"]),
    ]
