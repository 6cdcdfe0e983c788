"""Which leaderboard a command reads or writes (harness/cli/database.py): the one `harness --help`
names, announced first on stderr by every command, with where to point elsewhere."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import run_untrained

runner = CliRunner()


def test_the_leaderboards_the_help_names_are_the_ones_used(tmp_path, monkeypatch):
    """`harness --help` says where runs land: ./harness.db by default, or a team's PostgreSQL given
    as a --db URL. Without --db a command uses that file, and the URL shown is a PostgreSQL server."""
    from leaderboard.database import POSTGRES_DRIVER, locate

    shown = " ".join(runner.invoke(app, ["--help"], terminal_width=200).stdout.split())
    default = re.search(r"a SQLite file \(\./(\S+) by default\)", shown)
    url = re.search(r"PostgreSQL \(--db (postgresql://\S+)\)", shown)
    assert default and url, shown
    monkeypatch.delenv("HARNESS_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["runs"])
    assert result.stderr.splitlines()[0] == f"Leaderboard: {tmp_path / default[1]}", result.stderr
    location = locate(url[1])
    assert not location.is_sqlite and location.url.drivername == POSTGRES_DRIVER


def test_every_command_names_its_leaderboard_first(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    first = run_untrained(db, tiny_llama_dir, small_sts_file)
    assert first.stderr.splitlines()[0] == f"Leaderboard: {db} (a new file)"
    commands = [
        ["runs"],
        ["runs", "--json"],
        ["compare"],
        ["compare", "1", "--json"],
        ["leaderboard"],
        ["show", "1"],
        ["export", "--csv", "-"],
        ["export", "1", "--mteb", str(tmp_path / "mteb")],
        ["delete", "1"],
        ["eval", "1", "--tasks", str(small_sts_file)],
        ["plot", "1", "--out", str(tmp_path / "loss.png")],
        ["mine", str(small_sts_file), "--miner", "run:1", "-o", str(tmp_path / "mined.jsonl")],
    ]
    for command in commands:
        result = runner.invoke(app, [*command, "--db", str(db)])
        assert result.stderr.splitlines()[0] == f"Leaderboard: {db}", (command, result.stderr)
    for command in (["runs"], ["compare", "1"]):  # where nothing is yet: where it looked, and how to point elsewhere
        result = runner.invoke(app, [*command, "--db", str(tmp_path / "none.db")])
        lines = result.stderr.splitlines()
        assert lines[0] == f"Leaderboard: {tmp_path / 'none.db'}" and "--db / HARNESS_DB" in result.stderr, command


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://ann:secret@host:abc/db", "is not a database URL"),
        ("postgresql://ann:se/cret@host:abc/db", "is not a database URL"),
        ("mysql://ann:p@secret@host/db", "records into SQLite or PostgreSQL"),
        ("mysql://ann:secret@host/db", "records into SQLite or PostgreSQL"),
        ("sqlite://", "in-memory database keeps nothing"),
    ],
)
def test_a_db_url_it_cannot_use_is_refused_without_showing_its_password(tmp_path, url, says):
    result = runner.invoke(app, ["runs", "--db", url])
    assert result.exit_code == 2 and "Traceback" not in result.output
    said = " ".join(result.output.split())
    assert says in said and "secret" not in said
    assert ("ann:***@" in said) == ("ann:" in url)
