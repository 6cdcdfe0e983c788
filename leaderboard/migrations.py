"""Bringing a leaderboard database to this release's schema, by Alembic, under the harness's rules.

- The schema is the chain of revisions in ``leaderboard/schema_versions`` (0001 is the baseline).
  A SQLite file from before Alembic (``user_version`` 1 to 5, no revision) is refused with the way
  to re-create it: this release no longer carries the steps that upgraded such files.
- Who upgrades: ``harness db upgrade`` (SQLite or a server), and the commands that record runs,
  for a local SQLite file only. Reads never write: a database at an older revision is refused by
  them with the command that upgrades it (``check_readable``), so that one colleague's newer harness
  never moves a team's server ahead of everyone else's installed version.
- One upgrader at a time: SQLite's write lock (``BEGIN IMMEDIATE``), a PostgreSQL advisory lock;
  the whole upgrade is one transaction (both have transactional DDL), so it lands whole or not at
  all. A database already at the head takes no lock.
- A database at an older revision is backed up first: a SQLite file to ``<name>.rev<REV>.bak``; a
  server's tables into a schema ``harness_backup_<REV>_<unix time>``.
- A database newer than this release (a revision it does not know), and one holding tables that
  are not the harness's, are refused untouched.
- SQLite files managed by Alembic carry ``user_version`` 6, which releases before Alembic refuse
  as newer.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text

from leaderboard.database import Location, make_engine

SCRIPTS = Path(__file__).with_name("schema_versions")
BASELINE = "0001"
ALEMBIC_USER_VERSION = 6  # pre-Alembic releases numbered their schemas 1 to 5 in user_version
HARNESS_TABLES = ("runs", "scores", "timings", "metrics", "diagnostics", "dev_scores")
SERVER_LOCK = 0x68_61_72_6E  # "harn": the advisory lock one upgrader holds


class SchemaError(Exception):
    """The database is one this release cannot use."""


class NoLeaderboard(SchemaError):
    """Nothing has been recorded there yet (and the caller asked not to create it)."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    """The revision scripts, read once per process (every command that opens the store asks)."""
    return ScriptDirectory.from_config(_config())


def head() -> str:
    return _scripts().get_current_head()


@dataclass(frozen=True)
class State:
    tables: frozenset[str]
    revision: str | None
    user_version: int | None  # SQLite only


def _state(conn: Connection) -> State:
    tables = frozenset(inspect(conn).get_table_names())
    revision = MigrationContext.configure(conn).get_current_revision() if "alembic_version" in tables else None
    user_version = conn.exec_driver_sql("PRAGMA user_version").scalar() if conn.dialect.name == "sqlite" else None
    return State(tables, revision, user_version)


def _plan(state: State, where: Location) -> str:
    """``current``, ``create`` or ``upgrade`` (an older revision); raises SchemaError for a database
    this release must not touch."""
    newer = (
        f"{where} was written by a newer harness (schema revision {{}}; this release knows up to "
        f"{head()}). Upgrade harness, or point --db elsewhere."
    )
    if (state.user_version or 0) > ALEMBIC_USER_VERSION:
        raise SchemaError(newer.format(f"user_version {state.user_version}"))
    if state.revision is not None:
        try:
            _scripts().get_revision(state.revision)
        except CommandError:
            raise SchemaError(newer.format(state.revision)) from None
        return "current" if state.revision == head() else "upgrade"
    if where.is_sqlite:
        if state.user_version:
            raise SchemaError(
                f"{where} is a leaderboard from before schema revisions (SQLite user_version "
                f"{state.user_version}), which this release no longer upgrades; it was left untouched. "
                "Upgrade it once with harness 0.1 (any of its commands does), or move it aside and let "
                "`harness run` record into a new file."
            )
        if state.tables:
            raise SchemaError(
                f"{where} is a SQLite database but not a harness leaderboard (it has tables "
                f"{sorted(state.tables)} and no harness schema version); it was left untouched."
            )
        return "create"
    clash = sorted(state.tables & set(HARNESS_TABLES))
    if clash:
        raise SchemaError(
            f"{where} has tables {clash} but no harness schema revision (alembic_version): they were "
            "not made by the harness, and were left untouched. Use another database."
        )
    return "create"


def _older(where: Location, state: State) -> SchemaError:
    return SchemaError(
        f"{where} is at schema revision {state.revision}, older than this release's {head()}. Run "
        "`harness db upgrade` once with the same --db / HARNESS_DB (it keeps a backup), then this command."
    )


def _read_state(where: Location) -> State:
    """The schema state of ``where``, read in place (nothing written, locked or checkpointed)."""
    engine = make_engine(where, write=False, foreign_keys=False, in_place=True)
    try:
        with engine.connect() as conn:
            return _state(conn)
    finally:
        engine.dispose()


def check_readable(where: Location) -> None:
    """Read the schema only: nothing is written, locked or created. Raises NoLeaderboard where
    nothing is recorded yet, SchemaError for a database that is not at this release's head."""
    state = _read_state(where)
    plan = _plan(state, where)
    if plan == "create":
        raise NoLeaderboard(f"no leaderboard at {where} yet: `harness run` creates it.")
    if plan == "upgrade":
        raise _older(where, state)


