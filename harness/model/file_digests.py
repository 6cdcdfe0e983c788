"""The sha256 of a file, computed once and kept.

A kept digest is keyed by everything that changes when the file does: its resolved path, size,
modification and status-change times (nanoseconds), inode and device, and, for a file of the
hub's cache, the blob name the hub gave it (its own content hash). The status-change time cannot
be set back by a user or a tool (``touch -d`` sets the modification time only), so a file
rewritten in place, even to the same size and modification time, gets a new key and is read
again. A file whose status changes while it is read is not kept.

The digests live in one SQLite file beside the embedding cache; where it cannot be opened or
written, every digest is computed and nothing is kept.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

DIGESTS_FILE = "file-digests.sqlite3"
_HUB_BLOB = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS digests (path TEXT, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, "
    "device INTEGER, hub_blob TEXT, sha256 TEXT NOT NULL, PRIMARY KEY (path, size, mtime_ns, ctime_ns, inode, device, hub_blob))"
)


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _identity(path: Path) -> tuple[str, int, int, int, int, int, str]:
    """What keys a kept digest (see the module docstring)."""
    real = path.resolve()
    status = real.stat()
    blob = real.name if real.parent.name == "blobs" and _HUB_BLOB.fullmatch(real.name) else ""
    return str(real), status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev, blob


class FileDigests:
    """Kept sha256s of files (see the module docstring)."""

    def __init__(self, folder: Path | None) -> None:
        self._db: sqlite3.Connection | None = None
        self.hashed = 0  # files read whole by this object (the rest came from what was kept)
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(folder / DIGESTS_FILE, timeout=30, isolation_level=None)
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error):
            self._db = None  # nothing kept: every digest computed

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def digest(self, path: Path) -> str:
        """The sha256 of ``path``'s bytes."""
        key = _identity(path)
        kept = self._kept(key)
        if kept is not None:
            return kept
        value = sha256_of(path)
        self.hashed += 1
        if _identity(path) == key:  # unchanged while it was read
            self._keep(key, value)
        return value

    def _kept(self, key: tuple) -> str | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT sha256 FROM digests WHERE path=? AND size=? AND mtime_ns=? AND ctime_ns=? AND inode=? AND device=? AND hub_blob=?",
                key,
            ).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def _keep(self, key: tuple, value: str) -> None:
        if self._db is None:
            return
        try:
            self._db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*key, value))
        except sqlite3.Error:
            pass  # the digest is right; only keeping it failed

    def folder(self, folder: Path) -> dict[str, str]:
        """Each file under ``folder`` (hidden entries aside: lock and download records), by its
        path relative to it, with its sha256."""
        return {name: self.digest(path) for name, path in sorted(_files(folder))}


def _files(folder: Path) -> Iterator[tuple[str, Path]]:
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith("."):
                path = Path(root) / name
                yield path.relative_to(folder).as_posix(), path
