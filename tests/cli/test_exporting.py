"""Getting runs out (harness/cli/exporting.py): `harness export --csv` timestamps, and exports that
cannot be written failing with one message and no partial file."""

from __future__ import annotations

import datetime
import os

from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import write_board

runner = CliRunner()


def test_csv_timestamps_are_iso_8601(tmp_path):
    db = write_board(tmp_path)
    header, row = runner.invoke(app, ["export", "--csv", "-", "--db", str(db)]).stdout.splitlines()[:2]
    started = row.split(",")[header.split(",").index("started_at")]
    assert datetime.datetime.fromisoformat(started).tzinfo is not None


def test_exports_that_cannot_be_written_fail_cleanly_and_leave_no_partial_file(tmp_path):
    from leaderboard.store import open_store

    db = tmp_path / "h.db"
    open_store(db).close()
    (tmp_path / "folder.csv").mkdir()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    (tmp_path / "a-file").write_text("mine")
    try:
        cases = [
            ["--csv", str(tmp_path / "folder.csv")],
            ["--csv", str(tmp_path / "nowhere" / "r.csv")],
            ["1", "--mteb", str(tmp_path / "a-file")],
            ["1", "--model", str(tmp_path / "a-file")],
        ]
        if os.geteuid() != 0:  # root writes through permissions
            cases.append(["--json", str(locked / "r.json")])
        for args in cases:
            result = CliRunner().invoke(app, ["export", *args, "--db", str(db)])
            assert result.exit_code == 2 and "Traceback" not in result.output, (args, result.output)
            assert result.output.count("Error") == 1 and args[-1] in result.output
    finally:
        locked.chmod(0o700)
    assert not list(tmp_path.rglob("*.partial")) and (tmp_path / "a-file").read_text() == "mine"


def test_an_export_whose_write_fails_leaves_no_partial_file(tmp_path, monkeypatch):
    from leaderboard.store import open_store

    db = tmp_path / "h.db"
    open_store(db).close()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    result = CliRunner().invoke(app, ["export", "--csv", str(tmp_path / "r.csv"), "--db", str(db)])
    assert result.exit_code == 2 and "--csv" in result.output and "No space left" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("h.db")) == []
