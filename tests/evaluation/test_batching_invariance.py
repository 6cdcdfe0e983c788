"""A run's main scores do not depend on how its evaluation was batched or answered: batch size 1
or 32, vectors from the model, the run's memo or the embedding cache (and one or two processes:
tests/evaluation/test_data_parallel.py). Tolerance 1e-4 (docs/reliability.md)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.evaluation.test_data_parallel import three_tasks  # noqa: F401  (fixture)

TOLERANCE = 1e-4


def _scores(db, tiny_llama_dir, tasks, *extra) -> dict[str, float]:
    args = [
        "run",
        "--method",
        "untrained-mean",
        "--backbone",
        str(tiny_llama_dir),
        "--db",
        str(db),
        *(x for task in tasks for x in ("--tasks", task)),
        *extra,
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    store = open_store(db)
    return store.get_run(store.runs(statuses=None)[0]["run_id"])["scores"]


def test_scores_do_not_depend_on_batching_memo_or_cache(tmp_path, tiny_llama_dir, three_tasks, monkeypatch):  # noqa: F811
    from harness.evaluation import mteb_adapter

    db = tmp_path / "h.db"
    reference = _scores(db, tiny_llama_dir, three_tasks, "--eval-batch-size", "32", "--no-cache")
    assert len(reference) == 3
    variants = {
        "batch 1": _scores(db, tiny_llama_dir, three_tasks, "--eval-batch-size", "1", "--no-cache"),
        "batch 32, cache filled": _scores(db, tiny_llama_dir, three_tasks, "--eval-batch-size", "32"),
        "batch 7, every vector from the cache": _scores(db, tiny_llama_dir, three_tasks, "--eval-batch-size", "7"),
    }
    monkeypatch.setattr(mteb_adapter, "MEMO_LIMIT_BYTES", 1)  # no vector stays in the memo
    variants["batch 32, no memo, no cache"] = _scores(
        db, tiny_llama_dir, three_tasks, "--eval-batch-size", "32", "--no-cache"
    )
    for name, scores in variants.items():
        assert scores.keys() == reference.keys(), name
        for task, score in reference.items():
            assert scores[task] == pytest.approx(score, abs=TOLERANCE), (name, task)
    cached = open_store(db).get_run(4)["timings"]
    assert all(
        t["details"]["cache_hits"] > 0 and t["items"] == 0 for t in cached if t["phase"].startswith("evaluate:")
    )
