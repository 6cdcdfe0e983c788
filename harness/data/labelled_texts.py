"""Texts with class labels: clustering (one set) and classification (a train and a test part).

A file with ``text`` and ``label`` columns is a clustering task; with a ``split`` column too
(``train`` or ``test`` on each row) it is a classification task, as is a folder holding one
``train`` and one ``test`` file (.tsv, .csv or .jsonl). A label is any non-empty text or whole
number (a class name or id); labels are numbered in sorted order for mteb.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.data.local_data import LocalData, file_digest
from harness.data.records import Row, Table, cell, fail, read_rows, text_cell
from harness.errors import HarnessError
from harness.paths import status

KIND = "task file"
TEXT_COLUMNS = ("text", "sentence")
LABEL_COLUMNS = ("label", "category", "class")
SPLITS = ("train", "test")
SUFFIXES = (".tsv", ".csv", ".jsonl")  # a split file's, as a task file's


@dataclass(frozen=True)
class LabelledTexts(LocalData):
    """Texts and the class of each: the classes are the clusters to find."""

    kind: ClassVar[str] = "Clustering"
    counted: ClassVar[str] = "texts"
    texts: list[str]
    labels: list[str]


@dataclass(frozen=True)
class ClassifiedTexts(LocalData):
    """Labelled texts to fit a classifier on (train) and to score it on (test)."""

    kind: ClassVar[str] = "Classification"
    counted: ClassVar[str] = "test_texts"
    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.train_labels))


def _column(columns: set[str], names: tuple[str, ...]) -> str | None:
    return next((name for name in names if name in columns), None)


def _label(path: Path, line: int, row: dict[str, object], column: str) -> str:
    value = cell(path, line, row, column, KIND)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise fail(
            path,
            f", line {line}, column {column}",
            f"{value!r} is not a label: use a class name or a whole number.",
            KIND,
        )
    return str(value).strip()


def _read(path: Path, rows: list[Row], text: str, label: str) -> tuple[list[str], list[str]]:
    return [text_cell(path, line, row, text, KIND) for line, row in rows], [
        _label(path, line, row, label) for line, row in rows
    ]


def labelled_texts(path: Path, table: Table, columns: set[str]) -> LocalData | None:
    """The clustering task of ``table`` (or classification, with a split column), or None where
    its columns are not text and label."""
    text, label = _column(columns, TEXT_COLUMNS), _column(columns, LABEL_COLUMNS)
    if text is None or label is None:
        return None
    if not table.rows:
        raise fail(path, "", "a header and no rows: there are no texts to cluster or classify.", KIND)
    digest = file_digest(path)
    if "split" not in columns:
        texts, labels = _read(path, table.rows, text, label)
        if len(set(labels)) < 2:
            raise fail(
                path, "", f"{len(texts)} text(s), all of one label: a clustering task needs two labels or more.", KIND
            )
        return LabelledTexts(path.stem, path.resolve(), digest, texts, labels)
    parts: dict[str, list[Row]] = {split: [] for split in SPLITS}
    for line, row in table.rows:
        value = cell(path, line, row, "split", KIND)
        split = value.strip().lower() if isinstance(value, str) else None
        if split not in parts:
            raise fail(path, f", line {line}, column split", f"{value!r} is not a split: use train or test.", KIND)
        parts[split].append((line, row))
    (train, train_labels), (test, test_labels) = (_read(path, parts[s], text, label) for s in SPLITS)
    return _classified(path, path, path.stem, digest, (train, train_labels), (test, test_labels, parts["test"]))


def _classified(
    where: Path,
    test_path: Path,
    name: str,
    digest: str,
    train: tuple[list[str], list[str]],
    test: tuple[list[str], list[str], list[Row]],
) -> ClassifiedTexts:
    (train_texts, train_labels), (test_texts, test_labels, test_rows) = train, test
    if len(set(train_labels)) < 2:
        raise fail(
            where,
            "",
            f"{len(train_texts)} training text(s) of {len(set(train_labels))} label(s): a classifier needs two labels or more to learn.",
            KIND,
        )
    if not test_texts:
        raise fail(where, "", "no test texts, so there is nothing to score the classifier on.", KIND)
    for label, (line, _) in zip(test_labels, test_rows):
        if label not in set(train_labels):
            raise fail(
                test_path,
                f", line {line}",
                f"the test label {label!r} never occurs in training, so no classifier can predict it.",
                KIND,
            )
    return ClassifiedTexts(name, where.resolve(), digest, train_texts, train_labels, test_texts, test_labels)


def has_split_files(folder: Path) -> bool:
    """Whether ``folder`` holds a ``train`` or ``test`` file (it is a classification folder, unless
    it has a BEIR ``corpus.jsonl``)."""
    return any(_split_files(folder, split) for split in SPLITS)


def _split_files(folder: Path, split: str) -> list[Path]:
    return [path for path in (folder / f"{split}{suffix}" for suffix in SUFFIXES) if status(path, KIND) is not None]


def _split_file(folder: Path, split: str) -> Path:
    found = _split_files(folder, split)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
        raise HarnessError(
            f"classification folder {folder}: {what} {split} file; it needs one {split}.tsv, {split}.csv or {split}.jsonl."
        )
    return found[0]


def read_classification_folder(folder: Path) -> ClassifiedTexts:
    """A classification task from ``folder``'s train and test files; named after the folder."""
    paths = [_split_file(folder, split) for split in SPLITS]
    parts, digest = [], hashlib.sha256()
    for path in paths:
        table = read_rows(path, SUFFIXES, KIND)
        columns = table.names()
        text, label = _column(columns, TEXT_COLUMNS), _column(columns, LABEL_COLUMNS)
        if text is None or label is None:
            raise fail(
                path,
                ", line 1",
                f"needs a text column ({' or '.join(TEXT_COLUMNS)}) and a label column ({' or '.join(LABEL_COLUMNS)}).",
                KIND,
            )
        parts.append((*_read(path, table.rows, text, label), table.rows))
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return _classified(folder, paths[1], folder.name, digest.hexdigest(), parts[0][:2], parts[1])
