"""Reading and managing recorded runs (harness/cli/reading.py): `harness show` (its environment and
task versions), `harness runs` filters and `harness delete` (rows and the run's own folders only)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import infonce_run_args, run_args, sqlite_rows, write_board

runner = CliRunner()


def test_show_prints_the_environment(tmp_path):
    shown = runner.invoke(app, ["show", "1", "--db", str(write_board(tmp_path))]).stdout
    assert "Environment" in shown and "versions.torch" in shown and "9.9" in shown and "hardware.cpus" in shown


def test_show_json_carries_task_versions(tmp_path):
    (record,) = json.loads(runner.invoke(app, ["show", "1", "--db", str(write_board(tmp_path)), "--json"]).stdout)
    assert record["task_versions"] == {"T": "v1"}


def test_delete_lists_the_folders_before_asking(tmp_path, monkeypatch):
    from harness.cli import reading

    monkeypatch.setattr(reading, "interactive", lambda: True)
    db = write_board(tmp_path)
    folder = tmp_path / "run-1-folder"
    folder.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET output_dir = ?", (str(folder),))
    result = runner.invoke(app, ["delete", "1", "--db", str(db)], input="n\n")
    assert str(folder) in result.output and "Nothing deleted" in result.output


def test_runs_filters_and_delete_removes_rows_and_own_folders_only(
    tmp_path, tiny_llama_dir, triplets, small_sts_file, monkeypatch
):
    runner = CliRunner()
    db, out = tmp_path / "h.db", tmp_path / "runs"
    assert (
        runner.invoke(
            app, infonce_run_args(db, tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2")
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, infonce_run_args(db, tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2")
        ).exit_code
        == 0
    )
    assert runner.invoke(app, run_args(db, tiny_llama_dir, small_sts_file)).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'failed' WHERE id = 2")

    def listed(*options: str) -> list[int]:
        result = runner.invoke(app, ["runs", "--db", str(db), "--json", *options])
        assert result.exit_code == 0, result.output
        return [r["run_id"] for r in json.loads(result.stdout)]

    assert listed() == [3, 2, 1]
    assert listed("--status", "failed") == [2]
    assert listed("--method", "infonce") == [2, 1]
    assert listed("--status", "finished", "--method", "infonce") == [1]
    bad = runner.invoke(app, ["runs", "--db", str(db), "--status", "broken"])
    assert bad.exit_code == 2 and "unknown --status 'broken'" in bad.output

    folder_1, folder_2 = (
        Path(d) for (d,) in sqlite_rows(db, "SELECT output_dir FROM runs WHERE id IN (1, 2) ORDER BY id")
    )
    not_asked = runner.invoke(app, ["delete", "2", "--db", str(db)])
    assert not_asked.exit_code == 2 and "--yes" in not_asked.output and folder_2.is_dir()
    monkeypatch.setattr("harness.cli.reading.interactive", lambda: True)
    declined = runner.invoke(app, ["delete", "--status", "failed", "--db", str(db)], input="n\n")
    assert declined.exit_code == 0 and "Nothing deleted" in declined.output and folder_2.is_dir()
    accepted = runner.invoke(app, ["delete", "--status", "failed", "--db", str(db)], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert not folder_2.exists() and folder_1.is_dir()
    assert sqlite_rows(db, "SELECT count(*) FROM runs WHERE id = 2") == [(0,)]
    for table in ("scores", "timings", "metrics"):
        assert sqlite_rows(db, f"SELECT count(*) FROM {table} WHERE run_id = 2") == [(0,)]

    (folder_1 / "harness-run.json").write_text(json.dumps({"run_uuid": "someone-else"}))
    kept = runner.invoke(app, ["delete", "1", "--yes", "--db", str(db)])
    assert kept.exit_code == 0 and "not this run's own folder" in kept.output and folder_1.is_dir()
    assert listed() == [3]
