"""Retrieval data in a BEIR folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``),
``queries.jsonl`` (``_id``, ``text``) and ``qrels/test.tsv`` (a header, then ``query-id``,
``corpus-id``, ``score``: the relevance, an integer; 0 is not relevant)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.data.local_data import LocalData
from harness.data.records import cell, fail, read_rows, text_cell
from harness.errors import HarnessError
from harness.paths import status

KIND = "retrieval folder"
FILES = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")


@dataclass(frozen=True)
class RetrievalData(LocalData):
    """A corpus, queries, and which documents are relevant to each query (and how much)."""

    kind: ClassVar[str] = "Retrieval"
    counted: ClassVar[str] = "qrels"
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> document id -> relevance


def _ident(path: Path, line: int, row: dict[str, object], column: str, kind: str) -> str:
    value = cell(path, line, row, column, kind)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise fail(path, f", line {line}, column {column}", f"{value!r} is not an id.", kind)
    return str(value).strip()


def _texts(path: Path, with_title: bool) -> dict[str, object]:
    table = read_rows(path, (".jsonl",), KIND)
    found: dict[str, object] = {}
    for line, row in table.rows:
        ident = _ident(path, line, row, "_id", KIND)
        if ident in found:
            raise fail(path, f", line {line}, column _id", f"the id {ident!r} appears more than once.", KIND)
        text = text_cell(path, line, row, "text", KIND)
        title = row.get("title") or ""
        if not isinstance(title, str):
            raise fail(path, f", line {line}, column title", f"{title!r} is not text.", KIND)
        found[ident] = (title, text) if with_title else text
    return found


def _qrels(path: Path, queries: dict[str, str], corpus: dict[str, tuple[str, str]]) -> dict[str, dict[str, int]]:
    table = read_rows(path, (".tsv",), KIND)
    table.require(path, ("query-id", "corpus-id", "score"), KIND)
    qrels: dict[str, dict[str, int]] = {}
    for line, row in table.rows:
        query, document = (_ident(path, line, row, c, KIND) for c in ("query-id", "corpus-id"))
        for ident, known, column in ((query, queries, "query-id"), (document, corpus, "corpus-id")):
            if ident not in known:
                raise fail(
                    path,
                    f", line {line}, column {column}",
                    f"{ident!r} is not an id of the folder's {column[:-3]} file.",
                    KIND,
                )
        raw = str(cell(path, line, row, "score", KIND)).strip()
        if not raw.lstrip("-").isdigit() or len(raw) > 9:
            raise fail(path, f", line {line}, column score", f"{raw!r} is not a whole-number relevance.", KIND)
        qrels.setdefault(query, {})[document] = int(raw)
    if not any(score > 0 for docs in qrels.values() for score in docs.values()):
        raise fail(path, "", "no query has a relevant document (a score above 0).", KIND)
    return qrels


def read_beir_folder(folder: Path) -> RetrievalData:
    """Parse and check a BEIR folder; the task is named after the folder."""
    missing = [name for name in FILES if status(folder / name, KIND) is None]
    if missing:
        raise HarnessError(f"{KIND} {folder}: missing {', '.join(missing)} (a BEIR folder holds {', '.join(FILES)}).")
    corpus = _texts(folder / "corpus.jsonl", with_title=True)
    queries = _texts(folder / "queries.jsonl", with_title=False)
    qrels = _qrels(folder / FILES[2], queries, corpus)  # type: ignore[arg-type]
    digest = hashlib.sha256()
    for name in FILES:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return RetrievalData(folder.name, folder.resolve(), digest.hexdigest(), corpus, queries, qrels)  # type: ignore[arg-type]
