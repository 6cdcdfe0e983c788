"""A live run is never reaped nor deleted; a dead one (or one whose pid was reused) is reaped;
``HARNESS_STALE_AFTER`` is checked. The probe that found it: with a run training,
``HARNESS_STALE_AFTER=2 harness delete --status failed --yes`` deleted it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from leaderboard.store import open_store

HARNESS = [sys.executable, "-m", "harness"]
# a process that records a running run and stays alive, like a run in its training loop
LIVE_RUN = """
import sys, time
from leaderboard.store import open_store
store = open_store(sys.argv[1])
env = {"versions": {}, "hardware": {}}
run_id = store.start_run(method="m", backbone="b", task_spec="t", task_names=["t"], config={}, config_hash="h", seed=0, environment=env)
print(run_id, flush=True)
time.sleep(600)
"""


def _harness(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HARNESS, *args],
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _status(db, run_id: int) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]


def test_a_live_run_with_an_old_heartbeat_is_neither_reaped_nor_deleted(tmp_path):
    db = tmp_path / "h.db"
    live = subprocess.Popen([sys.executable, "-c", LIVE_RUN, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        run_id = int(live.stdout.readline())
        with sqlite3.connect(db) as conn:  # as if its heartbeat thread had been starved for an hour
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time() - 3600, run_id))
        listed = _harness("runs", "--db", str(db), "--json", HARNESS_STALE_AFTER="60")
        assert [r["status"] for r in json.loads(listed.stdout)] == ["running"]
        swept = _harness("delete", "--status", "failed", "--yes", "--db", str(db), HARNESS_STALE_AFTER="60")
        assert swept.returncode == 0 and "No runs match" in swept.stdout
        named = _harness("delete", str(run_id), "--yes", "--db", str(db), HARNESS_STALE_AFTER="60")
        assert named.returncode == 2 and "is running" in named.stderr
        assert _status(db, run_id) == "running"
    finally:
        live.kill()
        live.wait()
    listed = _harness("runs", "--status", "failed", "--db", str(db), "--json")  # the process is gone
    (shown,) = json.loads(listed.stdout)
    assert shown["status"] == "failed" and "ended without finishing" in shown["error"]
    assert _status(db, run_id) == "running"  # a read shows it, never writes it
    _harness("delete", "999", "--yes", "--db", str(db))  # a command that records marks it
    assert _status(db, run_id) == "failed"


def test_a_reused_pid_does_not_keep_a_dead_run_alive(tmp_path):
    """The row names this (live) test process's pid, but another start time: a different process.
    Taken for a reused pid once the heartbeat has stopped too (a stepped clock moves start times)."""
    store = open_store(tmp_path / "h.db")
    run_id = store.start_run(
        method="m",
        backbone="b",
        task_spec="t",
        task_names=["t"],
        config={},
        config_hash="h",
        seed=0,
        environment={"versions": {}, "hardware": {}},
    )
    kept = store.start_run(
        method="m",
        backbone="b",
        task_spec="t",
        task_names=["t"],
        config={},
        config_hash="h",
        seed=0,
        environment={"versions": {}, "hardware": {}},
    )
    with sqlite3.connect(tmp_path / "h.db") as conn:
        conn.execute("UPDATE runs SET process_started_at = process_started_at - 3600")
    assert store.reap_stale() == []  # heartbeats fresh: perhaps the clock was stepped
    with sqlite3.connect(tmp_path / "h.db") as conn:
        conn.execute("UPDATE runs SET heartbeat_at = heartbeat_at - 3600 WHERE id = ?", (run_id,))
    assert store.reap_stale() == [run_id]
    assert store.get_run(kept)["status"] == "running"


@pytest.mark.parametrize("value", ["abc", "nan", "-5", "2", "inf", ""])
def test_harness_stale_after_is_checked(tmp_path, value):
    db = tmp_path / "h.db"
    open_store(db).close()
    done = _harness("runs", "--db", str(db), HARNESS_STALE_AFTER=value)
    if value == "":
        assert done.returncode == 0  # unset in effect: the default
        return
    assert done.returncode == 2 and "HARNESS_STALE_AFTER" in done.stderr and "Traceback" not in done.stderr
