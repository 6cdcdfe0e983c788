"""The SQLite store: lifecycle, refusal of foreign and damaged files, the journal mode set once,
schema versions, stale runs; and queries."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from leaderboard.migrations import ALEMBIC_USER_VERSION
from leaderboard.queries import compare, rank
from leaderboard.store import LeaderboardError, open_store
from tests.conftest import sqlite_rows

ENV = {"git_sha": "abc", "git_dirty": False, "versions": {"torch": "x"}, "hardware": {"cpu_count": 2}}


def _start(store, method="m", tasks=("A", "B"), seed=0) -> int:
    return store.start_run(
        method=method,
        backbone="b",
        task_spec="t",
        task_names=list(tasks),
        config={"method": method},
        config_hash="h" * 64,
        seed=seed,
        environment=ENV,
    )


def _record(store, run_id, scores: dict[str, float]) -> None:
    for task, value in scores.items():
        store.record_score(run_id, task=task, main_metric="cosine_spearman", main_score=value, details={"test": []})


def test_lifecycle_and_records(tmp_path):
    store = open_store(tmp_path / "h.db")
    run_id = _start(store)
    assert store.get_run(run_id)["status"] == "running"
    _record(store, run_id, {"A": 0.5, "B": 0.7})
    store.record_score(run_id, task="A", main_metric="cosine_spearman", main_score=0.6, details={})  # replaces
    store.record_timing(run_id, phase="load", seconds=1.5, items=1, tokens=None, peak_memory_bytes=10)
    store.finish_run(run_id)
    record = store.get_run(run_id)
    assert record["status"] == "finished" and record["ended_at"] >= record["started_at"]
    assert record["scores"] == {"A": 0.6, "B": 0.7}
    assert record["timings"][0]["seconds"] == 1.5 and record["versions"] == {"torch": "x"}
    assert record["pid"] == os.getpid()


def test_wal_mode_and_schema_version(tmp_path):
    open_store(tmp_path / "h.db")
    with sqlite3.connect(tmp_path / "h.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == ALEMBIC_USER_VERSION


def test_failed_and_unfinished_runs_stay_out_of_default_queries(tmp_path):
    store = open_store(tmp_path / "h.db")
    done, failed, running = _start(store), _start(store), _start(store)
    for run_id in (done, failed, running):
        _record(store, run_id, {"A": 0.1})
    store.finish_run(done)
    store.fail_run(failed, "boom")
    assert [r["run_id"] for r in store.runs()] == [done]
    assert {r["run_id"] for r in store.runs(statuses=None)} == {done, failed, running}
    assert store.get_run(failed)["error"] == "boom"


def test_stale_running_run_of_a_dead_process_is_marked_failed(tmp_path):
    store = open_store(tmp_path / "h.db")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, alive = _start(store), _start(store)
    with sqlite3.connect(tmp_path / "h.db") as conn:
        conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead.pid, stale))
    assert store.reap_stale() == [stale]
    assert store.get_run(stale)["status"] == "failed" and "interrupted" in store.get_run(stale)["error"]
    assert store.get_run(alive)["status"] == "running"


def test_a_file_that_is_not_sqlite_is_refused_and_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n")
    before = path.read_bytes()
    with pytest.raises(LeaderboardError, match="not a SQLite database"):
        open_store(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_another_apps_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(LeaderboardError, match="not a harness leaderboard"):
        open_store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0


@pytest.mark.parametrize(
    "change", ["UPDATE alembic_version SET version_num = '9999'", f"PRAGMA user_version = {ALEMBIC_USER_VERSION + 1}"]
)
def test_a_newer_schema_is_refused(tmp_path, change):
    path = tmp_path / "new.db"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(change)
    before = path.read_bytes()
    with pytest.raises(LeaderboardError, match="newer harness"):
        open_store(path)
    assert path.read_bytes() == before


def test_read_only_open_does_not_create(tmp_path):
    with pytest.raises(LeaderboardError, match="no leaderboard"):
        open_store(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_unknown_run_ids_are_named(tmp_path):
    store = open_store(tmp_path / "h.db")
    with pytest.raises(LeaderboardError, match="no run 42"):
        store.runs(ids=[42])


def _run(run_id, scores, method="m"):
    return {
        "run_id": run_id,
        "method": method,
        "backbone": "b",
        "tasks": list(scores),
        "scores": scores,
        "seed": 0,
        "ended_at": None,
    }


def test_compare_means_over_shared_tasks_and_best():
    first = _run(1, {"A": 0.5, "B": 0.7})
    second = _run(2, {"A": 0.6, "C": 0.9})
    comparison = compare([first, second])
    assert comparison.tasks == ["A", "B", "C"]
    assert comparison.shared_tasks == ["A"]
    assert comparison.means == [0.5, 0.6]
    assert comparison.best("A") == 0.6 and comparison.best("B") == 0.7


def test_rank_orders_by_mean_shares_ties_and_drops_incomplete():
    runs = [
        _run(1, {"A": 0.5, "B": 0.5}),
        _run(2, {"A": 0.9, "B": 0.7}),
        _run(3, {"A": 0.4, "B": 0.6}),
        _run(4, {"A": 1.0}),
    ]
    ranked = rank(runs, ["A", "B"])
    assert [(r["run_id"], r["rank"]) for r in ranked] == [(2, 1), (1, 2), (3, 2)]
    assert ranked[0]["mean"] == pytest.approx(0.8)


def test_a_run_on_another_host_is_reaped_only_when_its_heartbeat_stops(tmp_path, monkeypatch):
    import time

    from leaderboard import liveness

    store = open_store(tmp_path / "h.db")
    quiet, alive = _start(store), _start(store)
    now = time.time()
    with sqlite3.connect(tmp_path / "h.db") as conn:
        conn.execute("UPDATE runs SET host = 'elsewhere', pid = 1, heartbeat_at = ? WHERE id = ?", (now - 3600, quiet))
        conn.execute("UPDATE runs SET host = 'elsewhere', pid = 1, heartbeat_at = ? WHERE id = ?", (now - 5, alive))
    assert store.reap_stale() == [quiet]
    assert "no heartbeat" in store.get_run(quiet)["error"] and store.get_run(alive)["status"] == "running"

    monkeypatch.setattr(liveness, "HEARTBEAT_S", 0.05)
    with store.heartbeat_while(alive):
        time.sleep(0.3)
    assert store.get_run(alive)["heartbeat_at"] > now


def _typed(run_id, scores, types):
    return {**_run(run_id, scores), "task_types": types, "task_versions": {}}


def test_compare_and_rank_mean_each_task_type_of_the_shared_tasks():
    types = {"S1": "STS", "S2": "STS", "R": "Retrieval", "old": None}
    first = _typed(1, {"S1": 0.5, "S2": 0.7, "R": 0.2, "old": 0.9, "own": 0.4}, {**types, "own": "Reranking"})
    second = _typed(2, {"S1": 0.6, "S2": 0.6, "R": 0.4, "old": 0.1}, types)
    comparison = compare([first, second])
    assert comparison.type_tasks == {
        "Retrieval": ["R"],
        "STS": ["S1", "S2"],
        "unknown": ["old"],
    }  # "own" is not shared
    assert comparison.type_means == {
        "Retrieval": [0.2, 0.4],
        "STS": [pytest.approx(0.6), pytest.approx(0.6)],
        "unknown": [0.9, 0.1],
    }
    assert comparison.means == [pytest.approx((0.5 + 0.7 + 0.2 + 0.9) / 4), pytest.approx((0.6 + 0.6 + 0.4 + 0.1) / 4)]
    ranked = rank([first, second], ["S1", "S2", "R"])
    assert [(r["run_id"], r["mean"]) for r in ranked] == [
        (2, pytest.approx(1.6 / 3)),
        (1, pytest.approx(1.4 / 3)),
    ]  # as before
    assert ranked[0]["type_means"] == {"Retrieval": 0.4, "STS": pytest.approx(0.6)}
    assert ranked[1]["type_means"] == {"Retrieval": 0.2, "STS": pytest.approx(0.6)}


def test_one_task_type_adds_no_type_means():
    runs = [
        _typed(1, {"A": 0.5, "B": 0.7}, {"A": "STS", "B": "STS"}),
        _typed(2, {"A": 0.6, "B": 0.2}, {"A": "STS", "B": None}),
    ]
    assert compare(runs[:1]).type_means == {} and "type_means" not in rank(runs[:1], ["A", "B"])[0]
    assert compare(runs).type_means == {}  # B is STS: run 1 recorded it
    assert all("type_means" not in run for run in rank(runs, ["A", "B"]))
    untyped = [_typed(1, {"A": 0.5, "B": 0.7}, {"A": "STS", "B": None})]
    assert compare(untyped).type_means == {"STS": [0.5], "unknown": [0.7]}


def test_a_task_shown_apart_by_version_keeps_its_type():
    from leaderboard.queries import separate_versions

    runs = [
        {**_typed(i, {"A": 0.5}, {"A": kind}), "task_versions": {"A": version}}
        for i, kind, version in ((1, "STS", "v1"), (2, "Retrieval", "v2"))
    ]
    separated, _ = separate_versions(runs)
    assert [run["task_types"] for run in separated] == [{"A@v1": "STS"}, {"A@v2": "Retrieval"}]


def test_opening_a_database_never_sets_its_journal_mode_again(tmp_path, monkeypatch):
    """Setting it on every connection once failed with "disk I/O error" after a finished run."""
    db = tmp_path / "h.db"
    open_store(db).close()
    assert sqlite_rows(db, "PRAGMA journal_mode") == [("wal",)]  # set once, at creation

    statements: list[str] = []
    real_connect = sqlite3.connect

    def traced_connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", traced_connect)  # SQLAlchemy's connections
    store = open_store(db, create=False)
    store.runs(statuses=None)
    store.reap_stale()  # a write transaction: the writer's connection too
    store.close()
    assert statements and not [s for s in statements if "journal_mode" in s.lower()]


def test_a_damaged_database_is_reported_at_open_and_left_untouched(tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app

    db = tmp_path / "h.db"
    store = open_store(db)
    for _ in range(40):  # enough rows for a few pages
        store.start_run(
            method="m" * 200,
            backbone="b",
            task_spec="t",
            task_names=["t"],
            config={"x": "y" * 400},
            config_hash="h",
            seed=0,
            environment={"versions": {}, "hardware": {}},
        )
    store.close()
    data = bytearray(db.read_bytes())
    data[4096:8192] = bytes(range(256)) * 16
    db.write_bytes(bytes(data))
    for command in (["runs"], ["run", "--method", "untrained-mean", "--tasks", "offline"]):
        result = CliRunner().invoke(app, [*command, "--db", str(db)])
        assert result.exit_code == 2 and f"--db {db} is damaged" in result.output, result.output
        assert db.read_bytes() == bytes(data)
