"""Issue 10: a run never reuses another run's files, bad input records nothing, every
interruption (Ctrl-C, SIGTERM, kill) can be resumed, and the store never turns a finished run
into a traceback. Each test drives the real CLI on the tiny local Llama."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.training_fixtures import TRIPLETS

HARNESS = [sys.executable, "-m", "harness"]
TEMPLATE = "method_args.template='this sentence : {text}'"


@pytest.fixture
def triplets(tmp_path) -> Path:
    path = tmp_path / "triplets.jsonl"
    path.write_text("".join(json.dumps({"query": t.query, "pos": t.pos, "neg": t.neg}) + "\n" for t in TRIPLETS))
    return path


def _run_args(db: Path, backbone: Path, triplets: Path, task: Path, out: Path, *sets: str) -> list[str]:
    return [
        "run",
        "--method",
        "infonce",
        "--backbone",
        str(backbone),
        "--train-data",
        str(triplets),
        "--tasks",
        str(task),
        "--db",
        str(db),
        "--output-dir",
        str(out),
        "--set",
        "method_args.batch_size=2",
        "--set",
        TEMPLATE,
        *(x for s in sets for x in ("--set", s)),
    ]


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", **extra}


# -- 1. foreign checkpoints -----------------------------------------------------------------------
def test_two_databases_in_one_folder_never_share_checkpoints(tmp_path, tiny_llama_dir, triplets, small_sts_file):
    """On the old layout b.db's run #1 found a.db's run-1 checkpoints, trained nothing and recorded
    a.db's score under its own config."""
    runner = CliRunner()
    out = tmp_path / "runs"
    a = runner.invoke(
        app, _run_args(tmp_path / "a.db", tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2")
    )
    assert a.exit_code == 0, a.output
    b = runner.invoke(
        app,
        _run_args(
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

    steps_b = [s for (s,) in _rows(tmp_path / "b.db", "SELECT step FROM metrics ORDER BY step")]
    assert steps_b == [1, 2, 3, 4, 5]  # b trained every one of its own steps
    (dir_a, uuid_a), (dir_b, uuid_b) = (
        _rows(tmp_path / n, "SELECT output_dir, uuid FROM runs")[0] for n in ("a.db", "b.db")
    )
    assert dir_a != dir_b and uuid_a != uuid_b and Path(dir_a).parent == Path(dir_b).parent == out.resolve()
    assert json.loads((Path(dir_b) / "harness-run.json").read_text())["run_uuid"] == uuid_b
    state_a = json.loads((Path(dir_a) / "checkpoints" / "0-contrastive" / "state.json").read_text())
    assert state_a["step"] == 2  # a's files untouched

    (tmp_path / "b.db").unlink()  # `rm harness.db` then run again: a third folder, trained from scratch
    again = runner.invoke(
        app, _run_args(tmp_path / "b.db", tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=3")
    )
    assert again.exit_code == 0, again.output
    assert [s for (s,) in _rows(tmp_path / "b.db", "SELECT step FROM metrics ORDER BY step")] == [1, 2, 3]
    assert len(list(out.iterdir())) == 3


def test_resume_refuses_a_folder_of_another_run(tmp_path, tiny_llama_dir, triplets, small_sts_file):
    out, db = tmp_path / "runs", tmp_path / "h.db"
    victim = subprocess.run(
        [
            *HARNESS,
            *_run_args(
                db,
                tiny_llama_dir,
                triplets,
                small_sts_file,
                out,
                "method_args.steps=6",
                "method_args.checkpoint_every=2",
            ),
        ],
        env=_env(HARNESS_KILL_AT="train-step:3"),
        capture_output=True,
        text=True,
    )
    assert victim.returncode == -signal.SIGKILL
    other = CliRunner().invoke(
        app, _run_args(tmp_path / "other.db", tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2")
    )
    assert other.exit_code == 0, other.output
    (other_dir,) = _rows(tmp_path / "other.db", "SELECT output_dir FROM runs")[0]
    with sqlite3.connect(db) as conn:  # the row now names the other database's folder
        conn.execute("UPDATE runs SET output_dir = ?", (other_dir,))

    refused = subprocess.run(
        [*HARNESS, "run", "--resume", "1", "--db", str(db)], env=_env(), capture_output=True, text=True
    )
    assert refused.returncode == 2, refused.stderr
    assert "refusing to resume from another run's checkpoints" in refused.stderr and "Traceback" not in refused.stderr
    assert _rows(db, "SELECT status, error FROM runs")[0][0] == "failed"  # reaped by the command, then left alone
    assert _rows(db, "SELECT count(*) FROM scores") == [(0,)]


# -- 2. bad input records nothing -----------------------------------------------------------------
@pytest.mark.parametrize(
    "case, extra, expected",
    [
        ("missing-train-data", ["--train-data", "nowhere.jsonl"], "nowhere.jsonl: no such file"),
        ("malformed-train-data", ["--train-data", "BAD"], "expected triplet columns"),
        ("bad-option-value", ["--set", "method_args.pooling=max"], "'max' is not one of 'mean', 'last'"),
        ("misspelled-option", ["--set", "method_args.stpes=10"], "'stpes' (did you mean 'steps'?)"),
        ("output-dir-is-a-file", ["--output-dir", "FILE"], "is a file, not a folder"),
    ],
)
def test_bad_input_records_nothing(tmp_path, tiny_llama_dir, triplets, small_sts_file, case, extra, expected):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "no such columns"}) + "\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    extra = [str(bad) if x == "BAD" else str(a_file) if x == "FILE" else x for x in extra]
    args = _run_args(
        tmp_path / "h.db", tiny_llama_dir, triplets, small_sts_file, tmp_path / "runs", "method_args.steps=2"
    )
    for option in ("--train-data", "--output-dir"):  # the case's value replaces the default one
        if option in extra:
            at = args.index(option)
            del args[at : at + 2]
    done = subprocess.run([*HARNESS, *args, *extra], env=_env(), capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "::" not in done.stderr and ".." not in done.stderr.replace("...", "")
    assert not (tmp_path / "h.db").exists()
    assert not (tmp_path / "runs").exists()


def test_an_unreachable_hub_fails_at_once_with_one_line_and_records_nothing(tmp_path, small_sts_file):
    """HF_ENDPOINT on a closed loopback port: the hub is unreachable without touching the network."""
    env = _env(HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf-home"))
    db = tmp_path / "h.db"
    done = subprocess.run(
        [
            *HARNESS,
            "run",
            "--method",
            "untrained-mean",
            "--backbone",
            "some-org/some-model",
            "--tasks",
            str(small_sts_file),
            "--db",
            str(db),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("Leaderboard: ")]
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "hf download some-org/some-model" in lines[0], (
        done.stderr
    )
    assert ".." not in lines[0] and not db.exists()

    listing = subprocess.run([*HARNESS, "backbones", "--json"], env=env, capture_output=True, text=True, check=True)
    hub_rows = [row for row in json.loads(listing.stdout) if row["kind"] == "hub"]
    assert hub_rows and all(not row["available"] and "cannot be reached" in row["how"] for row in hub_rows)


def test_a_cached_hub_backbone_still_runs_when_the_hub_is_unreachable(tmp_path, tiny_llama_dir, small_sts_file):
    """The hub cache layout (refs/main -> snapshots/<commit>/) holding the tiny Llama: the run loads
    it without asking the unreachable hub, and records the hub id as its backbone."""
    import shutil

    commit = "0" * 40
    repo = tmp_path / "hf-home" / "hub" / "models--some-org--tiny-llama"
    shutil.copytree(tiny_llama_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = _env(HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf-home"))
    db = tmp_path / "h.db"
    done = subprocess.run(
        [
            *HARNESS,
            "run",
            "--method",
            "untrained-mean",
            "--backbone",
            "some-org/tiny-llama",
            "--tasks",
            str(small_sts_file),
            "--db",
            str(db),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _rows(db, "SELECT status, backbone FROM runs") == [("finished", "some-org/tiny-llama")]


# -- 3. interruptions -----------------------------------------------------------------------------
LONG_RUN_STEPS = 120  # steps: seconds of training with a checkpoint every ~0.1 s, time to be signalled mid-stage


def _start_long_run(tmp_path, tiny_llama_dir, triplets, small_sts_file, steps=LONG_RUN_STEPS):
    args = _run_args(
        tmp_path / "h.db",
        tiny_llama_dir,
        triplets,
        small_sts_file,
        tmp_path / "runs",
        f"method_args.steps={steps}",
        "method_args.checkpoint_minutes=0.002",
    )  # a checkpoint every ~0.1 s
    return subprocess.Popen([*HARNESS, *args], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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
    ((status, error),) = _rows(db, "SELECT status, error FROM runs")
    assert status == "interrupted" and reason in error
    recorded = [s for (s,) in _rows(db, "SELECT step FROM metrics ORDER BY step")]
    (state_file,) = (tmp_path / "runs").glob("run-1-*/checkpoints/0-contrastive/state.json")
    saved = json.loads(state_file.read_text())["step"]
    assert recorded == list(range(1, len(recorded) + 1)) and len(recorded) >= saved >= 3  # every step done is recorded
    assert saved < LONG_RUN_STEPS  # the signal came mid-stage

    resumed = subprocess.run(
        [*HARNESS, "run", "--resume", "1", "--db", str(db), "--output-dir", str(tmp_path / "runs")],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming stage contrastive at step {saved}" in resumed.stdout
    assert _rows(db, "SELECT status FROM runs") == [("finished",)]
    assert [s for (s,) in _rows(db, "SELECT step FROM metrics ORDER BY step")] == list(range(1, LONG_RUN_STEPS + 1))


# -- 4. a finished run never ends in a traceback --------------------------------------------------
def test_a_store_error_after_the_run_finished_is_a_warning_not_a_traceback(
    tmp_path, tiny_llama_dir, small_sts_file, monkeypatch
):
    from leaderboard.store import RunStore

    real_finish, real_get = RunStore.finish_run, RunStore.get_run
    finished: list[int] = []

    def finish(self, run_id):
        real_finish(self, run_id)
        finished.append(run_id)

    def get_run(self, run_id, **kwargs):
        if finished:
            raise sqlite3.OperationalError("disk I/O error")
        return real_get(self, run_id, **kwargs)

    monkeypatch.setattr(RunStore, "finish_run", finish)
    monkeypatch.setattr(RunStore, "get_run", get_run)
    db = tmp_path / "h.db"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--method",
            "untrained-mean",
            "--backbone",
            str(tiny_llama_dir),
            "--tasks",
            str(small_sts_file),
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.exception is None and "disk I/O error" in result.output and "harness show 1" in result.output
    assert _rows(db, "SELECT status FROM runs") == [("finished",)]


def test_opening_a_database_never_sets_its_journal_mode_again(tmp_path, monkeypatch):
    """Setting it on every connection once failed with "disk I/O error" after a finished run."""
    import sqlite3

    from leaderboard.store import open_store

    db = tmp_path / "h.db"
    open_store(db).close()
    assert _rows(db, "PRAGMA journal_mode") == [("wal",)]  # set once, at creation

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


# -- 5. piped output ------------------------------------------------------------------------------
def test_piped_output_gets_plain_progress_lines_and_the_checkpoint_folder(
    tmp_path, tiny_llama_dir, triplets, small_sts_file
):
    args = _run_args(
        tmp_path / "h.db", tiny_llama_dir, triplets, small_sts_file, tmp_path / "runs", "method_args.steps=20"
    )
    done = subprocess.run([*HARNESS, *args], env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    progress = [line.split()[2] for line in done.stdout.splitlines() if line.strip().startswith("contrastive step")]
    assert progress == ["1/20", "2/20", "4/20", "6/20", "8/20", "10/20", "12/20", "14/20", "16/20", "18/20", "20/20"]
    (folder,) = (tmp_path / "runs").iterdir()
    assert f"Checkpoints: {folder}" in done.stdout and "harness delete 1" in done.stdout


# -- 6. disk: filters and delete ------------------------------------------------------------------
def test_runs_filters_and_delete_removes_rows_and_own_folders_only(
    tmp_path, tiny_llama_dir, triplets, small_sts_file, monkeypatch
):
    runner = CliRunner()
    db, out = tmp_path / "h.db", tmp_path / "runs"
    assert (
        runner.invoke(
            app, _run_args(db, tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2")
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, _run_args(db, tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2")
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app,
            [
                "run",
                "--method",
                "untrained-mean",
                "--backbone",
                str(tiny_llama_dir),
                "--tasks",
                str(small_sts_file),
                "--db",
                str(db),
            ],
        ).exit_code
        == 0
    )
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

    folder_1, folder_2 = (Path(d) for (d,) in _rows(db, "SELECT output_dir FROM runs WHERE id IN (1, 2) ORDER BY id"))
    not_asked = runner.invoke(app, ["delete", "2", "--db", str(db)])
    assert not_asked.exit_code == 2 and "--yes" in not_asked.output and folder_2.is_dir()
    monkeypatch.setattr("harness.cli.reading.interactive", lambda: True)
    declined = runner.invoke(app, ["delete", "--status", "failed", "--db", str(db)], input="n\n")
    assert declined.exit_code == 0 and "Nothing deleted" in declined.output and folder_2.is_dir()
    accepted = runner.invoke(app, ["delete", "--status", "failed", "--db", str(db)], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert not folder_2.exists() and folder_1.is_dir()
    assert _rows(db, "SELECT count(*) FROM runs WHERE id = 2") == [(0,)]
    for table in ("scores", "timings", "metrics"):
        assert _rows(db, f"SELECT count(*) FROM {table} WHERE run_id = 2") == [(0,)]

    (folder_1 / "harness-run.json").write_text(json.dumps({"run_uuid": "someone-else"}))
    kept = runner.invoke(app, ["delete", "1", "--yes", "--db", str(db)])
    assert kept.exit_code == 0 and "not this run's own folder" in kept.output and folder_1.is_dir()
    assert listed() == [3]


# -- 7. small things ------------------------------------------------------------------------------
def test_compare_of_an_unfinished_run_points_to_include_unfinished(tmp_path, tiny_llama_dir, small_sts_file):
    runner = CliRunner()
    db = str(tmp_path / "h.db")
    assert (
        runner.invoke(
            app,
            [
                "run",
                "--method",
                "untrained-mean",
                "--backbone",
                str(tiny_llama_dir),
                "--tasks",
                str(small_sts_file),
                "--db",
                db,
            ],
        ).exit_code
        == 0
    )
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'interrupted'")
    result = runner.invoke(app, ["compare", "1", "--db", db])
    assert result.exit_code == 2 and "#1 is interrupted" in result.output and "--include-unfinished" in result.output
    assert runner.invoke(app, ["compare", "1", "--include-unfinished", "--db", db]).exit_code == 0


def test_config_messages_have_no_doubled_colons(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("batch_sise = 3\n")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2 and "::" not in result.output and "did you mean 'batch_size'?" in result.output


@pytest.mark.parametrize("command", ["runs", "compare", "show", "leaderboard", "methods", "backbones", "tasks"])
def test_json_shows_as_a_flag_in_help(command):
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    (line,) = [line for line in result.output.splitlines() if line.strip("│ ").startswith("--json")]
    assert "<bool>" not in line


# -- issue 21: garbled checkpoints, damaged databases, exports that cannot be written ------------
@pytest.mark.parametrize("garble", ["state.json", "trainable.pt"])
def test_a_garbled_checkpoint_fails_resume_with_a_message_and_the_run_stays_interrupted(
    tmp_path, tiny_llama_dir, triplets, small_sts_file, garble
):
    out, db = tmp_path / "runs", tmp_path / "h.db"
    done = CliRunner().invoke(app, _run_args(db, tiny_llama_dir, triplets, small_sts_file, out, "method_args.steps=2"))
    assert done.exit_code == 0, done.output
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'interrupted', error = 'interrupted by the user (Ctrl-C)'")
    (checkpoint,) = [
        p
        for p in (Path(_rows(db, "SELECT output_dir FROM runs")[0][0]) / "checkpoints").iterdir()
        if not p.name.startswith(".")
    ]
    target = checkpoint / garble
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])  # truncated, as by a full disk
    refused = subprocess.run(
        [*HARNESS, "run", "--resume", "1", "--db", str(db)], env=_env(), capture_output=True, text=True
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert str(target) in refused.stderr and "cannot resume" in refused.stderr
    assert _rows(db, "SELECT status FROM runs") == [("interrupted",)]


def test_a_damaged_database_is_reported_at_open_and_left_untouched(tmp_path):
    from leaderboard.store import open_store

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


def test_exports_that_cannot_be_written_fail_cleanly_and_leave_no_partial_file(tmp_path):
    from leaderboard.store import open_store

    db = tmp_path / "h.db"
    open_store(db).close()
    (tmp_path / "folder.csv").mkdir()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    (tmp_path / "a-file").write_text("mine")
    try:
        cases = [
            ["--csv", str(tmp_path / "folder.csv")],
            ["--csv", str(tmp_path / "nowhere" / "r.csv")],
            ["1", "--mteb", str(tmp_path / "a-file")],
            ["1", "--model", str(tmp_path / "a-file")],
        ]
        if os.geteuid() != 0:  # root writes through permissions
            cases.append(["--json", str(locked / "r.json")])
        for args in cases:
            result = CliRunner().invoke(app, ["export", *args, "--db", str(db)])
            assert result.exit_code == 2 and "Traceback" not in result.output, (args, result.output)
            assert result.output.count("Error") == 1 and args[-1] in result.output
    finally:
        locked.chmod(0o700)
    assert not list(tmp_path.rglob("*.partial")) and (tmp_path / "a-file").read_text() == "mine"


def test_an_export_whose_write_fails_leaves_no_partial_file(tmp_path, monkeypatch):
    from leaderboard.store import open_store

    db = tmp_path / "h.db"
    open_store(db).close()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    result = CliRunner().invoke(app, ["export", "--csv", str(tmp_path / "r.csv"), "--db", str(db)])
    assert result.exit_code == 2 and "--csv" in result.output and "No space left" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("h.db")) == []
