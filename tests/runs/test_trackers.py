"""`harness run --report-to`: TensorBoard event files, a local MLflow file store and an offline
wandb run hold the losses, learning rates and scores the leaderboard recorded for the same run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.training_fixtures import TRIPLETS

STEPS = 4


def _run(tmp_path, tiny_llama_dir, small_sts_file, *extra):
    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text(
        "\n".join(json.dumps({"anchor": t.query, "positive": t.pos, "negative": t.neg}) for t in TRIPLETS) + "\n"
    )
    args = [
        "run",
        "--method",
        "infonce",
        "--backbone",
        str(tiny_llama_dir),
        "--train-data",
        str(triplets),
        "--tasks",
        str(small_sts_file),
        "--db",
        str(tmp_path / "h.db"),
        "--output-dir",
        str(tmp_path / "out"),
        "--set",
        "method_args.batch_size=2",
        "--set",
        f"method_args.steps={STEPS}",
        *extra,
    ]
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _recorded(tmp_path):
    store = open_store(tmp_path / "h.db", create=False)
    record = store.get_run(1)
    return record, store.metrics(1)


def test_tensorboard_event_files_hold_the_recorded_losses_and_scores(tmp_path, tiny_llama_dir, small_sts_file):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = _run(tmp_path, tiny_llama_dir, small_sts_file, "--report-to", "tensorboard")
    assert result.exit_code == 0, result.output
    record, metrics = _recorded(tmp_path)
    (folder,) = (tmp_path / "out" / "tensorboard").iterdir()
    assert folder.name == f"run-1-{record['uuid'][:8]}"
    events = EventAccumulator(str(folder)).Reload()
    losses = events.Scalars("train/contrastive/loss")
    assert [e.step for e in losses] == [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    assert [e.value for e in losses] == pytest.approx([m["loss"] for m in metrics], rel=1e-6)
    assert [e.value for e in events.Scalars("train/contrastive/lr")] == pytest.approx(
        [m["lr"] for m in metrics], rel=1e-6
    )
    (score,) = events.Scalars("score/tiny-sts")
    assert score.value == pytest.approx(record["scores"]["tiny-sts"], rel=1e-6) and score.step == STEPS
    assert events.Scalars("time/train:contrastive/seconds")[0].value > 0


@pytest.mark.parametrize("store", ["default", "file-store"])
def test_local_mlflow_store_holds_the_run_config_and_metrics(
    tmp_path, tiny_llama_dir, small_sts_file, monkeypatch, store
):
    """The harness's default local store (SQLite under --output-dir), and MLflow's own file store
    named by MLFLOW_TRACKING_URI (MLflow 3 wants MLFLOW_ALLOW_FILE_STORE for it)."""
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    if store == "default":
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        uri = f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    else:
        uri = (tmp_path / "mlruns").as_uri()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    result = _run(tmp_path, tiny_llama_dir, small_sts_file, "--report-to", "mlflow")
    assert result.exit_code == 0, result.output
    record, metrics = _recorded(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    assert run.info.run_name == f"run-1-{record['uuid'][:8]}" and run.info.status == "FINISHED"
    assert run.data.params["harness.config_hash"] == record["config_hash"] and run.data.params[
        "method_args.steps"
    ] == str(STEPS)
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/contrastive/loss"))
    assert [step for step, _ in history] == [m["step"] for m in metrics]
    assert [value for _, value in history] == pytest.approx([m["loss"] for m in metrics], rel=1e-6)
    assert run.data.metrics["score/tiny-sts"] == pytest.approx(record["scores"]["tiny-sts"], rel=1e-6)


def test_offline_wandb_run_holds_the_config_and_every_value(tmp_path, tiny_llama_dir, small_sts_file, monkeypatch):
    """wandb 0.31 has no Python reader for its offline run file; its records keep each logged value
    as JSON text and the config's strings as they are, so the test looks for those bytes."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    result = _run(tmp_path, tiny_llama_dir, small_sts_file, "--report-to", "wandb")
    assert result.exit_code == 0, result.output
    record, metrics = _recorded(tmp_path)
    (run_file,) = (tmp_path / "out" / "wandb").glob("offline-run-*/run-*.wandb")
    data = run_file.read_bytes()
    assert len(data) < 32768  # one block of the log format: no record is split by a block header
    for value in [m["loss"] for m in metrics] + [m["lr"] for m in metrics] + [record["scores"]["tiny-sts"]]:
        assert json.dumps(value).encode() in data, value
    for text in (record["config_hash"], f"run-1-{record['uuid'][:8]}", "train/contrastive/loss", "score/tiny-sts"):
        assert text.encode() in data, text


def test_a_tracker_that_fails_mid_run_is_dropped_and_the_run_is_recorded(
    tmp_path, tiny_llama_dir, small_sts_file, monkeypatch
):
    pytest.importorskip("tensorboard")
    from accelerate.tracking import TensorBoardTracker

    def broken(self, values, step=None, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(TensorBoardTracker, "log", broken)
    result = _run(tmp_path, tiny_llama_dir, small_sts_file, "--report-to", "tensorboard")
    assert result.exit_code == 0, result.output
    assert "--report-to tensorboard stopped (OSError: disk full)" in " ".join(result.output.split())
    record, metrics = _recorded(tmp_path)
    assert record["status"] == "finished" and "tiny-sts" in record["scores"] and len(metrics) == STEPS


@pytest.mark.parametrize(
    "name,message",
    [("neptune", "choose from tensorboard, mlflow, wandb"), ("mlflow", "pip install 'harness[mlflow]'")],
)
def test_a_tracker_that_cannot_run_is_exit_2_and_records_nothing(
    tmp_path, tiny_llama_dir, small_sts_file, monkeypatch, name, message
):
    from harness.runs import trackers

    monkeypatch.setattr(trackers, "find_spec", lambda module: None)  # as if no tracker were installed
    result = _run(tmp_path, tiny_llama_dir, small_sts_file, "--report-to", name)
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "h.db").exists()
