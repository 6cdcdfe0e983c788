"""SIGKILL a `harness run` at each fault point, on SQLite and on PostgreSQL: the database stays
sound, the run is never left running, partial scores stay out of compare, and --resume completes
the run in the same row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import db_rows, run_args
from tests.training_fixtures import TRIPLETS

HARNESS = [sys.executable, "-m", "harness"]
KILL_POINTS = ["load", "train-step:3", "evaluate:2", "score-write:1"]


@pytest.fixture
def workspace(tmp_path, tiny_llama_dir, small_sts_file, any_db):
    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text("\n".join(json.dumps({"query": t.query, "pos": t.pos, "neg": t.neg}) for t in TRIPLETS) + "\n")
    second = tmp_path / "second-task.tsv"
    second.write_text(small_sts_file.read_text())
    run = run_args(
        any_db,
        tiny_llama_dir,
        small_sts_file,
        "--train-data",
        str(triplets),
        "--tasks",
        str(second),
        "--output-dir",
        str(tmp_path / "runs"),
        "--set",
        "method_args.steps=6",
        "--set",
        "method_args.checkpoint_every=2",
        "--set",
        "method_args.batch_size=2",
        "--set",
        "method_args.template='this sentence : {text}'",
        method="infonce",
    )
    return tmp_path, run, any_db


def harness(*args, env=None, check=True):
    done = subprocess.run(
        [*HARNESS, *args], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    )
    if check:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


def read(*args):
    """A read command in this process (the reaping and reads are the same code; no interpreter start-up)."""
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _scores(db) -> int:
    return db_rows(db, "SELECT count(*) FROM scores")[0][0]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_then_resume(workspace, point):
    tmp_path, run, db = workspace
    killed = harness(*run, env={"HARNESS_KILL_AT": point}, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    if "://" not in db:
        assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(db, "SELECT status FROM runs") == [("running",)]  # as the kill left it
    expected_scores = {"load": 0, "train-step:3": 0, "evaluate:2": 1, "score-write:1": 0}[point]
    assert _scores(db) == expected_scores  # a score write cut short leaves nothing behind

    (listed,) = read("runs", "--db", db, "--json")  # the next command reaps it
    assert listed["status"] == "failed" and "interrupted" in listed["error"]
    assert read("compare", "--db", db, "--json") == []
    assert read("leaderboard", "--db", db, "--json") == []
    partial = read("compare", "--include-unfinished", "--db", db, "--json")
    assert len(partial[0]["scores"]) == expected_scores

    harness("run", "--resume", "1", "--db", db, "--output-dir", str(tmp_path / "runs"))
    (done,) = read("compare", "--db", db, "--json")
    assert done["run_id"] == 1 and done["status"] == "finished"
    assert set(done["scores"]) == {"tiny-sts", "second-task"}
    assert db_rows(db, "SELECT count(*) FROM runs") == [(1,)]
    steps = [s for (s,) in db_rows(db, "SELECT step FROM metrics ORDER BY step")]
    assert steps == list(range(1, 7))
