"""What every task read from the user's own file or folder has, whatever its kind."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes: a local task's version."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class LocalData:
    """A task's data from a file or folder: its mteb task type, its name, where it was read and
    the sha256 of its bytes (a folder: of its files, in order), which is its version."""

    kind: ClassVar[str]
    counted: ClassVar[str]  # the field whose length is the task's size (pairs, queries...)
    name: str
    path: Path
    digest: str

    @property
    def size(self) -> int:
        return len(getattr(self, self.counted))


@dataclass(frozen=True)
class TextPairs(LocalData):
    """Pairs of texts, row by row (STS and pair classification add what each pair is worth)."""

    sentence1: list[str]
    sentence2: list[str]
