"""How a task's data version reads in the record, shared by the evaluation (which writes it) and
the leaderboard (which reads it): a quick check (``--limit N``, the first N items of each
evaluated split) is other data than the whole task, marked ``<version>+first<N>``, and is never
compared or ranked with full runs."""

from __future__ import annotations

MARK = "+first"  # what a limited task's version ends with, before N


def limited_version(version: str, limit: int | None) -> str:
    """The version of a task's data cut to its first ``limit`` items (unchanged without a limit)."""
    return version if limit is None else f"{version}{MARK}{limit}"


def is_quick_check(version: str | None) -> bool:
    """Whether ``version`` is that of a quick check (the first N items of a task's data)."""
    return version is not None and MARK in version
