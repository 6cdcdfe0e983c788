"""Every score records mteb's type of its task, and `compare` and `leaderboard` show MTEB's mean per
task type beside Mean(Task) where the tasks have more than one: runs of the tiny model on two STS
files and a pair-classification file, the means computed here from the recorded scores."""

from __future__ import annotations

import io
import json
import sqlite3
from statistics import fmean

import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.render import leaderboard_table
from tests.conftest import write_sts_tsv

runner = CliRunner()
TASKS = {"sts-a": "STS", "sts-b": "STS", "pairs": "PairClassification"}
STS_ROWS = [
    ("the cat sat on the mat", "a cat sat on a mat", 4.8),
    ("the dog ran in the park", "a dog ran in a park", 4.5),
    ("the man ate food", "the woman drank water", 1.2),
    ("the sun shines", "rain falls", 0.8),
    ("the sky is blue", "the grass is green", 1.5),
    ("the car drove down the road", "a car drove down a road", 4.9),
    ("quick brown fox jumps", "lazy dog sat", 0.5),
    ("the cat ran", "the dog ran", 2.7),
]


def _invoke(*args: str):
    result = runner.invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def board(tmp_path_factory, tiny_llama_dir):
    """Runs #1 (mean pooling) and #2 (last token) of the tiny model on the three task files."""
    folder = tmp_path_factory.mktemp("types")
    files = [
        write_sts_tsv(folder / "sts-a.tsv", STS_ROWS),
        write_sts_tsv(
            folder / "sts-b.tsv", [(a, d, s) for (a, _, s), (_, d, _) in zip(STS_ROWS, STS_ROWS[1:] + STS_ROWS[:1])]
        ),
        folder / "pairs.tsv",
    ]
    files[2].write_text(
        "sentence1\tsentence2\tlabel\n" + "".join(f"{a}\t{b}\t{int(s > 2.5)}\n" for a, b, s in STS_ROWS)
    )
    db = folder / "h.db"
    for method in ("untrained-mean", "untrained-last"):
        _invoke(
            "run",
            "--method",
            method,
            "--backbone",
            str(tiny_llama_dir),
            "--tasks",
            ",".join(map(str, files)),
            "--db",
            str(db),
        )
    return db


def _recorded(db) -> dict[int, dict[str, tuple[str, float]]]:
    """Run -> task -> (type, main score), read with plain SQL."""
    runs: dict[int, dict[str, tuple[str, float]]] = {}
    with sqlite3.connect(db) as conn:
        for run_id, task, kind, score in conn.execute("SELECT run_id, task, task_type, main_score FROM scores"):
            runs.setdefault(run_id, {})[task] = (kind, score)
    return runs


def _expected(scores: dict[str, tuple[str, float]]) -> dict[str, float]:
    return {"PairClassification": scores["pairs"][1], "STS": (scores["sts-a"][1] + scores["sts-b"][1]) / 2}


def test_a_run_records_each_task_type_and_show_lists_them(board):
    recorded = _recorded(board)
    assert {run: {task: kind for task, (kind, _) in scores.items()} for run, scores in recorded.items()} == {
        1: TASKS,
        2: TASKS,
    }
    shown = _invoke("show", "1", "--db", str(board)).output
    assert "Task type" in shown
    for task, kind in TASKS.items():
        assert any(task in line and kind in line for line in shown.splitlines())
    (record,) = json.loads(_invoke("show", "1", "--db", str(board), "--json").stdout)
    assert record["task_types"] == TASKS


def test_compare_shows_the_mean_of_each_type(board):
    recorded = _recorded(board)
    rows = json.loads(_invoke("compare", "1", "2", "--db", str(board), "--json").stdout)
    for row in rows:
        scores = recorded[row["run_id"]]
        assert list(row["type_means"]) == ["PairClassification", "STS"]  # by name
        assert row["type_means"] == pytest.approx(_expected(scores))
        assert row["mean"] == pytest.approx(sum(score for _, score in scores.values()) / 3)
    table = _invoke("compare", "1", "2", "--db", str(board)).output
    lines = {line.strip().split("  ")[0]: line for line in table.splitlines() if "Mean" in line}
    for label, kind in (("Mean PairClassification over 1", "PairClassification"), ("Mean STS over 2", "STS")):
        assert f"{100 * _expected(recorded[1])[kind]:.2f}" in lines[label]
        assert f"{100 * _expected(recorded[2])[kind]:.2f}" in lines[label]


def test_leaderboard_shows_the_mean_of_each_type(board):
    recorded = _recorded(board)
    ranked = json.loads(_invoke("leaderboard", "--db", str(board), "--json").stdout)
    assert {r["run_id"] for r in ranked} == {1, 2}
    for row in ranked:
        assert row["type_means"] == pytest.approx(_expected(recorded[row["run_id"]]))
        assert row["mean"] == pytest.approx(fmean(score for _, score in recorded[row["run_id"]].values()))
    piped = _invoke("leaderboard", "--db", str(board)).output  # 80 columns: the columns on the right give way first
    assert "not shown at this width: Mean STS, sts-a, sts-b, pairs" in " ".join(piped.split())
    table = leaderboard_table(ranked, list(TASKS))
    assert [str(c.header) for c in table.columns][5:9] == ["Mean", "Mean PairClassification", "Mean STS", "sts-a"]
    wide = Console(width=200, file=io.StringIO(), color_system=None)
    wide.print(table)
    for run_id in (1, 2):
        cells = next(line for line in wide.file.getvalue().splitlines() if f"#{run_id} " in line).split()
        expected = _expected(recorded[run_id])
        assert cells[6:8] == [f"{100 * expected['PairClassification']:.2f}", f"{100 * expected['STS']:.2f}"]


def test_one_type_adds_nothing(board):
    ranked = json.loads(_invoke("leaderboard", "--tasks", "sts-a,sts-b", "--db", str(board), "--json").stdout)
    assert len(ranked) == 2 and all("type_means" not in row for row in ranked)
    table = _invoke("leaderboard", "--tasks", "sts-a,sts-b", "--db", str(board)).output
    assert "Mean STS" not in table and "Mean" in table
