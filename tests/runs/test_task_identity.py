"""A task is its content, not its file name: two files with one stem are two tasks to
every comparison, and `harness eval` never silently replaces a score."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from harness.cli import app
from leaderboard.queries import compare, rank, separate_versions
from tests.conftest import write_sts_tsv

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _other_file(tmp_path, small_sts_file):
    """Same stem as ``small_sts_file``, other content (fewer pairs, other scores)."""
    rows = [line.split("\t") for line in small_sts_file.read_text().splitlines()[1:7]]
    folder = tmp_path / "other"
    folder.mkdir()
    return write_sts_tsv(folder / small_sts_file.name, [(a, b, 5 - float(s)) for a, b, s in rows])


def _untrained(db, backbone, task):
    result = _invoke(
        "run", "--method", "untrained-mean", "--backbone", str(backbone), "--tasks", str(task), "--db", str(db)
    )
    assert result.exit_code == 0, result.output


def test_two_files_with_one_stem_are_compared_apart(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    other = _other_file(tmp_path, small_sts_file)
    _untrained(db, tiny_llama_dir, small_sts_file)
    _untrained(db, tiny_llama_dir, other)
    stem = small_sts_file.stem
    runs = json.loads(_invoke("compare", "1", "2", "--db", str(db), "--json").stdout)
    versions = [run["task_versions"][stem] for run in runs]
    assert versions[0] != versions[1] and all(len(v) == 12 for v in versions)
    shown = _invoke("compare", "1", "2", "--db", str(db)).stdout
    assert (
        f"{stem}@{versions[0][:8]}" in shown
        and f"{stem}@{versions[1][:8]}" in shown
        and "2 versions of its data" in shown
    )
    assert "Mean(Task) over 0" in shown  # nothing in common: no mean puts them together
    board = _invoke("leaderboard", "--tasks", str(small_sts_file), "--db", str(db), "--json")
    assert [r["run_id"] for r in json.loads(board.stdout)] == [1]
    board = _invoke("leaderboard", "--tasks", str(small_sts_file), "--db", str(db)).stdout
    assert "left out (#2)" in board
    csv = _invoke("export", "--csv", "-", "--db", str(db)).stdout.splitlines()[0]
    assert f"{stem}@{versions[0][:8]}" in csv and f"{stem}@{versions[1][:8]}" in csv


def test_eval_refuses_a_task_it_has_unless_forced(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    other = _other_file(tmp_path, small_sts_file)
    _untrained(db, tiny_llama_dir, small_sts_file)
    (before,) = json.loads(_invoke("show", "1", "--db", str(db), "--json").stdout)
    again = runner.invoke(app, ["eval", "1", "--tasks", str(small_sts_file), "--db", str(db)])
    assert again.exit_code == 2 and "add --force" in again.output
    clash = runner.invoke(app, ["eval", "1", "--tasks", str(other), "--db", str(db)])
    assert clash.exit_code == 2 and "from other data" in clash.output
    (unchanged,) = json.loads(_invoke("show", "1", "--db", str(db), "--json").stdout)
    assert unchanged["scores"] == before["scores"] and unchanged["task_versions"] == before["task_versions"]
    forced = runner.invoke(app, ["eval", "1", "--tasks", str(other), "--force", "--db", str(db)])
    assert forced.exit_code == 0, forced.output
    (after,) = json.loads(_invoke("show", "1", "--db", str(db), "--json").stdout)
    stem = small_sts_file.stem
    assert (
        after["task_versions"][stem] != before["task_versions"][stem]
        and after["scores"][stem] != before["scores"][stem]
    )


def test_resume_refuses_a_task_file_that_changed(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    _untrained(db, tiny_llama_dir, small_sts_file)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'interrupted'")
    small_sts_file.write_text(small_sts_file.read_text().replace("4.8", "0.1"))
    result = runner.invoke(app, ["run", "--resume", "1", "--db", str(db)])
    assert result.exit_code == 2 and "changed since run 1 was recorded" in result.output


def _run(run_id, scores, versions):
    return {"run_id": run_id, "tasks": list(scores), "scores": scores, "task_versions": versions}


def test_versions_are_separated_only_where_they_differ():
    runs = [
        _run(1, {"A": 0.5, "B": 0.7}, {"A": "aaaa1111", "B": "b"}),
        _run(2, {"A": 0.6, "B": 0.8}, {"A": "cccc2222", "B": "b"}),
        _run(3, {"A": 0.4}, {"A": None}),
    ]
    separated, notes = separate_versions(runs)
    assert [sorted(r["scores"]) for r in separated] == [["A@aaaa1111", "B"], ["A@cccc2222", "B"], ["A@?"]]
    assert len(notes) == 1 and notes[0].startswith("A: 3 versions")
    comparison = compare(runs[:2])
    assert comparison.shared_tasks == ["B"] and comparison.means == [0.7, 0.8]
    assert [r["run_id"] for r in rank(runs, ["A"], {"A": "cccc2222"})] == [2]