def prepare(where: Location, *, create: bool = True) -> None:
    """Make ``where`` ready for a command that records runs: a local SQLite file is created or
    upgraded here; a server is created when empty, but upgraded only by ``harness db upgrade``."""
    if where.is_sqlite:
        _upgrade_sqlite(where)
    else:
        _upgrade_server(where, create, explicit=False)


def upgrade(where: Location) -> str | None:
    """``harness db upgrade``: bring an existing database to the head revision, backed up first;
    returns the revision it was at (None: it was current already). NoLeaderboard if empty."""
    state = _read_state(where)
    plan = _plan(state, where)
    if plan == "create":
        raise NoLeaderboard(f"no leaderboard at {where} yet: `harness run` creates it.")
    if plan == "current":
        return None
    if where.is_sqlite:
        _upgrade_sqlite(where)
    else:
        _upgrade_server(where, False, explicit=True)
    return state.revision


def _upgrade_sqlite(where: Location) -> None:
    path = where.path
    assert path is not None
    reader = make_engine(where, write=False, foreign_keys=False)
    try:
        with reader.connect() as conn:
            state = _state(conn)
            plan = _plan(state, where)  # refuses before any backup or lock
            if plan == "current" and state.user_version == ALEMBIC_USER_VERSION:
                return  # the common case takes no lock: readers never wait behind writers
            if plan == "upgrade":
                _backup_sqlite(
                    conn.connection.dbapi_connection, path.with_name(f"{path.name}.rev{state.revision}.bak")
                )
    finally:
        reader.dispose()
    # foreign keys off: a batch-mode rebuild drops and recreates tables, which must cascade nothing
    writer = make_engine(where, write=True, foreign_keys=False)
    try:
        with writer.connect() as conn, conn.begin():  # one upgrader at a time; others wait, then see it done
            plan = _plan(_state(conn), where)
            counters = _id_counters(conn)
            if plan != "current":
                command.upgrade(_config(conn), "head")
            _restore_id_counters(conn, counters)
            conn.exec_driver_sql(f"PRAGMA user_version = {ALEMBIC_USER_VERSION}")
    finally:
        writer.dispose()
    wal = sqlite3.connect(path, isolation_level=None)
    try:
        wal.execute("PRAGMA journal_mode = WAL")  # persistent: later connections use WAL too
    finally:
        wal.close()


def _id_counters(conn: Connection) -> dict[str, int]:
    """SQLite's AUTOINCREMENT counters (the largest id ever given, deleted rows included)."""
    if not conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").first():
        return {}
    return {
        name: seq
        for name, seq in conn.exec_driver_sql("SELECT name, seq FROM sqlite_sequence")
        if name in HARNESS_TABLES
    }


def _restore_id_counters(conn: Connection, counters: dict[str, int]) -> None:
    """A rebuilt table restarts its counter at its largest id (an empty one has none): the ids
    of deleted runs stay retired."""
    for table, seq in counters.items():
        if not conn.exec_driver_sql(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, table)
        ).rowcount:
            conn.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq))


def _backup_sqlite(conn: sqlite3.Connection, target: Path) -> None:
    """A consistent copy (WAL content included) through SQLite's online backup."""
    with sqlite3.connect(target) as copy:
        conn.backup(copy)
    copy.close()


def _upgrade_server(where: Location, create: bool, *, explicit: bool) -> None:
    """Create an empty server database's tables (unless ``create`` is false), or, ``explicit``ly
    asked, upgrade an older revision; otherwise refuse an older one."""
    engine = make_engine(where, write=True)
    try:
        with engine.connect() as conn:
            state = _state(conn)
            if _plan(state, where) == "current":
                return
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SERVER_LOCK})
            state = _state(conn)
            plan = _plan(state, where)
            if plan == "create" and not create:
                raise NoLeaderboard(f"no leaderboard at {where} yet: `harness run` creates it.")
            if plan == "upgrade":
                if not explicit:
                    raise _older(where, state)
                _backup_server(conn, state)
            if plan != "current":
                command.upgrade(_config(conn), "head")
    finally:
        engine.dispose()


def _backup_server(conn: Connection, state: State) -> None:
    """Copies of the harness's tables into a new schema, in the upgrade's own transaction."""
    quote = conn.dialect.identifier_preparer.quote
    schema = quote(f"harness_backup_{state.revision}_{int(time.time())}")
    conn.execute(text(f"CREATE SCHEMA {schema}"))
    for table in (*HARNESS_TABLES, "alembic_version"):
        if table in state.tables:
            conn.execute(text(f"CREATE TABLE {schema}.{quote(table)} AS TABLE {quote(table)}"))
