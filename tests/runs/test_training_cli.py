"""Trained runs through the real CLI on the tiny local Llama: metrics, eval, torchrun, kill+resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.conftest import infonce_run_args, run_args
from tests.training.test_distributed import _free_port, torchrun
from tests.training_fixtures import TRIPLETS, write_ic_triplets


def _train_args(backbone, triplets, task, tmp_path, steps=4, *extra):
    sets = f"method_args.steps={steps}"
    return [*infonce_run_args(tmp_path / "h.db", backbone, triplets, task, tmp_path / "runs", sets), *extra]


def test_trained_run_records_metrics_and_throughput_and_evaluates_again(
    tmp_path, tiny_llama_dir, triplets_file, small_sts_file
):
    runner = CliRunner()
    result = runner.invoke(
        app, _train_args(tiny_llama_dir, triplets_file, small_sts_file, tmp_path), catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path / "h.db")
    record = store.get_run(1)
    assert record["status"] == "finished"
    (train,) = [t for t in record["timings"] if t["phase"] == "train:contrastive"]
    assert train["items"] == 4 * 2 and train["tokens"] > 0
    assert train["details"]["world_size"] == 1 and train["details"]["effective_batch"] == 2
    assert train["details"]["tokens_per_s"] > 0
    # 4 steps x 2 triplets = each of the 8 triplets once; the count is additive over rows, so the
    # stage's model FLOPs are one pass with backward over all 24 templated texts (LoRA r16 on 7
    # projections of 2 layers: 16 x 2 x (64 + 48 + 48 + 64 + 3 x 96) = 16,384 adapter weights)
    from harness.encoder import PromptTokenizer
    from harness.telemetry import flops
    from tests.conftest import make_tiny_llama, make_tokenizer

    rows = PromptTokenizer(make_tokenizer(), "this sentence : {text}", 128)(
        [x for t in TRIPLETS for x in (t.query, t.pos, t.neg)]
    )
    shape = flops.Shape.of(make_tiny_llama().config)
    expected = flops.transformer_flops(shape, [len(r) for r in rows], flops.Pass(inputs=True, lora=16_384))
    details = train["details"]
    assert details["model_flops"] == pytest.approx(expected)
    assert 0 < details["mfu"] < 1
    assert details["mfu"] == pytest.approx(
        details["model_flops"] / train["seconds"] / details["peak_flops_per_s"], rel=1e-3
    )
    shown = runner.invoke(app, ["show", "1", "--db", str(tmp_path / "h.db")])
    assert "MFU" in shown.output and f"{100 * details['mfu']:.1f}%" in shown.output
    metrics = store.metrics(1)
    assert [m["step"] for m in metrics] == [1, 2, 3, 4] and all(m["lr"] >= 0 for m in metrics)
    (folder,) = (tmp_path / "runs").glob("run-1-*")
    assert record["output_dir"] == str(folder) and (folder / "checkpoints" / "0-contrastive" / "state.json").exists()
    # tiny Llama by hand: 2 layers x 9,280 + embeddings and LM head 2 x 2,048 + final norm 32 =
    # 22,688; LoRA r16 on its 7 projections: 2 x (1,024 + 768 + 768 + 1,024 + 3 x 1,536) = 16,384
    assert (record["n_parameters"], record["trainable_parameters"], record["embed_dim"]) == (
        22_688 + 16_384,
        16_384,
        32,
    )

    again = tmp_path / "tiny-sts-again.tsv"
    shutil.copy(small_sts_file, again)
    result = runner.invoke(
        app, ["eval", "1", "--tasks", str(again), "--db", str(tmp_path / "h.db")], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    scores = store.get_run(1)["scores"]
    assert scores["tiny-sts-again"] == pytest.approx(scores["tiny-sts"], abs=1e-6)  # same encoder, reloaded


def _accelerate(*args: str) -> None:
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes=2",
        "--num_machines=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
        f"--main_process_port={_free_port()}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_the_same_run_with_two_processes(tmp_path, tiny_llama_dir, triplets_file, small_sts_file, launcher):
    args = _train_args(tiny_llama_dir, triplets_file, small_sts_file, tmp_path, 2)
    if launcher == "torchrun":
        torchrun("-m", "harness", *args)
    else:
        _accelerate("-m", "harness", *args)
    store = open_store(tmp_path / "h.db")
    runs = store.runs(statuses=None)
    assert [r["status"] for r in runs] == ["finished"]  # one row: only rank 0 writes
    (train,) = [t for t in store.get_run(1)["timings"] if t["phase"] == "train:contrastive"]
    assert train["details"]["world_size"] == 2 and train["details"]["effective_batch"] == 4
    assert [m["step"] for m in store.metrics(1)] == [1, 2]
    # each of the 2 processes trained on one thread; both then evaluate, each on its share of the cores
    (evaluation,) = [t for t in store.get_run(1)["timings"] if t["phase"].startswith("evaluate:")]
    details = evaluation["details"]
    assert details["threads"] == max(1, len(os.sched_getaffinity(0)) // 2) and details["world_size"] == 2
    assert sum(details["texts_per_rank"]) == evaluation["items"] > 0 and min(details["texts_per_rank"]) > 0


def _final_loss(db) -> float:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT loss FROM metrics WHERE run_id = 1 ORDER BY step DESC LIMIT 1").fetchone()[0]


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_finishes_with_the_uninterrupted_loss(
    tmp_path, tiny_llama_dir, triplets_file, small_sts_file
):
    steps = 400  # ~10 s of training on the tiny model: time to be killed between checkpoints
    killed_dir, straight_dir = tmp_path / "killed", tmp_path / "straight"
    killed_dir.mkdir(), straight_dir.mkdir()
    extra = ["--set", "method_args.checkpoint_every=50"]
    harness = [sys.executable, "-m", "harness"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    victim = subprocess.Popen(
        [*harness, *_train_args(tiny_llama_dir, triplets_file, small_sts_file, killed_dir, steps, *extra)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None:
        states = list((killed_dir / "runs").glob("run-1-*/checkpoints/0-contrastive/state.json"))
        if states and 50 <= json.loads(states[0].read_text())["step"] < steps:
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the run ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    listing = subprocess.run(
        [*harness, "runs", "--db", str(killed_dir / "h.db"), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    (run,) = json.loads(listing.stdout)
    assert run["status"] == "failed" and "interrupted" in run["error"]

    resumed = subprocess.run(
        [*harness, "run", "--resume", "1", "--db", str(killed_dir / "h.db"), "--output-dir", str(killed_dir / "runs")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    subprocess.run(
        [*harness, *_train_args(tiny_llama_dir, triplets_file, small_sts_file, straight_dir, steps, *extra)],
        env=env,
        check=True,
        capture_output=True,
    )

    store = open_store(killed_dir / "h.db")
    assert [r["status"] for r in store.runs(statuses=None)] == ["finished"]
    assert _final_loss(killed_dir / "h.db") == pytest.approx(_final_loss(straight_dir / "h.db"), abs=1e-6)
    assert store.get_run(1)["scores"]["tiny-sts"] == pytest.approx(
        open_store(straight_dir / "h.db").get_run(1)["scores"]["tiny-sts"], abs=1e-6
    )


def test_resume_and_eval_refuse_what_they_cannot_do(tmp_path, tiny_llama_dir, small_sts_file):
    runner = CliRunner()
    db = str(tmp_path / "h.db")
    assert runner.invoke(app, run_args(db, tiny_llama_dir, small_sts_file)).exit_code == 0
    finished = runner.invoke(app, ["run", "--resume", "1", "--db", db])
    assert finished.exit_code == 2 and "already finished" in finished.output
    mixed = runner.invoke(app, ["run", "--resume", "1", "--method", "infonce", "--db", db])
    assert mixed.exit_code == 2 and "--resume takes the run's recorded config" in mixed.output
    missing = runner.invoke(app, ["eval", "7", "--tasks", str(small_sts_file), "--db", db])
    assert missing.exit_code == 2 and "no run 7" in missing.output
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'failed' WHERE id = 1")
    unfinished = runner.invoke(app, ["eval", "1", "--tasks", str(small_sts_file), "--db", db])
    assert unfinished.exit_code == 2 and "only finished runs" in unfinished.output


def test_an_ic_stage_records_its_held_out_diagnostics(tmp_path, tiny_llama_dir, small_sts_file):
    from methods.autoregembed import ic_warnings

    data = write_ic_triplets(tmp_path / "ic.jsonl")  # 30 distinct IC texts: 3 held out
    db = tmp_path / "h.db"
    result = CliRunner().invoke(
        app,
        run_args(
            db,
            tiny_llama_dir,
            small_sts_file,
            "--train-data",
            str(data),
            "--output-dir",
            str(tmp_path / "runs"),
            "--set",
            'method_args.stages=["ic"]',
            "--set",
            "method_args.ic_steps=2",
            "--set",
            "method_args.batch_size=2",
            method="autoregembed",
        ),
    )
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(app, ["show", "1", "--db", str(db), "--json"])
    (record,) = json.loads(shown.stdout)
    values = {d["name"]: d["value"] for d in record["diagnostics"] if d["stage"] == "ic"}
    assert set(values) == {"heldout_loss_own", "heldout_loss_shuffled", "heldout_loss_empty", "heldout_texts"}
    assert values["heldout_texts"] == 3 and all(v > 0 for v in values.values())
    assert "ic diagnostics: heldout_loss_own" in result.output
    assert ("held-out loss with each text's own slots" in result.output) == bool(ic_warnings(values))
    assert ("Repeated from above: warning: after IC" in result.output) == bool(ic_warnings(values))
    assert "note: the quick preset trains a 135M model" in result.output  # the default preset's caveat
    table = CliRunner().invoke(app, ["show", "1", "--db", str(db)], terminal_width=200)
    assert "Stage diagnostics" in table.output and "heldout_loss_shuffled" in table.output
