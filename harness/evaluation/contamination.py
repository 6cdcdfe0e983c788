"""How much of a task's evaluated texts a trained run saw in its training texts.

Two measures, as the field uses them:

* **exact**: the evaluated text equals a training text after Unicode (NFKC), case and whitespace
  normalisation;
* **13-gram**: the evaluated text shares at least one run of 13 words with a training text (words:
  ``\\w+`` runs of the normalised text), as lm-evaluation-harness's decontamination counts a
  document as contaminated. A text of fewer than 13 words has no 13-gram: only the exact measure
  can count it.

Each is the fraction of the task's distinct evaluated texts (the texts mteb asked the encoder for,
both sides of a pair, queries and corpus alike, before any instruction is put in front). The
training side is every text the run's ``--train-data`` holds for the kinds its stages read (the
whole source, not only the examples its steps reached). Texts and 13-grams are kept as 64-bit
hashes, sorted; a source read from files is indexed once per content (the files' sha256s) and
the index kept beside the embedding cache (not with ``--no-cache``), so the next run on the same
data reads it back. A trained run's ``harness eval`` measures against the files it recorded: a file
gone or changed since leaves the scores unmeasured (None), never measured against other data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.local_data import file_digest
from harness.data.texts import load_texts
from harness.data.train_data import load_triplets, parse_source, source_files

NGRAM = 13
INDEX_FORMAT = 1  # another way of normalising or hashing: another index file
_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """NFKC, case-folded, every run of whitespace one space, stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def text_hash(text: str) -> int:
    """The 64-bit hash of a text's normalised form."""
    return _hash(normalise(text))


def ngram_hashes(text: str, n: int = NGRAM) -> list[int]:
    """The 64-bit hashes of every run of ``n`` words of the normalised text (none if it is shorter)."""
    words = _WORD.findall(normalise(text))
    return [_hash(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)]


def _sorted_unique(values: Iterable[int]) -> np.ndarray:
    return np.unique(np.fromiter(values, dtype=np.uint64))


def _member(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Whether each of ``needles`` is in the sorted ``haystack``."""
    if not len(haystack) or not len(needles):
        return np.zeros(len(needles), dtype=bool)
    at = np.minimum(np.searchsorted(haystack, needles), len(haystack) - 1)
    return haystack[at] == needles


@dataclass(frozen=True)
class TrainingIndex:
    """The hashed texts and 13-grams of a run's training texts."""

    exact: np.ndarray  # sorted unique uint64
    ngrams: np.ndarray  # sorted unique uint64
    key: str  # what the index was built from, hashed

    @classmethod
    def build(cls, texts: Iterable[str], key: str) -> TrainingIndex:
        texts = list(texts)
        return cls(
            _sorted_unique(text_hash(t) for t in texts), _sorted_unique(h for t in texts for h in ngram_hashes(t)), key
        )


@dataclass(frozen=True)
class TrainingData:
    """What a trained run read: ``--train-data`` as given, the seed, the kinds its stages read, and
    the files with the sha256s recorded with the run (``train_data_resolved``)."""

    source: str
    seed: int
    kinds: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()  # (part as given, sha256)

    def key(self) -> str:
        facts = [INDEX_FORMAT, NGRAM, self.source, self.seed, sorted(self.kinds), list(self.files)]
        return hashlib.sha256(json.dumps(facts).encode()).hexdigest()


def training_texts(data: TrainingData) -> list[str]:
    """Every text of the training source, for each kind of data the run's stages read."""

    texts: list[str] = []
    if "triplets" in data.kinds:
        texts += [
            text
            for triplet in load_triplets(data.source, data.seed)
            for text in (triplet.query, triplet.pos, triplet.neg)
        ]
    if "texts" in data.kinds:
        texts += load_texts(data.source, data.seed)
    return texts


def changed_file(data: TrainingData) -> str | None:
    """Why the recorded training files cannot be indexed now (one is gone or changed), or None."""

    now = dict(source_files(data.source))
    for part, recorded in data.files:
        path = now.get(part)
        if path is None or not path.is_file():
            return f"training file {part} is gone"
        if file_digest(path) != recorded:
            return f"training file {path} changed since the run recorded it (sha256 {recorded[:12]})"
    return None


def _all_files(data: TrainingData) -> bool:
    """Whether every part of the source is a recorded file (else the index is not kept: the hub's
    data and the embedded set have no digest here)."""

    return bool(data.files) and len(parse_source(data.source)[1]) == len(data.files)


def index_path(folder: Path, data: TrainingData) -> Path:
    return folder / f"{data.key()}.npz"


def _read(path: Path, key: str) -> TrainingIndex | None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            exact, ngrams = saved["exact"], saved["ngrams"]
    except (OSError, ValueError, KeyError, EOFError):
        return None  # unreadable or damaged: built again
    if exact.dtype != np.uint64 or ngrams.dtype != np.uint64 or exact.ndim != 1 or ngrams.ndim != 1:
        return None
    return TrainingIndex(exact, ngrams, key)


def _write(path: Path, index: TrainingIndex) -> None:
    """Write ``index`` whole or not at all (a temporary file renamed over the name)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".index-", suffix=".npz")
        with os.fdopen(handle, "wb") as out:
            np.savez(out, exact=index.exact, ngrams=index.ngrams)
        os.replace(temporary, path)
    except OSError:
        pass  # an unwritable cache costs the next run a rebuild, never this run


def training_index(data: TrainingData, folder: Path | None) -> TrainingIndex:
    """The index of ``data``'s texts: read from ``folder`` where it was kept, else built (and kept
    there when every part of the source is a file whose digest was recorded)."""
    key = data.key()
    keep = folder is not None and _all_files(data)
    if keep:
        found = _read(index_path(folder, data), key)  # type: ignore[arg-type]
        if found is not None:
            return found
    index = TrainingIndex.build(training_texts(data), key)
    if keep:
        _write(index_path(folder, data), index)  # type: ignore[arg-type]
    return index


@dataclass
class Overlap:
    """The evaluated texts of one task, each counted once, and how many of them the index holds."""

    index: TrainingIndex
    seen: dict[int, tuple[bool, bool]] = field(default_factory=dict)  # text hash -> (exact, 13-gram)

    def add(self, texts: Sequence[str]) -> None:
        fresh: dict[int, str] = {}
        for text in texts:
            key = text_hash(text)
            if key not in self.seen:
                fresh.setdefault(key, text)
        if not fresh:
            return
        keys = np.fromiter(fresh, dtype=np.uint64, count=len(fresh))
        exact = _member(self.index.exact, keys)
        for (key, text), hit in zip(fresh.items(), exact):
            grams = np.fromiter(ngram_hashes(text), dtype=np.uint64)
            self.seen[key] = (bool(hit), bool(_member(self.index.ngrams, grams).any()))

    def result(self) -> dict[str, Any] | None:
        """The counts and fractions recorded with the score (None: no text was evaluated)."""
        total = len(self.seen)
        if not total:
            return None
        exact = sum(hit for hit, _ in self.seen.values())
        ngram = sum(hit for _, hit in self.seen.values())
        either = sum(a or b for a, b in self.seen.values())
        return {
            "texts": total,
            "exact_texts": exact,
            "ngram_texts": ngram,
            "any_texts": either,
            "exact": exact / total,
            "ngram": ngram / total,
            "any": either / total,
            "n": NGRAM,
            "index": self.index.key[:12],
        }
