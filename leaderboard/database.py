"""Where the leaderboard lives: a SQLite file (the embedded default, on a local disk) or a
database server named by a SQLAlchemy URL (PostgreSQL), for a team or a cluster."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from harness import paths
from leaderboard.errors import LeaderboardError

POSTGRES_DRIVER = "postgresql+psycopg"  # psycopg 3: the `postgres` extra
SUPPORTED = "a file path, sqlite:///PATH or postgresql://USER@HOST[:PORT]/DATABASE"


@dataclass(frozen=True)
class Location:
    url: URL
    path: Path | None  # the SQLite file; None for a server

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else self.url.render_as_string(hide_password=True)


def shown(text: str) -> str:
    """A ``--db`` value as messages show it: a URL's password masked (up to the last ``@``, which
    masks too much rather than too little where the password holds one)."""
    return re.sub(r"(://[^:/@]*):.*@", r"\1:***@", text)


def locate(db: str | os.PathLike[str]) -> Location:
    """``--db`` / ``HARNESS_DB`` as a location: a path, or a URL with ``://``."""
    text = os.fspath(db)
    if "://" not in text:
        path = paths.expand(text, "--db")
        return Location(URL.create("sqlite", database=str(path)), path)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise LeaderboardError(f"--db {shown(text)!r} is not a database URL; give {SUPPORTED}.") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise LeaderboardError(
                f"--db {shown(text)!r}: an in-memory database keeps nothing; give a file, sqlite:///PATH."
            )
        return locate(url.database)
    if backend != "postgresql":
        raise LeaderboardError(
            f"--db {shown(text)!r}: the harness records into SQLite or PostgreSQL; give {SUPPORTED}."
        )
    if url.drivername == "postgresql":
        url = url.set(drivername=POSTGRES_DRIVER)
    return Location(url, None)


def check_sqlite_file(path: Path) -> None:
    """Refuse, untouched, a path that is a folder, a pipe or device; a missing file's folder must
    exist and be writable. The file is never opened here: closing any descriptor of it would drop
    the POSIX locks this process's SQLite connections hold on it (docs/pitfalls.md), so its header
    is read through SQLite, by ``check_integrity``."""
    info = paths.status(path, "--db")
    if info is None:
        return
    if stat.S_ISDIR(info.st_mode):
        raise LeaderboardError(f"--db {path} is a directory, not a SQLite database file.")
    if not stat.S_ISREG(info.st_mode):
        raise LeaderboardError(f"--db {path} is not a regular file; give a SQLite database file.")


NOT_A_DATABASE = 26  # SQLITE_NOTADB (sqlite3 names it from Python 3.11)


def check_integrity(path: Path) -> None:
    """Refuse a file that is not SQLite, or whose pages are damaged (SQLite's ``quick_check``),
    naming it, before a command reads a wrong answer from it or fails halfway through a write.
    Read through SQLite, which shares this process's locks on the file among its connections, and
    in place (``connect_in_place``): nothing is checkpointed into the file, nothing left beside it."""
    try:
        with contextlib.closing(connect_in_place(path)) as conn:
            verdict = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == NOT_A_DATABASE or "file is not a database" in str(exc):
            raise LeaderboardError(
                f"--db {path} is not a SQLite database (SQLite finds no database header in it); it was "
                "left untouched. Point --db or HARNESS_DB at a new file."
            ) from None
        verdict = [str(exc)]
    if verdict != ["ok"]:
        raise LeaderboardError(
            f"--db {path} is damaged ({'; '.join(verdict)}); it was left untouched. Restore a backup "
            "(a NAME.v*.bak / NAME.rev*.bak copy if one is beside it), or point --db at a new file."
        )


BUSY_TIMEOUT_MS = 60_000


def connect_in_place(path: Path) -> sqlite3.Connection:
    """A connection that reads ``path`` and changes nothing on disk: read-only where a ``-wal``
    file exists (a read-write connection closing last would checkpoint it into the database and
    delete it), else read-write, whose ``-wal``/``-shm`` files, empty, go when it closes (a
    read-only one cannot remove what it made)."""
    timeout = BUSY_TIMEOUT_MS / 1000
    if path.with_name(f"{path.name}-wal").exists():
        return sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout, check_same_thread=False
        )
    return sqlite3.connect(path, timeout=timeout, check_same_thread=False)


def make_engine(location: Location, *, write: bool, foreign_keys: bool = True, in_place: bool = False) -> Engine:
    """An engine for ``location`` whose transactions are reads from one snapshot or writes
    (``in_place``: reads through :func:`connect_in_place`, for commands that must not change the file).

    SQLite: readers ``BEGIN`` (a snapshot in WAL mode); writers ``BEGIN IMMEDIATE`` (the write lock
    up front, waited for up to the busy timeout); foreign keys enforced unless a migration turns
    them off. A server: readers at REPEATABLE READ (one snapshot for all of a read's queries, as
    SQLite gives), writers at READ COMMITTED with row locks where they re-read what they change.
    """
    if not location.is_sqlite:
        isolation = "READ COMMITTED" if write else "REPEATABLE READ"
        return create_engine(location.url, pool_pre_ping=True, isolation_level=isolation)
    begin = "BEGIN IMMEDIATE" if write else "BEGIN"
    if in_place and not write:
        path = location.path
        engine = create_engine("sqlite://", creator=lambda: connect_in_place(path), poolclass=NullPool)
    else:
        engine = create_engine(location.url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # journal_mode is persistent and set once, when the file is created or migrated: setting
        # it on every connection takes a lock and can fail ("disk I/O error") on busy files
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that waited out the busy timeout behind another writer (SQLite's
    SQLITE_BUSY / SQLITE_LOCKED, PostgreSQL's lock_not_available), as raised or wrapped by SQLAlchemy."""

    for error in (exc, getattr(exc, "orig", None)):
        if isinstance(error, sqlite3.OperationalError):
            code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
            return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) if code is not None else "locked" in str(error)
        if getattr(error, "sqlstate", None) == "55P03":
            return True
    return False
