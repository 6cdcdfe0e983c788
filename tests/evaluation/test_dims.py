"""Evaluation at several dims (`harness run --dims`): each task also scored on the vectors' first N
dims, re-normalised, from one encoding; recorded, compared, ranked and exported by dim."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.conftest import run_args

runner = CliRunner()


def _mean_vectors(folder, texts):
    """Mean-pooled last hidden states by plain transformers, one text at a time."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        return np.stack(
            [model(**tokenizer(t, return_tensors="pt")).last_hidden_state[0].mean(0).numpy() for t in texts]
        )


def _spearman_at(a, b, gold, dim):
    a, b = a[:, :dim], b[:, :dim]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(spearmanr(cosine, gold)[0])


@pytest.fixture
def dims_run(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    args = run_args(db, tiny_llama_dir, small_sts_file, "--dims", "4,16")
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db


def test_each_dim_is_scored_on_cut_renormalised_vectors_from_one_encoding(dims_run, tiny_llama_dir, small_sts_file):
    from harness.data.task_files import read_sts_file

    pairs = read_sts_file(small_sts_file)
    a, b = _mean_vectors(tiny_llama_dir, pairs.sentence1), _mean_vectors(tiny_llama_dir, pairs.sentence2)
    gold = np.asarray(pairs.scores, dtype=float)
    store = open_store(dims_run)
    record = store.get_run(1)
    by_dim = {item["dim"]: item["main_score"] for item in record["score_details"]}
    assert sorted(by_dim) == [0, 4, 16] and store.score_dims(1) == [0, 4, 16]
    for dim, expected in (
        (0, _spearman_at(a, b, gold, 32)),
        (4, _spearman_at(a, b, gold, 4)),
        (16, _spearman_at(a, b, gold, 16)),
    ):
        assert by_dim[dim] == pytest.approx(expected, abs=1e-6), dim
    assert len({round(v, 6) for v in by_dim.values()}) == 3  # the cut changes the score here, so the test can fail
    assert list(record["scores"].values()) == [by_dim[0]]  # listings read whole vectors
    phases = {t["phase"]: t for t in record["timings"]}
    cut = [p for name, p in phases.items() if name.startswith("dims:")]
    assert len(cut) == 2 and all(p["items"] == 0 for p in cut)  # every vector came from the run's memo
    assert record["config"]["dims"] == [4, 16]


def test_compare_leaderboard_show_and_mteb_export_say_which_dim(dims_run, tmp_path, tiny_llama_dir, small_sts_file):
    import mteb

    store = open_store(dims_run)
    at_4 = next(i["main_score"] for i in store.get_run(1)["score_details"] if i["dim"] == 4)
    whole_run = runner.invoke(app, run_args(dims_run, tiny_llama_dir, small_sts_file))
    assert whole_run.exit_code == 0, whole_run.output
    assert store.get_run(1)["config_hash"] == store.get_run(2)["config_hash"]  # --dims is recorded, not hashed
    compared = json.loads(
        runner.invoke(app, ["compare", "1", "2", "--dim", "4", "--json", "--db", str(dims_run)]).stdout
    )
    assert [row["dim"] for row in compared] == [4, 4] and list(compared[0]["scores"].values()) == [at_4]
    assert compared[1]["scores"] == {}  # run 2 was not evaluated at 4 dims
    ranked = json.loads(runner.invoke(app, ["leaderboard", "--dim", "4", "--json", "--db", str(dims_run)]).stdout)
    assert [row["run_id"] for row in ranked] == [1] and ranked[0]["mean"] == pytest.approx(at_4)
    assert len(json.loads(runner.invoke(app, ["leaderboard", "--json", "--db", str(dims_run)]).stdout)) == 2
    table = runner.invoke(app, ["compare", "1", "--dim", "4", "--db", str(dims_run)]).output
    assert "first 4 dims" in table and f"{100 * at_4:.2f}" in table
    shown = runner.invoke(app, ["show", "1", "--db", str(dims_run)], terminal_width=200).output
    assert "Dims" in shown and "all 32" in shown

    out = tmp_path / "mteb"
    result = runner.invoke(app, ["export", "1", "--mteb", str(out), "--db", str(dims_run)])
    assert result.exit_code == 0, result.output
    metas = {json.loads(f.read_text())["embed_dim"] for f in out.glob("results/**/model_meta.json")}
    assert metas == {32, 4, 16}
    loaded = mteb.ResultCache(out).load_results(include_remote=False, load_experiments="match_name")
    scores = sorted(round(r.get_score(), 6) for m in loaded.model_results for r in m.task_results)
    assert scores == sorted(round(i["main_score"], 6) for i in store.get_run(1)["score_details"])


@pytest.mark.parametrize(
    "dims, message",
    [
        ("4,x", "--dims '4,x': 'x' is not a whole number"),
        ("4,4", "dims=[4, 4] must not repeat a dim"),
        ("0", "dims=[0] must be >= 1"),
        ("64", "embeddings have 32 dims; each dim must be at most 32"),
    ],
)
def test_bad_dims_are_refused_before_anything_is_recorded(tmp_path, tiny_llama_dir, small_sts_file, dims, message):
    db = tmp_path / "h.db"
    result = runner.invoke(app, run_args(db, tiny_llama_dir, small_sts_file, "--dims", dims))
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert not db.exists() or open_store(db).runs(statuses=None) == []


def test_a_cut_at_the_full_width_scores_as_the_whole_vector_on_a_classifier(tmp_path, tiny_llama_dir):
    """Classifiers read cut vectors as they read whole ones (unnormalised): the full-width cut is
    the whole vector, so its score is the whole vector's; a narrower cut is not."""
    db = tmp_path / "h.db"
    args = run_args(db, tiny_llama_dir, "PangLeePolarityClassification", "--dims", "8,32")
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    by_dim = {item["dim"]: item["main_score"] for item in open_store(db).get_run(1)["score_details"]}
    assert by_dim[32] == by_dim[0] and by_dim[8] != by_dim[0]
