"""The CLI through typer's CliRunner: a real run on a tiny local model, read commands, bad input, and
a store error after a run finished reported as a warning, not a traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import independent_cosine_spearman, independent_cosines, run_args, sqlite_rows

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _statuses(db) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [status for (status,) in conn.execute("SELECT status FROM runs")]


@pytest.fixture
def recorded(tmp_path, tiny_llama_dir, small_sts_file):
    """Two finished runs of the tiny local model on the small task file."""
    db = tmp_path / "h.db"
    for method in ("untrained-mean", "untrained-last"):
        result = invoke(
            "run",
            "--method",
            method,
            "--backbone",
            str(tiny_llama_dir),
            "--tasks",
            str(small_sts_file),
            "--db",
            str(db),
        )
        assert result.exit_code == 0, result.output
    return db


def test_run_records_a_finished_run_with_the_right_score(recorded, tiny_llama_dir, small_sts_file):
    record = json.loads(invoke("show", "1", "--db", str(recorded), "--json").stdout)[0]
    assert record["status"] == "finished" and record["method"] == "untrained-mean"
    assert [t["phase"] for t in record["timings"]] == ["data", "load", "cache:key", "evaluate:tiny-sts"]
    assert record["config"]["tasks_resolved"][0]["sha256"] and record["config"]["backbone_resolved"]["kind"] == "local"
    assert record["config"]["train_data"] is None  # an untrained method: training data cannot matter
    # the tiny Llama, counted by hand in tests/runs/test_training_cli.py: 22,688 parameters, none trained
    assert (record["n_parameters"], record["trainable_parameters"], record["embed_dim"]) == (22_688, 0, 32)

    expected = independent_cosine_spearman(tiny_llama_dir, small_sts_file)
    assert record["scores"]["tiny-sts"] == pytest.approx(expected, abs=1e-4)


def test_a_score_keeps_each_pairs_cosine_and_gold(recorded, tiny_llama_dir, small_sts_file):
    """Per-item results: the pairs' gold scores as in the file and the model's cosine per pair."""
    from leaderboard.intervals import unpack

    with sqlite3.connect(recorded) as conn:
        ((items,),) = conn.execute("SELECT items FROM scores WHERE run_id = 1")
    (entry,) = json.loads(items)["subsets"]
    cosine, gold = independent_cosines(tiny_llama_dir, small_sts_file)
    assert (entry["split"], entry["statistic"], entry["n"]) == ("test", "spearman", 12)
    assert np.allclose(unpack(entry["arrays"]["gold"]), gold) and np.allclose(
        unpack(entry["arrays"]["pred"]), cosine, atol=1e-4
    )
    (shown,) = json.loads(invoke("show", "1", "--db", str(recorded), "--json").stdout)[0]["score_details"]
    assert shown["items"] == {"kept": [{"split": "test", "subset": "default", "statistic": "spearman", "n": 12}]}


def test_compare_and_leaderboard_json_fields(recorded):
    compared = json.loads(invoke("compare", "--db", str(recorded), "--json").stdout)
    assert [r["run_id"] for r in compared] == [1, 2]
    for row in compared:
        assert {"run_id", "method", "backbone", "status", "scores"} <= set(row)
        assert 0 <= abs(row["scores"]["tiny-sts"]) <= 1
    ranked = json.loads(invoke("leaderboard", "--db", str(recorded), "--json").stdout)
    assert sorted(r["run_id"] for r in ranked) == [1, 2]
    assert ranked[0]["mean"] >= ranked[1]["mean"] and ranked[0]["rank"] == 1
    assert len(json.loads(invoke("leaderboard", "--db", str(recorded), "--limit", "1", "--json").stdout)) == 1
    table = invoke("leaderboard", "--db", str(recorded), "--limit", "1").output
    assert "1 of 2 ranked runs shown" in table
    only = json.loads(invoke("leaderboard", "--db", str(recorded), "--method", "untrained-last", "--json").stdout)
    assert [r["method"] for r in only] == ["untrained-last"]
    for row in json.loads(invoke("leaderboard", "--db", str(recorded), "--efficiency", "--json").stdout):
        (timing,) = [
            t
            for t in json.loads(invoke("show", str(row["run_id"]), "--db", str(recorded), "--json").stdout)[0][
                "timings"
            ]
            if t["phase"] == "evaluate:tiny-sts"
        ]
        cost = timing["details"]
        assert row["efficiency"] == pytest.approx(
            {
                "eval_seconds": timing["seconds"],
                "texts_per_s": timing["items"] / timing["seconds"],
                "tokens_per_s": timing["tokens"] / timing["seconds"],
                "memo_hit_rate": cost["memo_hits"] / cost["texts_requested"],
                "cache_hit_rate": cost["cache_hits"] / cost["texts_requested"],
                "peak_memory_bytes": timing["peak_memory_bytes"],
                "embed_dim": 32,
                "n_parameters": 22_688,
            }
        )


def test_compare_table_shows_difference_and_mean(recorded):
    output = invoke("compare", "1", "2", "--db", str(recorded)).output
    record = json.loads(invoke("compare", "1", "2", "--db", str(recorded), "--json").stdout)
    diff = 100 * (record[1]["scores"]["tiny-sts"] - record[0]["scores"]["tiny-sts"])
    assert f"({diff:+.2f})" in output and "Mean(Task)" in output


def test_read_commands_on_a_missing_database(tmp_path):
    """A missing database reads as an empty one, the same for every command: listings are empty
    (exit 0) and say where they looked; a command that names a run finds no run (exit 2)."""
    db = str(tmp_path / "none.db")
    listed = invoke("compare", "--db", db, "--json")
    assert listed.exit_code == 0 and listed.stdout.strip() == "[]" and f"No leaderboard at {db}" in listed.stderr
    for command in (
        ["leaderboard"],
        ["runs"],
        ["compare"],
        ["export", "--json", "-"],
        ["delete", "--status", "failed", "--yes"],
    ):
        result = invoke(*command, "--db", db)
        assert result.exit_code == 0 and f"No leaderboard at {db}" in result.stderr, command
    for command in (
        ["show", "3"],
        ["compare", "3"],
        ["plot", "3"],
        ["eval", "3", "--tasks", "offline"],
        ["delete", "3", "--yes"],
        ["export", "3", "--csv", "-"],
        ["export", "3", "--mteb", str(tmp_path / "m")],
        ["run", "--resume", "3"],
    ):
        result = invoke(*command, "--db", db)
        assert result.exit_code == 2 and "no run 3" in result.stderr and "Traceback" not in result.output, command
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_db_location_from_environment(tmp_path, tiny_llama_dir, small_sts_file, monkeypatch):
    monkeypatch.setenv("HARNESS_DB", str(tmp_path / "env.db"))
    assert (
        invoke(
            "run", "--method", "untrained-mean", "--backbone", str(tiny_llama_dir), "--tasks", str(small_sts_file)
        ).exit_code
        == 0
    )
    assert _statuses(tmp_path / "env.db") == ["finished"]


def _bad_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD_INPUTS = {
    "unknown method": (["--method", "untrained-maen"], ["unknown method 'untrained-maen'", "Did you mean"]),
    "unknown backbone": (["--backbone", "lama2-7b"], ["unknown backbone 'lama2-7b'", "Did you mean 'llama2-7b'"]),
    "unavailable backbone": (["--backbone", "llama2-7b"], ["unavailable", "hf download meta-llama/Llama-2-7b-hf"]),
    "unknown preset": (["--tasks", "sts11"], ["unknown task 'sts11'", "sts10"]),
    "missing task file": (["--tasks", "nowhere/absent.tsv"], ["absent.tsv", "no such file"]),
    "bad option value": (["--set", "eval_batch_size=lots"], ["eval_batch_size", "expected int"]),
    "hub task while offline": (["--tasks", "sts7"], ["task SICK-R reads its data", "'offline' preset"]),
    "empty task item": (["--tasks", ""], ["--tasks item 1 is blank ('')"]),
    "blank task item": (["--tasks", "offline", "--tasks", " "], ["--tasks item 2 is blank"]),
    "unknown method option": (
        ["--method", "untrained-mean", "--set", "method_args.pooling=max"],
        ["unknown option(s) 'pooling'", "template"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_a_message_and_records_nothing(tmp_path, case):
    args, fragments = BAD_INPUTS[case]
    db = tmp_path / "h.db"
    result = invoke("run", *args, "--db", str(db))
    assert result.exit_code == 2, result.output
    for fragment in fragments:
        assert fragment in result.output
    assert "Traceback" not in result.output
    assert "running" not in _statuses(db)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("sentence1\tscore\na\t1\n", ["missing column(s) sentence2", "line 1"]),
        ("sentence1\tsentence2\tscore\na\tb\t1\nc\td\thigh\n", ["line 3", "column score"]),
        ("", ["empty"]),
    ],
)
def test_malformed_task_files_exit_2(tmp_path, content, fragments):
    path = _bad_file(tmp_path, "bad.tsv", content)
    result = invoke("run", "--tasks", path, "--db", str(tmp_path / "h.db"))
    assert result.exit_code == 2
    assert path in result.output
    for fragment in fragments:
        assert fragment in result.output


def test_db_that_is_not_sqlite_is_left_untouched(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "precious.db"
    db.write_text("my thesis draft\n")
    result = invoke("run", "--backbone", str(tiny_llama_dir), "--tasks", str(small_sts_file), "--db", str(db))
    assert result.exit_code == 2 and "not a SQLite database" in result.output
    assert db.read_text() == "my thesis draft\n"
    assert invoke("compare", "--db", str(db)).exit_code == 2


def test_a_run_that_breaks_is_marked_failed(tmp_path, tiny_llama_dir, small_sts_file, monkeypatch):
    from harness import registry
    from methods.untrained import UntrainedMean

    class Broken(UntrainedMean):
        def build_encoder(self, backbone, settings):
            raise RuntimeError("encoder exploded")

    monkeypatch.setattr(registry, "_registered", {"broken": Broken})
    db = tmp_path / "h.db"
    result = runner.invoke(app, run_args(db, tiny_llama_dir, small_sts_file, method="broken"))
    assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)
    record = json.loads(invoke("show", "1", "--db", str(db), "--json").stdout)[0]
    assert record["status"] == "failed" and "encoder exploded" in record["error"]
    assert json.loads(invoke("compare", "--db", str(db), "--json").stdout) == []


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\nfrom harness.cli import main\nsys.argv = ['harness', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'mteb', 'sqlalchemy', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr


def test_listing_commands():
    methods = json.loads(invoke("methods", "--json").stdout)
    assert {"untrained-mean", "untrained-last", "prompteol"} <= {m["name"] for m in methods}
    backbones = {b["alias"]: b for b in json.loads(invoke("backbones", "--json").stdout)}
    assert backbones["llama2-7b"]["source"] == "meta-llama/Llama-2-7b-hf"
    assert backbones["llama2-7b"]["available"] is False  # HF_HUB_OFFLINE=1 and not cached
    presets = {p["name"]: p for p in json.loads(invoke("tasks", "--json").stdout) if p["kind"] == "preset"}
    assert presets["offline"]["tasks"] == [
        "LeeDocSimilarity",
        "WordSim353",
        "SimLex999",
        "PangLeePolarityClassification",
        "MiniNewsgroupsClustering",
    ]


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
    result = CliRunner().invoke(app, run_args(db, tiny_llama_dir, small_sts_file))
    assert result.exit_code == 0, result.output
    assert result.exception is None and "disk I/O error" in result.output and "harness show 1" in result.output
    assert sqlite_rows(db, "SELECT status FROM runs") == [("finished",)]
