"""Reading user task files: ``.tsv``, ``.csv`` or ``.jsonl``, whose columns say the task's kind
(STS pairs with scores, labelled pairs, reranking candidates, labelled texts), or a folder: BEIR
(retrieval) or train and test files (classification).

Errors name the file, the line and the column. Extra columns (and extra trailing fields on a
row, as in STS-B's own files) are ignored; a row too short to hold a needed column is an error.
"""

from __future__ import annotations

import math
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.data import beir, labelled_files, labelled_texts
from harness.data.local_data import LocalData, TextPairs, file_digest
from harness.data.records import Table, cell, fail, read_rows, text_cell
from harness.paths import status

SUFFIXES = (".tsv", ".csv", ".jsonl")
COLUMNS = ("sentence1", "sentence2", "score")
KIND = "task file"
MAX_SCORE = 1e12  # beyond this, mteb's normalisation of the scores loses every digit


@dataclass(frozen=True)
class StsPairs(TextPairs):
    """Sentence pairs with human scores, read from one file."""

    kind: ClassVar[str] = "STS"
    counted: ClassVar[str] = "scores"
    scores: list[float]


def _score(path: Path, line: int, row: dict[str, object]) -> float:
    raw = cell(path, line, row, "score", KIND)
    where = f", line {line}, column score"
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise fail(path, where, f"{raw!r} is not a number.", KIND)
    shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
    try:
        value = float(raw)
    except ValueError:
        raise fail(path, where, f"{shown} is not a number.", KIND) from None
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or abs(value) > MAX_SCORE:
        raise fail(
            path,
            where,
            f"{shown} is not a finite number of magnitude at most {MAX_SCORE:g}, so it cannot be a score.",
            KIND,
        )
    return value


def read_sts_file(path: Path) -> StsPairs:
    """Parse and check one STS task file; the task is named after the file's stem."""
    return sts_pairs(path, read_rows(path, SUFFIXES, KIND))


def sts_pairs(path: Path, table: Table) -> StsPairs:
    table.require(path, COLUMNS, KIND)
    rows = table.rows
    if len(rows) < 2:
        raise fail(path, "", f"{len(rows)} data row(s); an STS task needs at least 2.", KIND)
    s1 = [text_cell(path, line, row, "sentence1", KIND) for line, row in rows]
    s2 = [text_cell(path, line, row, "sentence2", KIND) for line, row in rows]
    scores = [_score(path, line, row) for line, row in rows]
    if min(scores) == max(scores):
        raise fail(path, "", "every score is equal, so a correlation is undefined.", KIND)
    return StsPairs(
        name=path.stem, path=path.resolve(), digest=file_digest(path), sentence1=s1, sentence2=s2, scores=scores
    )


def read_task_file(path: Path) -> LocalData:
    """One task from the user's file (its columns say the kind) or folder: BEIR (retrieval), or
    train and test files (classification)."""

    info = status(path, KIND)  # a path the OS refuses is one message here, never an OSError
    if info is not None and stat.S_ISDIR(info.st_mode):
        if labelled_texts.has_split_files(path) and status(path / "corpus.jsonl", KIND) is None:
            return labelled_texts.read_classification_folder(path)
        return beir.read_beir_folder(path)
    table = read_rows(path, SUFFIXES, KIND)
    columns = table.names()
    if "score" in columns and "label" not in columns:  # STS, or near enough that its reader names what is missing
        return sts_pairs(path, table)
    for reader in (labelled_files.labelled_pairs, labelled_files.rerankings, labelled_texts.labelled_texts):
        task = reader(path, table, columns)
        if task is not None:
            return task
    raise fail(path, ", line 1", f"the columns ({', '.join(sorted(columns)) or 'none'}) make no task: {KINDS}", KIND)


KINDS = (
    "STS needs sentence1, sentence2, score; pair classification sentence1, sentence2, label (or MSRP's "
    "Quality, #1 String, #2 String); reranking query, document, label (or TREC QA's qtext, atext, label), "
    "or query, positive, negative as JSON lists; clustering text, label; classification text, label, split "
    "(train/test), or a folder of train and test files; retrieval is a BEIR folder (docs/tasks.md)."
)
