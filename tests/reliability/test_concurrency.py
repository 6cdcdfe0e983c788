"""Eight processes record runs into one database (a SQLite file, a PostgreSQL database) while
another process runs `compare` in a loop: every run arrives whole and nobody sees "database is
locked"."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

WRITERS, RUNS_EACH, TASKS = 8, 20, 10

WRITER = textwrap.dedent(
    """
    import sys
    from leaderboard.store import open_store
    store = open_store(sys.argv[1])
    for r in range(int(sys.argv[3])):
        run_id = store.start_run(method=f"writer{sys.argv[2]}", backbone="b", task_spec="t",
            task_names=[f"T{t}" for t in range(int(sys.argv[4]))], config={"r": r}, config_hash="h",
            seed=r, environment={})
        for t in range(int(sys.argv[4])):
            store.record_score(run_id, task=f"T{t}", main_metric="cosine_spearman",
                main_score=(t + 1) / 100, details={"test": []})
        store.record_timing(run_id, phase="evaluate", seconds=0.1)
        store.finish_run(run_id)
    """
)


READER = textwrap.dedent(
    """
    import json, sys, pathlib, traceback
    from typer.testing import CliRunner
    from harness.cli import app
    runner, reads, stop = CliRunner(), 0, pathlib.Path(sys.argv[2])
    pathlib.Path(sys.argv[2] + ".ready").touch()
    while True:  # one last read after the writers are done, too
        finished = stop.exists()
        result = runner.invoke(app, ["compare", "--last", "20", "--db", sys.argv[1], "--json"])
        if result.exit_code != 0:
            trace = "".join(traceback.format_exception(result.exception)) if result.exception else ""
            sys.exit("compare failed: " + result.output + trace)
        for run in json.loads(result.stdout):
            if run["status"] != "finished" or len(run["scores"]) != int(sys.argv[3]):
                sys.exit("a half-recorded run was shown: " + json.dumps(run))
        reads += 1
        if finished:
            break
    print(reads)
    """
)


def test_eight_writers_and_a_reader(tmp_path, any_db):
    db = any_db
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    from leaderboard.store import open_store

    open_store(db).close()  # created once, so every writer finds the schema in place
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, db, str(stop), str(TASKS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (tmp_path / "stop.ready").exists():  # the reader is looping before any writer starts
        assert reader.poll() is None and time.time() < deadline, reader.stderr.read()[-2000:]
        time.sleep(0.05)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, db, str(w), str(RUNS_EACH), str(TASKS)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    failures = [w.stderr.read() for w in writers if w.wait() != 0]
    stop.touch()
    out, err = reader.communicate(timeout=120)
    assert not failures, failures[0][-2000:]
    assert reader.returncode == 0, (out + err)[-2000:]
    reads = int(out.strip().splitlines()[-1])
    assert reads >= 1
    print(f"concurrency: {WRITERS} writers x {RUNS_EACH} runs x {TASKS} scores, {reads} compare reads")

    store = open_store(db)
    runs = store.runs(statuses=None)
    assert len(runs) == WRITERS * RUNS_EACH
    assert all(r["status"] == "finished" and len(r["scores"]) == TASKS for r in runs)
    assert sorted({r["method"] for r in runs}) == sorted(f"writer{w}" for w in range(WRITERS))


def test_read_commands_take_no_write_lock(tmp_path):
    """While another process holds the write lock, `compare`, `runs` and `show` answer at once
    (a reader used to take two write transactions per command, and could starve behind writers)."""
    import sqlite3

    from typer.testing import CliRunner

    from harness.cli import app
    from leaderboard.store import open_store

    db = tmp_path / "busy.db"
    store = open_store(db)
    run_id = store.start_run(
        method="m", backbone="b", task_spec="t", task_names=["T"], config={}, config_hash="h", seed=0, environment={}
    )
    store.record_score(run_id, task="T", main_metric="cosine_spearman", main_score=0.5, details={})
    store.finish_run(run_id)
    store.close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer in the middle of its transaction
    try:
        started = time.time()
        for command in (["compare", "--json"], ["runs", "--json"], ["show", "1", "--json"]):
            result = CliRunner().invoke(app, [*command, "--db", str(db)])
            assert result.exit_code == 0, (command, result.output, result.exception)
        assert time.time() - started < 30, "a read command waited for the write lock"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
