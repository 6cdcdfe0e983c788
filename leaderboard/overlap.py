"""How listings show a score whose task's texts the run trained on (``scores.contamination``)."""

from __future__ import annotations

from typing import Any

SEEN_MARK = "†"
SEEN_NOTE = f"{SEEN_MARK}: some of the task's texts are in the run's training texts (harness show RUN says how many)"


def seen(run: dict[str, Any], task: str) -> bool:
    """Whether the run's score of ``task`` was measured to overlap its training texts."""
    return bool((run.get("contamination") or {}).get(task, {}).get("any"))


def seen_mark(run: dict[str, Any], task: str) -> str:
    return f" {SEEN_MARK}" if seen(run, task) else ""


def overlap_text(measured: dict[str, Any] | None) -> str:
    """A score's measured overlap with the training texts, for ``harness show``."""
    if measured is None:
        return "-"
    if not measured["any"]:
        return f"none of {measured['texts']}"
    return (
        f"{100 * measured['any']:.1f}% of {measured['texts']} "
        f"(exact {100 * measured['exact']:.1f}%, {measured['n']}-gram {100 * measured['ngram']:.1f}%)"
    )
