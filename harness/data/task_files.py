"""Reading user STS task files: ``.tsv``, ``.csv`` or ``.jsonl`` with sentence1, sentence2, score.

Errors name the file, the line and the column. Extra columns (and extra trailing fields on a
row, as in STS-B's own files) are ignored; a row too short to hold a needed column is an error.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from harness.data.records import cell, fail, read_rows, text_cell

SUFFIXES = (".tsv", ".csv", ".jsonl")
COLUMNS = ("sentence1", "sentence2", "score")
KIND = "task file"
MAX_SCORE = 1e12  # beyond this, mteb's normalisation of the scores loses every digit


@dataclass(frozen=True)
class StsPairs:
    """Sentence pairs with human scores, read from one file."""

    name: str
    path: Path
    digest: str  # sha256 of the file's bytes
    sentence1: list[str]
    sentence2: list[str]
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
        raise fail(path, where, f"{shown} is not a finite number of magnitude at most {MAX_SCORE:g}, so it cannot be a score.", KIND)
    return value


def read_sts_file(path: Path) -> StsPairs:
    """Parse and check one STS task file; the task is named after the file's stem."""
    table = read_rows(path, SUFFIXES, KIND)
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
        name=path.stem,
        path=path.resolve(),
        digest=hashlib.sha256(path.read_bytes()).hexdigest(),
        sentence1=s1,
        sentence2=s2,
        scores=scores,
    )
