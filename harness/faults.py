"""Named fault-injection points, for the reliability tests (as SQLite's own test suite does).

``HARNESS_KILL_AT=NAME`` makes the process SIGKILL itself when it reaches the point ``NAME``
(optionally ``NAME:N`` for the N-th time). ``HARNESS_RAISE_AT=NAME@RANK`` raises a RuntimeError
there instead, on the process of that rank only (``NAME`` alone: on every process). Unset, every
point is a cheap no-op. Points: ``load`` (backbone loaded), ``train-step`` (after an optimizer
step), ``encode`` (a rank about to encode its shard of a data-parallel evaluation), ``evaluate``
(a task evaluated, its score not yet written) and ``score-write`` (inside the score's database
transaction).
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def point(name: str) -> None:
    raised = os.environ.get("HARNESS_RAISE_AT")
    if raised:
        target, _, rank = raised.partition("@")
        if target == name and rank in ("", os.environ.get("RANK", "0")):
            raise RuntimeError(f"fault injected at {name}")
    wanted = os.environ.get("HARNESS_KILL_AT")
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
