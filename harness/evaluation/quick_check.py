"""How much of a task is evaluated: ``--limit N``, its first N items of each evaluated split, a
quick check (its version: :mod:`harness.task_versions`); and how many texts its evaluation
encodes (the progress bar's total).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask


def _evaluated_splits(task: AbsTask) -> Iterator[tuple[MutableMapping[str, Any], str, Any]]:
    """(holder, split name, data) of every split ``task`` evaluates, in every subset."""
    splits = set(task.metadata.eval_splits)

    def walk(node: MutableMapping[str, Any]) -> Iterator[tuple[MutableMapping[str, Any], str, Any]]:
        for key, value in list(node.items()):
            if key in splits:
                yield node, key, value
            elif isinstance(value, MutableMapping):
                yield from walk(value)

    if isinstance(task.dataset, MutableMapping):
        yield from walk(task.dataset)


def limit_task(task: AbsTask, limit: int) -> None:
    """Keep the first ``limit`` rows of each split ``task`` evaluates (in every subset); other
    splits (a classifier's training split) stay whole. Data that is not a table per split is
    refused: cutting it row by row would not make a smaller task of the same kind."""
    from datasets import Dataset

    found = 0
    for holder, key, value in _evaluated_splits(task):
        if not isinstance(value, Dataset):
            raise HarnessError(
                f"--limit: task {task.metadata.name} ({task.metadata.type}) keeps its {key} split as "
                f"{type(value).__name__}, not a table of items; run it without --limit."
            )
        holder[key] = value.select(range(min(limit, len(value))))
        found += 1
    if not found:
        raise HarnessError(
            f"--limit: task {task.metadata.name} has no evaluation split to cut; run it without --limit."
        )


TEXTS_PER_ITEM = {"STS": 2, "PairClassification": 2, "Clustering": 1}  # texts encoded per item of an evaluated split


def texts_to_encode(task: AbsTask) -> int | None:
    """At most how many texts evaluating ``task`` encodes (the memo may skip repeats): where its
    type says (a pair task: two per item), or a retrieval split's corpus and queries; None where
    neither does (the progress bar then counts without a total)."""
    from datasets import Dataset

    splits = [value for _, _, value in _evaluated_splits(task)]
    per_item = TEXTS_PER_ITEM.get(task.metadata.type)
    if per_item is not None:
        return per_item * sum(len(value) for value in splits if isinstance(value, Dataset)) or None
    searched = [value for value in splits if isinstance(value, MutableMapping) and {"corpus", "queries"} <= set(value)]
    if not searched:
        return None
    return sum(len(value["corpus"]) + len(value["queries"]) for value in searched) or None
