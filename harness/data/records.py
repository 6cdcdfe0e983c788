"""Reading tabular user files (.tsv/.txt, .csv, .jsonl) into rows keyed by lower-cased column name.

Shared by task files and training-data files, so both accept the same quirks (BOM, CRLF, quoted
CSV fields, extra columns, ragged trailing fields) and fail with the same precise messages.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import readable_file

FIELD_LIMIT = 2**30  # characters in one field: any text a file can hold (csv's default is 131,072)
Row = tuple[int, dict[str, object]]  # (line number, column -> value; None where the row is short)


@dataclass(frozen=True)
class Table:
    columns: list[str] | None  # the header's names; None for JSONL, whose keys vary by line
    rows: list[Row]

    def names(self) -> set[str]:
        """The header's columns; of JSONL, every key of any line (a key on some lines only is then
        missing from the others, and their reader says which)."""
        if self.columns is not None:
            return set(self.columns)
        return {key for _, row in self.rows for key in row}

    def require(self, path: Path, needed: tuple[str, ...], kind: str) -> None:
        """Fail on line 1 if the header lacks any of ``needed``."""
        if self.columns is None:
            return
        missing = [c for c in needed if c not in self.columns]
        if missing:
            raise fail(
                path,
                ", line 1",
                f"missing column(s) {', '.join(missing)} (header has: {', '.join(self.columns)}).",
                kind,
            )


def fail(path: Path, where: str, what: str, kind: str = "file") -> HarnessError:
    return HarnessError(f"{kind} {path}{where}: {what}")


def file_text(path: Path, kind: str) -> str:
    """A user file's text: UTF-8 (a BOM dropped), not empty, no NUL byte; else one message with the line."""
    raw = readable_file(path, kind).read_bytes()
    if not raw.strip():
        raise fail(path, "", "the file is empty.", kind)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail(path, f", line {line}", f"not UTF-8 text (byte {exc.start}).", kind) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise fail(path, f", line {line}", "contains a NUL byte; this is not a text file.", kind)
    return text


def _delimited(path: Path, text: str, delimiter: str, kind: str) -> Table:
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise fail(path, ", line 1", "no header line naming the columns.", kind)
        names = [h.strip().lower() for h in header]
        repeated = sorted({n for n in names if names.count(n) > 1 and n})
        if repeated:
            raise fail(path, ", line 1", f"the header names column(s) {', '.join(repeated)} more than once.", kind)
        rows: list[Row] = []
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            values = {name: (fields[i] if i < len(fields) else None) for i, name in enumerate(names)}
            rows.append((reader.line_num, values))
        return Table(names, rows)
    except csv.Error as exc:
        raise fail(path, f", line {reader.line_num}", f"malformed {path.suffix[1:]} ({exc}).", kind) from None


def _jsonl(path: Path, text: str, kind: str) -> Table:
    rows: list[Row] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw, object_pairs_hook=list)
        except json.JSONDecodeError as exc:
            raise fail(path, f", line {line}, column {exc.colno}", f"invalid JSON ({exc.msg}).", kind) from None
        except RecursionError:
            raise fail(path, f", line {line}", "invalid JSON (nested too deeply).", kind) from None
        except ValueError as exc:  # e.g. an integer of more digits than Python converts
            raise fail(path, f", line {line}", f"invalid JSON ({exc}).", kind) from None
        if not isinstance(obj, list) or not all(isinstance(p, tuple) for p in obj) or raw.lstrip()[:1] != "{":
            raise fail(path, f", line {line}", "each line must be a JSON object.", kind)
        keys = [str(k).strip().lower() for k, _ in obj]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise fail(path, f", line {line}", f"the key(s) {', '.join(repeated)} appear more than once.", kind)
        rows.append((line, dict(zip(keys, (v for _, v in obj)))))
    return Table(None, rows)


def read_rows(path: Path, suffixes: tuple[str, ...], kind: str = "file") -> Table:
    """Rows of ``path``: TSV for .tsv/.txt, CSV for .csv, one JSON object a line for .jsonl."""
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise fail(path, "", f"unsupported file type {suffix or '(none)'}; use {', '.join(suffixes)}.", kind)
    text = file_text(path, kind)
    if suffix == ".jsonl":
        return _jsonl(path, text, kind)
    return _delimited(path, text, "," if suffix == ".csv" else "\t", kind)


def cell(path: Path, line: int, row: dict[str, object], column: str, kind: str) -> object:
    if column not in row:
        raise fail(path, f", line {line}", f"missing key {column}.", kind)
    value = row[column]
    if value is None:
        raise fail(path, f", line {line}", f"too few fields: no value for column {column}.", kind)
    return value


def text_cell(path: Path, line: int, row: dict[str, object], column: str, kind: str) -> str:
    value = cell(path, line, row, column, kind)
    if not isinstance(value, str):
        raise fail(path, f", line {line}, column {column}", f"{value!r} is not text.", kind)
    if not value.strip():
        raise fail(path, f", line {line}, column {column}", "the text is empty.", kind)
    return value
