"""Vectors kept across runs, under a key that names the encoder that computed them.

An entry's key is a SHA-256 of the encoder's fingerprint (:mod:`harness.evaluation.fingerprint`),
the side the text was encoded for (query, document or a symmetric task) and the text as encoded
(after any ``--instructions`` formatting). Its value is the float32 vector followed by a 16-byte
BLAKE2b of key and vector: a truncated, altered or misplaced entry fails that check, is dropped and
recomputed, never returned.

Storage is diskcache: one SQLite database (WAL) under the harness cache folder, safe for several
processes at once, with a size cap enforced by evicting the least recently stored entries (the
cap is the folder's: the last run to open it sets it). Values are read as raw bytes only: an entry
that diskcache would unpickle is treated as damaged, so a shared cache folder cannot run code. The
cache only ever saves time: a cache that cannot be opened, read or written is switched off for the
run with a warning, and the run computes its vectors itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diskcache
import numpy as np
from diskcache.core import MODE_PICKLE

from harness.paths import cache_root

CHECK_BYTES = 16
DEFAULT_LIMIT_GB = 20.0
SAVE_CHUNK = 2000  # vectors per write transaction: another run waits for one chunk, not a corpus


def default_folder() -> Path:
    """``HARNESS_EMBEDDING_CACHE``, else ``embeddings/`` under the harness cache folder."""
    folder = os.environ.get("HARNESS_EMBEDDING_CACHE")
    return Path(folder).expanduser() if folder else cache_root() / "embeddings"


@dataclass(frozen=True)
class CacheSettings:
    """``--no-cache`` and ``--cache-limit-gb``: whether and where vectors are kept across runs."""

    enabled: bool = True
    limit_gb: float = DEFAULT_LIMIT_GB
    folder: Path = field(default_factory=default_folder)


def entry_key(fingerprint: str, side: str | None, text: str) -> bytes:
    return hashlib.sha256(f"{fingerprint}\x00{side or ''}\x00{text}".encode("utf-8", "surrogatepass")).digest()


def seal(key: bytes, vector: np.ndarray) -> bytes:
    body = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return body + hashlib.blake2b(key + body, digest_size=CHECK_BYTES).digest()


def unseal(key: bytes, value: Any, dim: int) -> np.ndarray | None:
    """The vector of a stored value, or None where the value is not a whole, matching entry."""
    if not isinstance(value, bytes) or len(value) != 4 * dim + CHECK_BYTES:
        return None
    body, check = value[:-CHECK_BYTES], value[-CHECK_BYTES:]
    if hashlib.blake2b(key + body, digest_size=CHECK_BYTES).digest() != check:
        return None
    return np.frombuffer(body, dtype="<f4").astype(np.float32)


class EmbeddingCache:
    """One encoder's view of the cache: its vectors by (side, text), with counters."""

    def __init__(self, store: Any, fingerprint: str, dim: int) -> None:
        self.store, self.fingerprint, self.dim = store, fingerprint, dim
        self.hits = self.stored = self.corrupt = 0
        self.warning: str | None = None  # set when the cache had to be switched off
        self._warned = False

    @classmethod
    def open(cls, settings: CacheSettings, fingerprint: str, dim: int) -> EmbeddingCache:
        """The cache in ``settings.folder``; raises :class:`CacheUnavailable` where it cannot be used."""
        try:
            import diskcache

            settings.folder.mkdir(parents=True, exist_ok=True)
            store = diskcache.Cache(
                str(settings.folder), size_limit=int(settings.limit_gb * 2**30), timeout=60, disk=_bytes_only_disk()
            )
        except Exception as exc:  # the cache only saves time: whatever stops it, the run goes on without it
            raise CacheUnavailable(
                f"the embedding cache in {settings.folder} cannot be opened ({type(exc).__name__}: {exc})"
            ) from None
        return cls(store, fingerprint, dim)

    @property
    def usable(self) -> bool:
        return self.warning is None

    def take_warning(self) -> str | None:
        """The warning of a cache switched off during the run, the first time it is asked for."""
        if self.warning is None or self._warned:
            return None
        self._warned = True
        return self.warning

    def _off(self, doing: str, exc: BaseException) -> None:
        self.warning = (
            f"warning: the embedding cache failed while {doing} ({type(exc).__name__}: {exc}); "
            "it is off for the rest of this run, which computes every vector itself."
        )

    def lookup(self, side: str | None, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of ``texts`` that are whole and match their key."""
        found: dict[str, np.ndarray] = {}
        if not self.usable:
            return found
        try:
            for text in texts:
                key = entry_key(self.fingerprint, side, text)
                value = self.store.get(key)
                if value is None:
                    continue
                vector = unseal(key, value, self.dim)
                if vector is None:
                    self.corrupt += 1
                    self.store.delete(key)
                else:
                    found[text] = vector
        except Exception as exc:  # sqlite3, OSError, diskcache.Timeout, ...: never a failed run
            self._off("reading", exc)
            return {}
        self.hits += len(found)
        return found

    def save(self, side: str | None, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store freshly computed vectors, ``SAVE_CHUNK`` to a transaction."""
        if not self.usable:
            return
        try:
            for start in range(0, len(texts), SAVE_CHUNK):
                with self.store.transact():
                    for text, vector in zip(texts[start : start + SAVE_CHUNK], vectors[start : start + SAVE_CHUNK]):
                        key = entry_key(self.fingerprint, side, text)
                        self.store.set(key, seal(key, vector))
                self.stored += len(texts[start : start + SAVE_CHUNK])
        except Exception as exc:  # as in lookup: the vectors are computed, only their copy is lost
            self._off("writing", exc)

    def close(self) -> None:
        self.store.close()


def _bytes_only_disk() -> type:
    """A diskcache ``Disk`` that never unpickles: a pickled value reads as empty (a damaged entry)."""

    class BytesOnlyDisk(diskcache.Disk):
        def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
            return b"" if mode == MODE_PICKLE else super().fetch(mode, filename, value, read)

    return BytesOnlyDisk


class CacheUnavailable(Exception):
    """The cache cannot be used here; the run goes on without it."""
