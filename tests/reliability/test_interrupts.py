"""Interrupted runs: Ctrl-C or SIGTERM mid-stage marks the run interrupted with every step done
recorded and one line naming `harness run --resume N`, which then finishes it; a checkpoint garbled
(as by a full disk) fails the resume with its path and leaves the run interrupted. Each test drives
the real CLI on the tiny local Llama."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import HARNESS, harness_env, infonce_run_args, sqlite_rows

LONG_RUN_STEPS = 120  # steps: seconds of training with a checkpoint every ~0.1 s, time to be signalled mid-stage


def _start_long_run(tmp_path, tiny_llama_dir, triplets, small_sts_file, steps=LONG_RUN_STEPS):
    args = infonce_run_args(
        tmp_path / "h.db",
        tiny_llama_dir,
        triplets,
        small_sts_file,
        tmp_path / "runs",
        f"method_args.steps={steps}",
        "method_args.checkpoint_minutes=0.002",
    )  # a checkpoint every ~0.1 s
    return subprocess.Popen(
        [*HARNESS, *args], env=harness_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_checkpoint(tmp_path, process, at_least=3) -> None:
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        for state in (tmp_path / "runs").glob("run-1-*/checkpoints/0-contrastive/state.json"):
            try:
                if json.loads(state.read_text())["step"] >= at_least:
                    return
            except (OSError, ValueError):
                pass
        time.sleep(0.05)
    raise AssertionError("no timed checkpoint appeared before the run ended")


@pytest.mark.parametrize("sig, reason", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_ctrl_c_or_sigterm_marks_the_run_interrupted_and_resume_continues(
    tmp_path, tiny_llama_dir, triplets, small_sts_file, sig, reason
):
    process = _start_long_run(tmp_path, tiny_llama_dir, triplets, small_sts_file)
    _wait_for_checkpoint(tmp_path, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("Leaderboard: ")]
    assert (
        len(lines) == 1 and "harness run --resume 1" in lines[0] and reason in lines[0] and "Traceback" not in stderr
    )

    db = tmp_path / "h.db"
    ((status, error),) = sqlite_rows(db, "SELECT status, error FROM runs")
    assert status == "interrupted" and reason in error
    recorded = [s for (s,) in sqlite_rows(db, "SELECT step FROM metrics ORDER BY step")]
    (state_file,) = (tmp_path / "runs").glob("run-1-*/checkpoints/0-contrastive/state.json")
    saved = json.loads(state_file.read_text())["step"]
    assert recorded == list(range(1, len(recorded) + 1)) and len(recorded) >= saved >= 3  # every step done is recorded
    assert saved < LONG_RUN_STEPS  # the signal came mid-stage

    resumed = subprocess.run(
        [*HARNESS, "run", "--resume", "1", "--db", str(db), "--output-dir", str(tmp_path / "runs")],
        env=harness_env(),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming stage contrastive at step {saved}" in resumed.stdout
    assert sqlite_rows(db, "SELECT status FROM runs") == [("finished",)]
    assert [s for (s,) in sqlite_rows(db, "SELECT step FROM metrics ORDER BY step")] == list(
        range(1, LONG_RUN_STEPS + 1)
    )


@pytest.mark.parametrize("garble", ["state.json", "trainable.pt"])
def test_a_garbled_checkpoint_fails_resume_with_a_message_and_the_run_stays_interrupted(
    tmp_path, tiny_llama_dir, triplets, small_sts_file, garble
):
    out, db = tmp_path / "runs", tmp_path / "h.db"
    done = CliRunner().invoke(
        app, infonce_run_args(db, tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2")
    )
    assert done.exit_code == 0, done.output
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'interrupted', error = 'interrupted by the user (Ctrl-C)'")
    (checkpoint,) = [
        p
        for p in (Path(sqlite_rows(db, "SELECT output_dir FROM runs")[0][0]) / "checkpoints").iterdir()
        if not p.name.startswith(".")
    ]
    target = checkpoint / garble
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])  # truncated, as by a full disk
    refused = subprocess.run(
        [*HARNESS, "run", "--resume", "1", "--db", str(db)], env=harness_env(), capture_output=True, text=True
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert str(target) in refused.stderr and "cannot resume" in refused.stderr
    assert sqlite_rows(db, "SELECT status FROM runs") == [("interrupted",)]
