"""Reading user STS task files: ``.tsv``, ``.csv`` or ``.jsonl`` with sentence1, sentence2, score.

Errors name the file, the line and the column. Extra columns (and extra trailing fields on a
row, as in STS-B's own files) are ignored; a row with too few fields is an error.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

SUFFIXES = (".tsv", ".csv", ".jsonl")
COLUMNS = ("sentence1", "sentence2", "score")


@dataclass(frozen=True)
class StsPairs:
    """Sentence pairs with human scores, read from one file."""

    name: str
    path: Path
    digest: str  # sha256 of the file's bytes
    sentence1: list[str]
    sentence2: list[str]
    scores: list[float]


def _fail(path: Path, where: str, what: str) -> HarnessError:
    return HarnessError(f"task file {path}{where}: {what}")


def _score(path: Path, line: int, column: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise _fail(path, f", line {line}, column {column}", f"{raw!r} is not a number.")
    try:
        value = float(raw)
    except ValueError:
        raise _fail(path, f", line {line}, column {column}", f"{raw!r} is not a number.") from None
    if not math.isfinite(value):
        raise _fail(path, f", line {line}, column {column}", f"{raw!r} is not a finite number.")
    return value


def _text(path: Path, line: int, column: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise _fail(path, f", line {line}, column {column}", f"{raw!r} is not text.")
    if not raw.strip():
        raise _fail(path, f", line {line}, column {column}", "the text is empty.")
    return raw


def _delimited(path: Path, text: str, delimiter: str) -> list[tuple[int, str, str, object]]:
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise _fail(path, ", line 1", "no header; the first line must name sentence1, sentence2 and score.")
        names = [h.strip().lower() for h in header]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise _fail(
                path,
                ", line 1",
                f"missing column(s) {', '.join(missing)} (header has: {', '.join(names)}).",
            )
        index = {c: names.index(c) for c in COLUMNS}
        rows = []
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) <= max(index.values()):
                raise _fail(
                    path,
                    f", line {line}",
                    f"{len(fields)} field(s), but the header needs at least {max(index.values()) + 1}.",
                )
            rows.append(
                (line, fields[index["sentence1"]], fields[index["sentence2"]], fields[index["score"]])
            )
        return rows
    except csv.Error as exc:
        raise _fail(path, f", line {reader.line_num}", f"malformed {path.suffix[1:]} ({exc}).") from None


def _jsonl(path: Path, text: str) -> list[tuple[int, object, object, object]]:
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail(path, f", line {line}, column {exc.colno}", f"invalid JSON ({exc.msg}).") from None
        if not isinstance(obj, dict):
            raise _fail(path, f", line {line}", "each line must be a JSON object.")
        missing = [c for c in COLUMNS if c not in obj]
        if missing:
            raise _fail(path, f", line {line}", f"missing key(s) {', '.join(missing)}.")
        rows.append((line, obj["sentence1"], obj["sentence2"], obj["score"]))
    return rows


def read_sts_file(path: Path) -> StsPairs:
    """Parse and check one STS task file; the task is named after the file's stem."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise _fail(path, "", f"unsupported file type {suffix or '(none)'}; use {', '.join(SUFFIXES)}.")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _fail(path, "", "no such file.") from None
    except IsADirectoryError:
        raise _fail(path, "", "is a directory.") from None
    if not raw.strip():
        raise _fail(path, "", "the file is empty.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(path, f", line {line}", f"not UTF-8 text (byte {exc.start}).") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise _fail(path, f", line {line}", "contains a NUL byte; this is not a text file.")
    rows = _jsonl(path, text) if suffix == ".jsonl" else _delimited(path, text, "\t" if suffix == ".tsv" else ",")
    if len(rows) < 2:
        raise _fail(path, "", f"{len(rows)} data row(s); an STS task needs at least 2.")
    s1 = [_text(path, line, "sentence1", a) for line, a, _, _ in rows]
    s2 = [_text(path, line, "sentence2", b) for line, _, b, _ in rows]
    scores = [_score(path, line, "score", s) for line, _, _, s in rows]
    if min(scores) == max(scores):
        raise _fail(path, "", "every score is equal, so a correlation is undefined.")
    return StsPairs(
        name=path.stem,
        path=path.resolve(),
        digest=hashlib.sha256(raw).hexdigest(),
        sentence1=s1,
        sentence2=s2,
        scores=scores,
    )
