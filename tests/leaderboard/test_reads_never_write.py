"""A read never writes: on a database of every schema revision, each read command leaves the file's
bytes and its folder as they were; below the newest revision it says to run `harness db upgrade`."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command
from sqlalchemy import create_engine
from typer.testing import CliRunner

from harness.cli import app
from leaderboard import migrations
from leaderboard.database import locate
from tests.conftest import db_rows

REVISIONS = [f"{n:04d}" for n in range(1, int(migrations.head()) + 1)]
READS = [
    ["runs"],
    ["runs", "--status", "failed"],
    ["show", "1"],
    ["show", "999"],
    ["compare"],
    ["compare", "1"],
    ["leaderboard"],
    ["export", "--csv", "-"],
    ["export", "1", "--json", "-"],
    ["plot", "1", "--out", "loss.png"],
    ["browse"],
]


def _database_at(db: str, revision: str) -> None:
    """A leaderboard at ``revision`` holding one finished run with a score (plain SQL)."""
    engine = create_engine(locate(db).url)
    try:
        with engine.begin() as conn:
            config = migrations._config(conn)
            command.upgrade(config, revision)
            conn.exec_driver_sql(
                "INSERT INTO runs (id, uuid, status, method, backbone, task_spec, task_names, config, config_hash, seed, versions, "
                "hardware, host, pid, started_at, heartbeat_at, ended_at) VALUES (1, 'u1', 'finished', 'm', 'b', 't', '[\"T\"]', "
                "'{}', 'h', 0, '{}', '{}', 'host', 1, 0, 0, 1)"
            )
            conn.exec_driver_sql(
                "INSERT INTO scores (run_id, task, main_metric, main_score, details) VALUES (1, 'T', 'm', 0.5, '{}')"
            )
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA user_version = {migrations.ALEMBIC_USER_VERSION}")
    finally:
        engine.dispose()
    if "://" not in db:
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA journal_mode = WAL")  # as the harness leaves its files


@pytest.mark.parametrize("revision", REVISIONS)
def test_reads_leave_a_file_of_any_revision_as_it_was(tmp_path, monkeypatch, revision):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "h.db"
    _database_at(str(path), revision)
    before, listing = path.read_bytes(), sorted(p.name for p in tmp_path.iterdir())
    current = revision == migrations.head()
    for args in READS:
        if current and args == ["browse"]:
            continue  # it would serve; datasette opens the file read-only (tests/leaderboard/test_browse.py)
        result = CliRunner().invoke(app, [*args, "--db", str(path)])
        if not current:
            assert result.exit_code == 2 and "harness db upgrade" in result.output, (args, result.output)
        else:
            assert result.exit_code in (0, 2) and "Traceback" not in result.output, (args, result.output)
        assert path.read_bytes() == before, args
        assert sorted(p.name for p in tmp_path.iterdir()) == listing, args


def test_reads_leave_an_older_server_database_as_it_was(postgres_url):
    _database_at(postgres_url, migrations.BASELINE)
    schemas = db_rows(postgres_url, "SELECT schema_name FROM information_schema.schemata ORDER BY 1")
    for args in READS[:-1]:
        result = CliRunner().invoke(app, [*args, "--db", postgres_url])
        assert result.exit_code == 2 and "harness db upgrade" in result.output, (args, result.output)
    for writer in (
        ["run", "--method", "untrained-mean"],
        ["eval", "1", "--tasks", "offline"],
        ["delete", "1", "--yes"],
    ):
        result = CliRunner().invoke(app, [*writer, "--db", postgres_url])
        assert result.exit_code == 2 and "harness db upgrade" in result.output, (writer, result.output)
    assert db_rows(postgres_url, "SELECT version_num FROM alembic_version") == [(migrations.BASELINE,)]
    assert db_rows(postgres_url, "SELECT schema_name FROM information_schema.schemata ORDER BY 1") == schemas
    assert db_rows(postgres_url, "SELECT count(*) FROM runs") == [(1,)]


@pytest.mark.parametrize("damage", ["truncated", "zeroed page"])
@pytest.mark.parametrize("command", [["runs"], ["show", "1"]])
def test_a_damaged_file_is_refused_with_nothing_left_beside_it(tmp_path, damage, command):
    whole = tmp_path / "whole.db"
    _database_at(str(whole), migrations.head())
    data = whole.read_bytes()
    path = tmp_path / "h.db"
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else data[:100] + b"\0" * 50 + data[150:])
    before = path.read_bytes()
    result = CliRunner().invoke(app, [*command, "--db", str(path)])
    assert result.exit_code == 2 and "is damaged" in result.output and str(path) in " ".join(result.output.split())
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["h.db", "whole.db"]


def test_a_run_upgrades_an_older_local_file_itself_with_its_backup(tmp_path, tiny_llama_dir, small_sts_file):
    path = tmp_path / "h.db"
    _database_at(str(path), migrations.BASELINE)
    args = ["run", "--method", "untrained-mean", "--backbone", str(tiny_llama_dir), "--tasks", str(small_sts_file)]
    result = CliRunner().invoke(app, [*args, "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"h.db.rev{migrations.BASELINE}.bak").exists()
    assert db_rows(str(path), "SELECT version_num FROM alembic_version") == [(migrations.head(),)]
    assert db_rows(str(path), "SELECT count(*) FROM runs") == [(2,)]  # the old run kept, the new one added


def test_reads_leave_a_killed_writers_wal_where_it_is(tmp_path):
    """A writer killed mid-run leaves committed pages in ``-wal``: a read must not checkpoint them
    into the file (a read-write connection closing last would) nor delete the WAL."""
    import subprocess
    import sys

    path = tmp_path / "h.db"
    _database_at(str(path), migrations.head())
    code = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "conn.execute(\"UPDATE runs SET error = 'written after the last checkpoint'\")\n"
        "os._exit(0)  # as a kill: no close, no checkpoint\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    wal = tmp_path / "h.db-wal"
    assert wal.stat().st_size > 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "h.db-shm"}
    for args in (["runs", "--json"], ["show", "1", "--json"]):
        result = CliRunner().invoke(app, [*args, "--db", str(path)])
        assert result.exit_code == 0, result.output
    assert "written after the last checkpoint" in result.output  # read from the WAL
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "h.db-shm"} == before
