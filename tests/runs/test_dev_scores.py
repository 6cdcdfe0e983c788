"""Dev scores followed during training (--dev-tasks, method_args.eval_every, keep_best) through the
real CLI on the tiny local Llama: bad input, training left as it was, the record, show, plot."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.conftest import infonce_run_args, run_args


def _run(backbone, triplets, task, db, tmp_path, *extra):
    args = [*infonce_run_args(db, backbone, triplets, task, tmp_path / "runs", "method_args.steps=4"), *extra]
    return CliRunner().invoke(app, args, catch_exceptions=False)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--set", "method_args.eval_every=2"], "method_args.eval_every=2 needs --dev-tasks"),
        (["--dev-tasks", "DEV"], "--dev-tasks needs method_args.eval_every=N"),
        (["--dev-tasks", "DEV", "--set", "method_args.eval_every=0"], "method_args.eval_every=0 must be >= 1"),
        (["--dev-tasks", "DEV", "--set", "method_args.eval_every=-3"], "method_args.eval_every=-3 must be >= 1"),
        (
            ["--dev-tasks", "DEV", "--set", "method_args.eval_every=1.5"],
            "method_args.eval_every: expected int, got 1.5",
        ),
        (
            ["--dev-tasks", "DEV", "--set", "method_args.eval_every=often"],
            "method_args.eval_every: expected int, got 'often'",
        ),
        (["--set", "method_args.keep_best=true"], "method_args.keep_best=true needs method_args.eval_every=N"),
        (
            ["--dev-tasks", "no-such-task", "--set", "method_args.eval_every=1"],
            "--dev-tasks: unknown task 'no-such-task'",
        ),
        (
            [
                "--dev-tasks",
                "DEV",
                "--set",
                "method_args.eval_every=1",
                "--set",
                "method_args.finetune=full",
                "--set",
                "method_args.sharding=fsdp",
            ],
            "method_args.eval_every: a sharded model (fsdp) cannot encode while it trains",
        ),
    ],
)
def test_bad_dev_options_are_exit_2_naming_the_option_and_record_nothing(
    tmp_path, tiny_llama_dir, triplets_file, small_sts_file, extra, message
):
    db = tmp_path / "h.db"
    extra = [str(small_sts_file) if item == "DEV" else item for item in extra]
    result = _run(tiny_llama_dir, triplets_file, small_sts_file, db, tmp_path, *extra)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not db.exists() and not (tmp_path / "runs").exists()


def test_dev_tasks_on_an_untrained_method_are_refused(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    result = CliRunner().invoke(app, run_args(db, tiny_llama_dir, small_sts_file, "--dev-tasks", str(small_sts_file)))
    assert result.exit_code == 2 and "does not train" in " ".join(result.output.split()) and not db.exists()


def test_dev_evaluations_leave_training_as_it_was_and_are_recorded_shown_and_drawn(
    tmp_path, tiny_llama_dir, triplets_file, small_sts_file
):
    dev = tmp_path / "tiny-dev.tsv"
    shutil.copy(small_sts_file, dev)
    plain, followed = tmp_path / "plain.db", tmp_path / "followed.db"
    assert _run(tiny_llama_dir, triplets_file, small_sts_file, plain, tmp_path).exit_code == 0
    result = _run(
        tiny_llama_dir,
        triplets_file,
        small_sts_file,
        followed,
        tmp_path,
        "--dev-tasks",
        str(dev),
        "--set",
        "method_args.eval_every=3",
    )
    assert result.exit_code == 0, result.output
    store = open_store(followed)
    # eval mode for the evaluation, train mode (LoRA dropout) and the random state given back after it
    assert [m["loss"] for m in store.metrics(1)] == [m["loss"] for m in open_store(plain).metrics(1)]
    rows = store.dev_scores(1)
    assert [(r["stage"], r["step"], r["task"]) for r in rows] == [
        ("contrastive", 3, "tiny-dev"),
        ("contrastive", 4, "tiny-dev"),
    ]
    assert all(r["main_metric"] == "cosine_spearman" and r["seconds"] > 0 for r in rows)
    record = store.get_run(1)
    assert record["scores"] == pytest.approx(
        open_store(plain).get_run(1)["scores"], abs=1e-9
    )  # the same encoder at the end
    assert rows[-1]["score"] == pytest.approx(
        record["scores"]["tiny-sts"], abs=1e-9
    )  # the last dev evaluation is that encoder
    assert set(record["scores"]) == {"tiny-sts"} and "tiny-dev" not in record["task_versions"]  # never a test score
    assert not [t for t in record["timings"] if t["phase"] == "evaluate:tiny-dev"]
    (train,) = [t for t in record["timings"] if t["phase"] == "train:contrastive"]
    assert train["details"]["dev_eval_seconds"] >= sum(r["seconds"] for r in rows)  # left out of the stage's seconds

    shown = CliRunner().invoke(app, ["show", "1", "--db", str(followed)])
    assert shown.exit_code == 0 and "Dev scores (stage contrastive)" in shown.output
    best = max(rows, key=lambda r: r["score"])  # the earliest of equals: max keeps the first
    (line,) = [line for line in shown.output.splitlines() if line.strip().startswith(f"│ {best['step']} ")]
    assert f"{100 * best['score']:.2f}" in line and "*" in line
    (as_json,) = json.loads(CliRunner().invoke(app, ["show", "1", "--db", str(followed), "--json"]).stdout)
    assert as_json["dev_scores"] == rows

    pytest.importorskip("matplotlib")
    svg = tmp_path / "curves.svg"
    drawn = CliRunner().invoke(app, ["plot", "1", "--scores", "--out", str(svg), "--db", str(followed)])
    assert drawn.exit_code == 0, drawn.output
    text = svg.read_text()
    assert 'id="loss-contrastive-0"' in text and 'id="dev-contrastive-0-tiny-dev"' in text
    refused = CliRunner().invoke(app, ["plot", "1", "--scores", "--out", str(svg), "--db", str(plain)])
    assert refused.exit_code == 2 and "no dev scores are recorded for run #1" in " ".join(refused.output.split())


def test_keep_best_makes_the_best_dev_step_the_runs_encoder(tmp_path, tiny_llama_dir, triplets_file, small_sts_file):
    db = tmp_path / "h.db"
    result = _run(
        tiny_llama_dir,
        triplets_file,
        small_sts_file,
        db,
        tmp_path,
        "--dev-tasks",
        str(small_sts_file),
        "--set",
        "method_args.eval_every=1",
        "--set",
        "method_args.keep_best=true",
        "--set",
        "method_args.lr=0.3",
        "--set",
        "method_args.warmup_ratio=0",
    )
    assert result.exit_code == 0, result.output
    store = open_store(db)
    rows = store.dev_scores(1)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    best = max(rows, key=lambda r: r["score"])  # one dev task: its score is the mean; max keeps the earliest of equals
    assert best["step"] != 4  # the test means something: the last step is not the best
    record = store.get_run(1)
    (kept,) = [t for t in record["timings"] if t["phase"] == "keep-best"]
    assert (kept["details"]["stage"], kept["details"]["step"]) == ("contrastive", best["step"])
    assert kept["details"]["dev_score"] == pytest.approx(best["score"])
    # the test task is the dev file: evaluated once, after training, on the restored encoder
    assert record["scores"]["tiny-sts"] == pytest.approx(best["score"], abs=1e-9)
    (folder,) = (tmp_path / "runs").glob("run-1-*")
    saved = torch.load(folder / "best-dev.pt", weights_only=True)
    final = torch.load(folder / "checkpoints" / "0-contrastive" / "trainable.pt", weights_only=True)
    assert (
        saved["step"] == best["step"] and set(final) == set(saved["state"]) and all("lora_" in name for name in final)
    )
    assert all(torch.equal(final[name], saved["state"][name]) for name in final)

    again = tmp_path / "tiny-sts-again.tsv"
    shutil.copy(small_sts_file, again)
    assert CliRunner().invoke(app, ["eval", "1", "--tasks", str(again), "--db", str(db)]).exit_code == 0
    assert store.get_run(1)["scores"]["tiny-sts-again"] == pytest.approx(best["score"], abs=1e-9)
    shown = CliRunner().invoke(app, ["show", "1", "--db", str(db)])
    assert f"kept: contrastive step {best['step']}" in " ".join(shown.output.split())
