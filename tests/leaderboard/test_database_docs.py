"""Every SQL query in docs/database.md runs on a database the harness wrote, and returns rows."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

QUERIES = re.findall(r"```sql\n(.*?)```", (Path(__file__).parents[2] / "docs" / "database.md").read_text(), re.S)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    from leaderboard.store import open_store

    path = tmp_path_factory.mktemp("docs") / "h.db"
    store = open_store(path)
    run_id = store.start_run(
        method="autoregembed",
        backbone="b",
        task_spec="t",
        task_names=["stsb-dev"],
        config={"method_args": {"lr": 2e-4}, "train_data": "x.tsv"},
        config_hash="h",
        seed=0,
        environment={},
    )
    store.record_score(run_id, task="stsb-dev", main_metric="cosine_spearman", main_score=0.5, details={})
    store.record_timing(run_id, phase="train:ic", seconds=2.0, items=8, tokens=100)
    store.record_metrics(run_id, "ic", [{"step": s, "loss": 5.0 - s, "lr": 2e-4, "seconds": float(s)} for s in (1, 2)])
    store.record_model(run_id, n_parameters=100, trainable_parameters=10, embed_dim=8)
    store.record_diagnostics(
        run_id, "ic", {"heldout_loss_own": 2.0, "heldout_loss_shuffled": 3.0, "heldout_loss_empty": 6.0}
    )
    store.record_dev_scores(
        run_id, "ic", 2, [{"task": "stsb-dev", "main_metric": "cosine_spearman", "score": 0.4, "seconds": 1.0}]
    )
    store.finish_run(run_id)
    store.close()
    return path


@pytest.mark.parametrize("query", QUERIES, ids=[f"query{i}" for i in range(len(QUERIES))])
def test_documented_query_returns_rows(db, query):
    with sqlite3.connect(db) as conn:
        rows = conn.execute(query).fetchall()
    assert rows, query


def test_the_cost_query_gives_each_stage_its_last_logged_loss(db):
    (query,) = [q for q in QUERIES if "last_loss" in q]
    with sqlite3.connect(db) as conn:
        assert conn.execute(query).fetchall() == [(1, "train:ic", 2.0, 100, 3.0)]
