"""Refusal of schemas too old or too new, deterministic runs, training faults
reported cleanly, and nothing a user writes evaluated as code."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from leaderboard import migrations
from leaderboard.store import LeaderboardError, open_store
from tests.conftest import run_args
from tests.training_fixtures import TRIPLETS

runner = CliRunner()


def test_a_database_from_before_schema_revisions_is_refused_untouched(tmp_path):
    """SQLite files of the first releases (user_version 1 to 5, no Alembic revision) are no longer
    upgraded: every command refuses them, says how to re-create them, and leaves them as they were."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, method TEXT)")
        conn.execute("INSERT INTO runs (method) VALUES ('old-method')")
        conn.execute("PRAGMA user_version = 3")
    before = path.read_bytes()
    with pytest.raises(LeaderboardError, match="before schema revisions"):
        open_store(path)
    for args in (["runs"], ["db", "upgrade"], ["run", "--method", "untrained-mean"]):
        result = runner.invoke(app, [*args, "--db", str(path)])
        assert result.exit_code == 2 and "user_version 3" in result.output and "harness 0.1" in result.output, (
            result.output
        )
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.db"]


def test_a_newer_database_is_refused_untouched(tmp_path):
    path = tmp_path / "new.db"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {migrations.ALEMBIC_USER_VERSION + 3}")
    before = path.read_bytes()
    with pytest.raises(LeaderboardError, match="newer harness"):
        open_store(path)
    result = runner.invoke(app, ["leaderboard", "--db", str(path)])
    assert result.exit_code == 2 and "newer harness" in result.output
    assert path.read_bytes() == before


@pytest.fixture
def train_args(tmp_path, tiny_llama_dir, small_sts_file):
    triplets = tmp_path / "t.jsonl"
    triplets.write_text("\n".join(json.dumps({"query": t.query, "pos": t.pos, "neg": t.neg}) for t in TRIPLETS) + "\n")
    return run_args(
        tmp_path / "h.db",
        tiny_llama_dir,
        small_sts_file,
        "--train-data",
        str(triplets),
        "--output-dir",
        str(tmp_path / "runs"),
        "--set",
        "method_args.steps=4",
        "--set",
        "method_args.batch_size=2",
        "--set",
        "method_args.checkpoint_every=1",
        "--set",
        "method_args.template='this sentence : {text}'",
        "--seed",
        "3",
        method="infonce",
    )


def test_two_runs_with_the_same_seed_give_identical_results(train_args, tmp_path):
    for _ in range(2):
        assert runner.invoke(app, train_args, catch_exceptions=False).exit_code == 0
    store = open_store(tmp_path / "h.db")
    first, second = store.get_run(1), store.get_run(2)
    assert first["scores"] == second["scores"] and first["config_hash"] == second["config_hash"]
    assert [m["loss"] for m in store.metrics(1)] == [m["loss"] for m in store.metrics(2)]


def test_a_nan_loss_fails_the_run_at_its_step_and_keeps_the_last_good_checkpoint(train_args, tmp_path, monkeypatch):
    from methods import infonce

    real = infonce.infonce_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setattr(infonce, "infonce_loss", poisoned)
    result = runner.invoke(app, train_args)
    assert result.exit_code == 1 and "became nan at step 3" in result.output and "Traceback" not in result.output
    record = open_store(tmp_path / "h.db").get_run(1)
    assert record["status"] == "failed" and "step 3" in record["error"]
    (state_file,) = (tmp_path / "runs").glob("run-1-*/checkpoints/0-contrastive/state.json")
    state = json.loads(state_file.read_text())
    assert state["step"] == 2


def test_out_of_memory_names_the_settings_to_lower(train_args, tmp_path, monkeypatch):
    from methods import infonce

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(infonce, "infonce_loss", oom)
    result = runner.invoke(app, train_args)
    assert result.exit_code == 1
    for hint in ("out of memory in stage contrastive at step 1", "method_args.batch_size", "gradient_checkpointing"):
        assert hint in result.output
    assert open_store(tmp_path / "h.db").get_run(1)["status"] == "failed"


def test_values_from_users_are_never_evaluated(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    config = tmp_path / "c.toml"
    config.write_text(f'method = "{code}"\n')
    assert runner.invoke(app, ["run", "--config", str(config), "--db", str(tmp_path / "h.db")]).exit_code == 2
    assert (
        runner.invoke(app, ["run", "--set", f"method_args.template={code}", "--db", str(tmp_path / "h.db")]).exit_code
        == 2
    )
    task = tmp_path / "t.tsv"
    task.write_text(f"sentence1\tsentence2\tscore\n{code}\tb\t{code}\n")
    assert (
        runner.invoke(
            app, ["run", "--method", "untrained-mean", "--tasks", str(task), "--db", str(tmp_path / "h.db")]
        ).exit_code
        == 2
    )
    monkeypatch.setenv("HARNESS_PLUGINS", "")
    assert runner.invoke(app, ["run", "--method", "os:system", "--db", str(tmp_path / "h.db")]).exit_code == 2
    assert not marker.exists()
