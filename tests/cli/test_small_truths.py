"""Issue 20's small truths: what the CLI says matches what it does."""

from __future__ import annotations

import datetime
import json

from typer.testing import CliRunner

from harness.cli import app
from harness.cli.app import split_items
from leaderboard.store import open_store

runner = CliRunner()


def _board(tmp_path, seeds=(0,)):
    db = tmp_path / "h.db"
    store = open_store(db)
    for seed in seeds:
        run = store.start_run(
            method="m",
            backbone="b",
            task_spec="t",
            task_names=["T"],
            config={"seed": seed, "x": 1},
            config_hash="h",
            seed=seed,
            environment={"versions": {"torch": "9.9"}, "hardware": {"cpus": 2}},
        )
        store.record_score(
            run, task="T", main_metric="cosine_spearman", main_score=0.5 + seed / 10, details={}, task_version="v1"
        )
        store.finish_run(run)
    store.close()
    return db


def test_one_seed_shows_no_spread(tmp_path):
    db = _board(tmp_path)
    shown = runner.invoke(app, ["compare", "1", "--by-config", "--db", str(db)]).stdout
    row = next(line for line in shown.splitlines() if "50.00" in line)
    assert "50.00 (n=1)" in row and "+-" not in row
    two = runner.invoke(
        app,
        [
            "compare",
            "1",
            "2",
            "--by-config",
            "--db",
            str(_board(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, seeds=(0, 1))),
        ],
    ).stdout
    assert "+- 7.07 (n=2)" in two


def test_csv_timestamps_are_iso_8601(tmp_path):
    db = _board(tmp_path)
    header, row = runner.invoke(app, ["export", "--csv", "-", "--db", str(db)]).stdout.splitlines()[:2]
    started = row.split(",")[header.split(",").index("started_at")]
    assert datetime.datetime.fromisoformat(started).tzinfo is not None


def test_show_prints_the_environment(tmp_path):
    shown = runner.invoke(app, ["show", "1", "--db", str(_board(tmp_path))]).stdout
    assert "Environment" in shown and "versions.torch" in shown and "9.9" in shown and "hardware.cpus" in shown


def test_help_names_postgresql():
    assert "PostgreSQL" in runner.invoke(app, ["--help"]).stdout


def test_tasks_take_commas_or_repeats(tmp_path):
    assert split_items(["offline,a.tsv", "b.tsv"]) == ["offline", "a.tsv", "b.tsv"]
    kept = tmp_path / "with,comma.tsv"
    kept.write_text("x")
    assert split_items([str(kept)]) == [str(kept)]


def test_run_takes_device_and_batch_size_flags(tmp_path):
    result = runner.invoke(
        app, ["run", "--method", "untrained-mean", "--device", "meta", "--db", str(tmp_path / "h.db")]
    )
    assert result.exit_code == 2 and "device='meta'" in result.output
    result = runner.invoke(
        app, ["run", "--method", "untrained-mean", "--batch-size", "0", "--db", str(tmp_path / "h.db")]
    )
    assert result.exit_code == 2 and "batch_size=0" in result.output


def test_delete_lists_the_folders_before_asking(tmp_path, monkeypatch):
    from harness.cli import reading

    monkeypatch.setattr(reading, "interactive", lambda: True)
    db = _board(tmp_path)
    folder = tmp_path / "run-1-folder"
    folder.mkdir()
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET output_dir = ?", (str(folder),))
    result = runner.invoke(app, ["delete", "1", "--db", str(db)], input="n\n")
    assert str(folder) in result.output and "Nothing deleted" in result.output


def test_show_json_carries_task_versions(tmp_path):
    (record,) = json.loads(runner.invoke(app, ["show", "1", "--db", str(_board(tmp_path)), "--json"]).stdout)
    assert record["task_versions"] == {"T": "v1"}
