"""mteb-native results: the whole TaskResult kept per evaluation, its main score from mteb's own
API, and `harness export RUN --mteb DIR` read back by mteb.ResultCache."""

from __future__ import annotations

import sqlite3
from statistics import fmean

from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store


def _run(tmp_path, tiny_llama_dir, sts, *extra):
    db = tmp_path / "h.db"
    args = [
        "run",
        "--method",
        "untrained-mean",
        "--backbone",
        str(tiny_llama_dir),
        "--tasks",
        str(sts),
        "--db",
        str(db),
        *extra,
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db


def test_whole_task_result_kept_and_read_back_by_mteb(tmp_path, tiny_llama_dir, small_sts_file):
    import mteb

    db = _run(tmp_path, tiny_llama_dir, small_sts_file)
    _run(tmp_path, tiny_llama_dir, small_sts_file, "--seed", "1")  # a second seed of the same config
    store = open_store(db)
    ((task, whole),) = store.task_results(1).items()
    assert whole["mteb_version"] == mteb.__version__ and whole["evaluation_time"] > 0 and "dataset_revision" in whole
    entries = [entry["main_score"] for split in whole["scores"].values() for entry in split]
    recorded = store.get_run(1)["scores"][task]
    assert recorded == fmean(entries)  # mteb's get_score: the mean over splits and subsets

    out = tmp_path / "mteb-results"
    result = CliRunner().invoke(app, ["export", "1", "2", "--mteb", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    submission = [f for f in out.glob("results/*/*/*.json") if f.name != "model_meta.json"]
    experiments = [f for f in out.glob("results/*/*/experiments/*/*.json") if f.name != "model_meta.json"]
    assert (
        len(submission) == 1 and len(experiments) == 1
    )  # run 1 is the submission, run 2 (seed 1) its experiment: no overwrite

    loaded = mteb.ResultCache(out).load_results(include_remote=False, load_experiments="match_name")
    found = sorted(
        (model.model_revision, task_result.task_name, task_result.get_score())
        for model in loaded.model_results
        for task_result in model.task_results
    )
    expected = sorted((store.get_run(i)["config_hash"][:12], task, store.get_run(i)["scores"][task]) for i in (1, 2))
    assert [f[:2] for f in found] == [e[:2] for e in expected]
    for (_, _, got), (_, _, want) in zip(found, expected):
        assert abs(got - want) <= 5e-7  # mteb writes scores with 6 decimals
    assert {m.model_name for m in loaded.model_results} == {
        f"harness/untrained-mean__{str(tiny_llama_dir).replace('/', '--')}"
    }
    meta = next(out.glob("results/*/*/experiments/seed_1/model_meta.json")).read_text()
    assert '"embed_dim": 32' in meta and '"n_parameters": 22688' in meta


def test_rows_recorded_before_task_results_are_refused(tmp_path, tiny_llama_dir, small_sts_file):
    db = _run(tmp_path, tiny_llama_dir, small_sts_file)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE scores SET task_result = NULL")  # as a row written before schema v5
    out = tmp_path / "mteb-results"
    result = CliRunner().invoke(app, ["export", "1", "--mteb", str(out), "--db", str(db)])
    assert result.exit_code == 2 and "schema v5" in result.output and not out.exists()
