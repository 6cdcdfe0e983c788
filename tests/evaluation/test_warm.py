"""Warm evaluation: a model whose every vector is in the embedding cache is scored without being
loaded, a partly warm task loads it once, and no changed file can keep an old key."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.conftest import independent_cosine_spearman, write_sts_tsv
from tests.training_fixtures import TRIPLETS

runner = CliRunner()


def _run(db, *args):
    result = runner.invoke(app, ["run", *args, "--db", str(db)])
    assert result.exit_code == 0, result.output
    return result


def _no_model(monkeypatch):
    """Make every way of loading a model fail: a test that passes did not load one."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


def _load_phase(record):
    return next(t for t in record["timings"] if t["phase"] == "load")


def test_a_fully_warm_run_scores_without_loading_the_model(tmp_path, tiny_llama_dir, small_sts_file, monkeypatch):
    db = tmp_path / "h.db"
    args = ["--method", "untrained-mean", "--backbone", str(tiny_llama_dir), "--tasks", str(small_sts_file)]
    _run(db, *args)
    _no_model(monkeypatch)
    _run(db, *args)
    store = open_store(db)
    cold, warm = store.get_run(1), store.get_run(2)
    assert warm["scores"] == cold["scores"]
    assert cold["scores"]["tiny-sts"] == pytest.approx(
        independent_cosine_spearman(tiny_llama_dir, small_sts_file), abs=1e-6
    )
    assert (_load_phase(cold)["items"], _load_phase(warm)["items"]) == (1, 0)
    assert (warm["n_parameters"], warm["embed_dim"]) == (cold["n_parameters"], cold["embed_dim"])
    encoded = next(t for t in warm["timings"] if t["phase"] == "evaluate:tiny-sts")
    assert encoded["items"] == 0 and encoded["details"]["cache_hits"] > 0


def test_a_partly_warm_task_loads_the_model_once_for_its_missing_texts(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    common = ["--method", "untrained-mean", "--backbone", str(tiny_llama_dir)]
    _run(db, *common, "--tasks", str(small_sts_file))
    rows = [line.split("\t") for line in small_sts_file.read_text().splitlines()[1:]]
    bigger = write_sts_tsv(tmp_path / "tiny-sts-more.tsv", [*rows, ("the sky is green", "the grass is blue", "2.5")])
    _run(db, *common, "--tasks", str(bigger))
    record = open_store(db).get_run(2)
    phases = [t for t in record["timings"] if t["phase"] == "load"]
    assert [p["items"] for p in phases] == [0, 1]  # deferred, then loaded once inside the task
    encoded = next(t for t in record["timings"] if t["phase"] == "evaluate:tiny-sts-more")
    assert encoded["items"] == 2  # the two new texts; the rest from the cache
    assert record["scores"]["tiny-sts-more"] == pytest.approx(
        independent_cosine_spearman(tiny_llama_dir, bigger), abs=1e-6
    )


def test_eval_force_of_a_trained_run_is_warm_after_its_first_evaluation(
    tmp_path, tiny_llama_dir, small_sts_file, monkeypatch
):
    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text(
        "\n".join(json.dumps({"anchor": t.query, "positive": t.pos, "negative": t.neg}) for t in TRIPLETS) + "\n"
    )
    db = tmp_path / "h.db"
    _run(
        db,
        "--method",
        "infonce",
        "--backbone",
        str(tiny_llama_dir),
        "--tasks",
        str(small_sts_file),
        "--train-data",
        str(triplets),
        "--set",
        "method_args.steps=1",
        "--set",
        "method_args.batch_size=2",
        "--output-dir",
        str(tmp_path / "runs"),
    )
    trained = open_store(db).get_run(1)["scores"]
    again = ["eval", "1", "--tasks", str(small_sts_file), "--force", "--db", str(db)]
    first = runner.invoke(app, again)  # loads from the checkpoint, keeps its key
    assert first.exit_code == 0, first.output
    _no_model(monkeypatch)
    second = runner.invoke(app, again)
    assert second.exit_code == 0, second.output
    record = open_store(db).get_run(1)
    assert record["scores"] == trained
    assert [t["items"] for t in record["timings"] if t["phase"] == "load"][-1] == 0


def test_a_one_byte_change_of_a_weight_file_changes_the_key(tmp_path, tiny_llama_dir):
    from harness.config import RunConfig
    from harness.evaluation.embedding_cache import CacheSettings
    from harness.model.file_digests import FileDigests
    from harness.runs.load_key import load_key
    from harness.runs.plan import plan_run

    folder = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, folder)
    settings = CacheSettings(folder=tmp_path / "cache")
    plan = plan_run(RunConfig(method="untrained-mean", backbone=str(folder), tasks=["offline"]))
    before = load_key(plan, settings)
    assert before is not None and load_key(plan, settings) == before
    digests = FileDigests(settings.folder)
    weights = folder / "model.safetensors"
    digests.digest(weights)
    assert digests.hashed == 0  # kept by the load key's first computation
    status = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # the last byte of a weight: same size
    with weights.open("r+b") as handle:
        handle.write(bytes(data))
    os.utime(weights, ns=(status.st_atime_ns, status.st_mtime_ns))  # the old modification time put back
    assert weights.stat().st_size == status.st_size and weights.stat().st_mtime_ns == status.st_mtime_ns
    assert load_key(plan, settings) != before
    assert load_key(plan, CacheSettings(enabled=False, folder=settings.folder)) is None  # no cache, no key


def test_a_model_that_does_not_match_its_record_fails_the_run_and_drops_the_record(
    tmp_path, tiny_llama_dir, small_sts_file, monkeypatch
):
    from harness.evaluation import fingerprint

    db = tmp_path / "h.db"
    common = ["--method", "untrained-mean", "--backbone", str(tiny_llama_dir)]
    _run(db, *common, "--tasks", str(small_sts_file))
    rows = [line.split("\t") for line in small_sts_file.read_text().splitlines()[1:]]
    bigger = write_sts_tsv(tmp_path / "tiny-sts-more.tsv", [*rows, ("the sky is green", "the grass is blue", "2.5")])
    real = fingerprint.fingerprint
    monkeypatch.setattr(fingerprint, "fingerprint", lambda *a: "0" * 64)  # the loaded model "is" another
    failed = runner.invoke(app, ["run", *common, "--tasks", str(bigger), "--db", str(db)])
    assert failed.exit_code != 0 and "names another fingerprint" in " ".join(failed.output.split())
    assert open_store(db).get_run(2)["status"] == "failed"
    monkeypatch.setattr(fingerprint, "fingerprint", real)
    _run(db, *common, "--tasks", str(bigger))  # the record is gone: loaded from the start
    assert [t["items"] for t in open_store(db).get_run(3)["timings"] if t["phase"] == "load"] == [1]
