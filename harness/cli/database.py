"""Which leaderboard a command reads or writes: located, announced on stderr, checked and opened."""

from __future__ import annotations

from typing import Any

from harness.cli.app import close_when_done, err_console, raise_usage


def located(db: str) -> tuple[str, Any]:
    """``--db`` as shown to the user (a file's absolute path, a URL's password hidden) and its
    location; None where --db is unusable (the command's own check says why)."""
    from harness.errors import HarnessError
    from leaderboard.database import locate

    try:
        where = locate(db)
        return (str(where.path.absolute()) if where.is_sqlite else str(where)), where
    except (HarnessError, OSError):
        return db, None


def db_label(db: str) -> str:
    return located(db)[0]


def announce(db: str, *, writes: bool = False) -> None:
    """The first line of every command that reads or writes a leaderboard: which one it is (on
    stderr, so that --json output stays JSON)."""
    label, where = located(db)
    if where is None:
        return
    try:
        new = " (a new file)" if writes and where.is_sqlite and not where.path.exists() else ""
    except OSError:  # a name too long, say: the command's own check says so
        return
    err_console.print(f"Leaderboard: {label}{new}", style="dim", highlight=False, soft_wrap=True)


def open_leaderboard(db: str, *, create: bool, read_only: bool = False, reap: bool = True) -> Any:
    """The store at ``db`` (``read_only``: its schema checked, never upgraded), stale runs reaped
    where ``reap``; closed when the command ends, so that no connection outlives the command that
    opened it (in-process callers run several commands)."""
    from leaderboard.store import open_store

    store = open_store(db, create=create, read_only=read_only)
    close_when_done(store.close)
    if reap:
        store.reap_stale()
    return store


def check_db(db: str) -> None:
    """Refuse an unusable ``--db`` before a run does any work; an existing database is opened
    (a local SQLite file upgraded, a server at an older revision refused), a missing one is only
    checked, so that a refused run creates no file."""
    from leaderboard.database import locate
    from leaderboard.errors import MissingLeaderboard
    from leaderboard.store import check_new_location

    where = locate(db)
    check_new_location(where)
    if where.is_sqlite and not where.path.exists():
        return
    try:  # an existing file, or a server: reachable and a harness leaderboard (or empty)
        open_leaderboard(db, create=False).close()
    except MissingLeaderboard:
        pass


def read_store(
    db: str, as_json: bool, ids: list[int] | None = None, *, upgrade: bool = False, reap: bool = False
) -> Any:
    """The store of an existing leaderboard, or None when no database exists yet. A read (the
    default) writes nothing: an older schema is refused with ``harness db upgrade``, a dead run
    reads as failed without being marked so; a command that records (``eval``, ``run --resume``)
    may ``upgrade`` a local SQLite file and ``reap`` dead runs, one that deletes only ``reap``.
    A missing database reads as an empty one: a listing says so (exit 0, ``[]`` with --json), a
    command that names runs fails with "no run N" (exit 2), as it would on an empty database."""
    from leaderboard.errors import MissingLeaderboard

    announce(db)
    try:
        return open_leaderboard(db, create=False, read_only=not upgrade, reap=reap)
    except MissingLeaderboard:
        where = f"No leaderboard at {db_label(db)} yet: `harness run` creates it (or point --db / HARNESS_DB at one)."
        if ids:
            raise_usage(f"no run {', '.join(map(str, ids))}. {where}")
        if as_json:
            print("[]")
        err_console.print(where, highlight=False, soft_wrap=True)
        return None
