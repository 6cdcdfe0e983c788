"""Task files with 0/1 labels: pair classification (two texts and whether they match) and
reranking (a query, one candidate document a row, and whether it is relevant; or JSON lists).

Column names are matched lower-cased, with the layouts of two classic sets as aliases: MSRP's
``Quality``, ``#1 String``, ``#2 String`` and TREC QA's ``qtext``, ``atext``, ``label``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.data.local_data import LocalData, TextPairs, file_digest
from harness.data.records import Table, cell, fail, text_cell

KIND = "task file"
PAIR_COLUMNS = {
    "sentence1": ("sentence1", "#1 string"),
    "sentence2": ("sentence2", "#2 string"),
    "label": ("label", "quality"),
}
RERANK_COLUMNS = {
    "query": ("query", "qtext", "question"),
    "document": ("document", "atext", "candidate", "passage"),
    "label": ("label",),
}


@dataclass(frozen=True)
class LabelledPairs(TextPairs):
    """Text pairs with a 0/1 label (1: a paraphrase, a duplicate, an entailment...)."""

    kind: ClassVar[str] = "PairClassification"
    counted: ClassVar[str] = "labels"
    labels: list[int]


@dataclass(frozen=True)
class Rerankings(LocalData):
    """Queries, each with the candidates to rank: the relevant ones and the others."""

    kind: ClassVar[str] = "Reranking"
    counted: ClassVar[str] = "queries"
    queries: list[str]
    positives: list[list[str]]
    negatives: list[list[str]]

    def scored_by(self, protocol: str) -> tuple[Rerankings, int]:
        """The queries ``protocol`` scores, and how many it leaves out: ``answered`` those with a
        relevant candidate (the answer-selection literature's protocol), ``clean`` those with a
        relevant and an irrelevant one, ``all`` every query (mteb's: one without a relevant
        candidate scores 0)."""

        keep = [
            i
            for i, (p, n) in enumerate(zip(self.positives, self.negatives))
            if protocol == "all" or (p and (n or protocol == "answered"))
        ]
        chosen = {name: [getattr(self, name)[i] for i in keep] for name in ("queries", "positives", "negatives")}
        return dataclasses.replace(self, **chosen), len(self.queries) - len(keep)


def _columns(columns: set[str], wanted: dict[str, tuple[str, ...]]) -> dict[str, str] | None:
    """Role -> the file's column for it, or None where a role has none."""
    found = {role: next((name for name in names if name in columns), None) for role, names in wanted.items()}
    return None if None in found.values() else found  # type: ignore[return-value]


def _label(path: Path, line: int, row: dict[str, object], column: str) -> int:
    raw = cell(path, line, row, column, KIND)
    value = raw.strip() if isinstance(raw, str) else raw
    if isinstance(value, bool) or value not in (0, 1, "0", "1"):
        shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
        raise fail(path, f", line {line}, column {column}", f"{shown} is not a label: use 0 or 1.", KIND)
    return int(value)


def labelled_pairs(path: Path, table: Table, columns: set[str]) -> LabelledPairs | None:
    """The pair-classification task of ``table``, or None where its columns are not that."""
    names = _columns(columns, PAIR_COLUMNS)
    if names is None:
        return None
    rows = table.rows
    s1 = [text_cell(path, line, row, names["sentence1"], KIND) for line, row in rows]
    s2 = [text_cell(path, line, row, names["sentence2"], KIND) for line, row in rows]
    labels = [_label(path, line, row, names["label"]) for line, row in rows]
    if len(set(labels)) < 2:
        raise fail(
            path,
            "",
            f"{len(rows)} pair(s), all labelled {labels[0] if labels else '-'}: a pair task needs both labels.",
            KIND,
        )
    return LabelledPairs(path.stem, path.resolve(), file_digest(path), s1, s2, labels)


def rerankings(path: Path, table: Table, columns: set[str]) -> Rerankings | None:
    """The reranking task of ``table`` (a row per candidate, or JSON lists), or None where its
    columns are not that. Queries keep the order of their first row."""
    if table.columns is None and {"query", "positive", "negative"} <= columns:
        return _listed(path, table)
    names = _columns(columns, RERANK_COLUMNS)
    if names is None:
        return None
    grouped: dict[str, tuple[list[str], list[str]]] = {}
    for line, row in table.rows:
        query = text_cell(path, line, row, names["query"], KIND)
        document = text_cell(path, line, row, names["document"], KIND)
        grouped.setdefault(query, ([], []))[1 - _label(path, line, row, names["label"])].append(document)
    return _checked(path, list(grouped), [p for p, _ in grouped.values()], [n for _, n in grouped.values()])


def _listed(path: Path, table: Table) -> Rerankings:
    queries, positives, negatives = [], [], []
    for line, row in table.rows:
        queries.append(text_cell(path, line, row, "query", KIND))
        for column, into in (("positive", positives), ("negative", negatives)):
            value = cell(path, line, row, column, KIND)
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise fail(path, f", line {line}, column {column}", "must be a list of non-empty texts.", KIND)
            into.append(list(value))
    return _checked(path, queries, positives, negatives)


def _checked(path: Path, queries: list[str], positives: list[list[str]], negatives: list[list[str]]) -> Rerankings:
    scored = sum(1 for p, n in zip(positives, negatives) if p and n)
    if scored == 0:
        raise fail(
            path, "", "no query has both a relevant and an irrelevant candidate, so there is nothing to rank.", KIND
        )
    return Rerankings(path.stem, path.resolve(), file_digest(path), queries, positives, negatives)
