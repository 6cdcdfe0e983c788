"""Each trained run's output folder is its own (harness/runs/folders.py): two databases writing
under one --output-dir never share checkpoints, a recreated database trains from scratch in a new
folder, and --resume refuses a folder another run owns. Each test drives the real CLI on the tiny
local Llama."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import HARNESS, harness_env, infonce_run_args, sqlite_rows


def test_two_databases_in_one_folder_never_share_checkpoints(tmp_path, tiny_llama_dir, triplets, small_sts_file):
    """On the old layout b.db's run #1 found a.db's run-1 checkpoints, trained nothing and recorded
    a.db's score under its own config."""
    runner = CliRunner()
    out = tmp_path / "runs"
    a = runner.invoke(
        app, infonce_run_args(tmp_path / "a.db", tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2")
    )
    assert a.exit_code == 0, a.output
    b = runner.invoke(
        app,
        infonce_run_args(
            tmp_path / "b.db",
            tiny_llama_dir,
            triplets,
            small_sts_file,
            out,
            "method_args.steps=5",
            "method_args.lr=1e-3",
        ),
    )
    assert b.exit_code == 0, b.output

    steps_b = [s for (s,) in sqlite_rows(tmp_path / "b.db", "SELECT step FROM metrics ORDER BY step")]
    assert steps_b == [1, 2, 3, 4, 5]  # b trained every one of its own steps
    (dir_a, uuid_a), (dir_b, uuid_b) = (
        sqlite_rows(tmp_path / n, "SELECT output_dir, uuid FROM runs")[0] for n in ("a.db", "b.db")
    )
    assert dir_a != dir_b and uuid_a != uuid_b and Path(dir_a).parent == Path(dir_b).parent == out.resolve()
    assert json.loads((Path(dir_b) / "harness-run.json").read_text())["run_uuid"] == uuid_b
    state_a = json.loads((Path(dir_a) / "checkpoints" / "0-contrastive" / "state.json").read_text())
    assert state_a["step"] == 2  # a's files untouched

    (tmp_path / "b.db").unlink()  # `rm harness.db` then run again: a third folder, trained from scratch
    again = runner.invoke(
        app, infonce_run_args(tmp_path / "b.db", tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=3")
    )
    assert again.exit_code == 0, again.output
    assert [s for (s,) in sqlite_rows(tmp_path / "b.db", "SELECT step FROM metrics ORDER BY step")] == [1, 2, 3]
    assert len(list(out.iterdir())) == 3


def test_resume_refuses_a_folder_of_another_run(tmp_path, tiny_llama_dir, triplets, small_sts_file):
    out, db = tmp_path / "runs", tmp_path / "h.db"
    victim = subprocess.run(
        [
            *HARNESS,
            *infonce_run_args(
                db,
                tiny_llama_dir,
                triplets,
                small_sts_file,
                out,
                "method_args.steps=6",
                "method_args.checkpoint_every=2",
            ),
        ],
        env=harness_env(HARNESS_KILL_AT="train-step:3"),
        capture_output=True,
        text=True,
    )
    assert victim.returncode == -signal.SIGKILL
    other = CliRunner().invoke(
        app,
        infonce_run_args(tmp_path / "other.db", tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2"),
    )
    assert other.exit_code == 0, other.output
    (other_dir,) = sqlite_rows(tmp_path / "other.db", "SELECT output_dir FROM runs")[0]
    with sqlite3.connect(db) as conn:  # the row now names the other database's folder
        conn.execute("UPDATE runs SET output_dir = ?", (other_dir,))

    refused = subprocess.run(
        [*HARNESS, "run", "--resume", "1", "--db", str(db)], env=harness_env(), capture_output=True, text=True
    )
    assert refused.returncode == 2, refused.stderr
    assert "refusing to resume from another run's checkpoints" in refused.stderr and "Traceback" not in refused.stderr
    assert (
        sqlite_rows(db, "SELECT status, error FROM runs")[0][0] == "failed"
    )  # reaped by the command, then left alone
    assert sqlite_rows(db, "SELECT count(*) FROM scores") == [(0,)]
