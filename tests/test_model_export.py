"""`harness export RUN --model DIR` round trips: the files alone give the harness's embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.model_export import load_encoder
from tests.training_fixtures import TRIPLETS

TEXTS = ["the cat sat on the mat", "a dog ran in a park", "rain falls"]


def _trained_run(tmp_path, tiny_llama_dir, small_sts_file, method, *extra):
    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text("\n".join(json.dumps({"anchor": t.query, "positive": t.pos, "negative": t.neg}) for t in TRIPLETS) + "\n")
    db = tmp_path / "h.db"
    args = ["run", "--method", method, "--backbone", str(tiny_llama_dir), "--train-data", str(triplets), "--tasks", str(small_sts_file),
            "--db", str(db), "--output-dir", str(tmp_path / "runs"), "--set", "method_args.batch_size=2", *extra]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db


def _harness_vectors(db):
    """The run's encoder as `harness eval` rebuilds it, from the run's own checkpoint."""
    from rich.console import Console

    from harness.encoder import EncodeSettings
    from harness.runner import restore_model
    from leaderboard.store import open_store

    record = open_store(db).get_run(1)
    method, backbone = restore_model(record, Console(quiet=True))
    return method.build_encoder(backbone, EncodeSettings(max_length=record["config"]["max_length"])).encode(TEXTS)


@pytest.mark.parametrize("method,extra", [
    ("infonce", ["--set", "method_args.steps=2", "--set", "method_args.template='this sentence : {text}'"]),
    ("autoregembed", ["--set", "method_args.ic_steps=2", "--set", "method_args.cda_steps=2", "--set", "method_args.instruction=means"]),
])
def test_exported_encoder_gives_the_harness_embeddings(tmp_path, tiny_llama_dir, small_sts_file, method, extra):
    db = _trained_run(tmp_path, tiny_llama_dir, small_sts_file, method, *extra)
    out = tmp_path / "encoder"
    result = CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    expected = _harness_vectors(db)
    got = load_encoder(out).encode(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert not np.allclose(got[0], got[2], atol=1e-3)  # not a degenerate constant

    # the peft adapter on the original weights is the merged model
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, out / "adapter").merge_and_unload().eval()
    merged = AutoModelForCausalLM.from_pretrained(out / "model", dtype=torch.float32).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        torch.testing.assert_close(adapted(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
    spec = json.loads((out / "harness-encoder.json").read_text())
    assert spec["kind"] == ("slots" if method == "autoregembed" else "pooled") and spec["run_id"] == 1


def test_export_refuses_a_folder_that_is_not_empty(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    CliRunner().invoke(app, ["run", "--method", "untrained-mean", "--backbone", str(tiny_llama_dir), "--tasks", str(small_sts_file), "--db", str(db)])
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)])
    assert result.exit_code == 2 and "not empty" in result.output and (out / "keep.txt").read_text() == "mine"
    fresh = tmp_path / "untrained"  # an untrained method: the model as loaded, no adapter
    assert CliRunner().invoke(app, ["export", "1", "--model", str(fresh), "--db", str(db)]).exit_code == 0
    assert not (fresh / "adapter").exists() and load_encoder(fresh).encode(TEXTS).shape == (3, 32)
