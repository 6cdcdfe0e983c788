"""LLM2Vec: masking, the MNTP loss against plain torch, SimCSE's views, the training path against
the encoder, and a run that exports and reloads bidirectional from its folder alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from harness.cli import app
from harness.encoder import EncodeSettings
from harness.model.attention import set_attention
from harness.training.dropout import training_dropout
from harness.training.loop import stage_config
from methods import llm2vec
from methods.llm2vec import LLM2Vec, LLM2VecConfig, MNTPStage, SimCSEStage, mask_rows
from tests.conftest import run_args
from tests.families import FAMILIES

TEXTS = ["the cat sat on the mat", "a dog ran in a park", "rain falls", "the man read a book"]


def _model(family="llama"):
    fam = FAMILIES[family]
    model, tokenizer = fam.model(), fam.tokenizer()
    set_attention(model, "bidirectional")
    return model, tokenizer


def test_masking_chooses_the_asked_fraction_and_splits_80_10_10():
    torch.manual_seed(0)
    rows = [[1] + list(range(5, 45)) for _ in range(200)]  # 1 is special: never chosen, nor position 0
    masked, targets, positions = mask_rows(rows, 0.2, mask=2, vocab=64, specials={1})
    assert all(i >= 1 for _, i in positions)
    assert abs(len(positions) / (200 * 40) - 0.2) < 0.02
    read = np.array([masked[r][i] for r, i in positions])
    assert abs((read == 2).mean() - 0.8) < 0.03
    assert abs((read == np.array(targets)).mean() - 0.1) < 0.03  # kept (a random draw may hit itself, rarely)
    unchosen = {(r, i) for r in range(200) for i in range(41)} - set(positions)
    assert all(masked[r][i] == rows[r][i] for r, i in unchosen)
    _, _, one = mask_rows([[1, 7]], 1e-9, mask=2, vocab=64, specials={1})
    assert one == [(0, 1)]  # at least one per row


def test_mntp_loss_is_next_token_cross_entropy_from_the_previous_state(monkeypatch):
    model, tokenizer = _model()
    config = LLM2VecConfig(max_length=32)
    torch.manual_seed(3)
    with torch.no_grad():
        loss, tokens = MNTPStage(config).loss(model, tokenizer, TEXTS, config)
    torch.manual_seed(3)
    rows = tokenizer(TEXTS, add_special_tokens=True)["input_ids"]
    masked, targets, positions = mask_rows(
        rows, config.mask_probability, tokenizer.unk_token_id, len(tokenizer), set(tokenizer.all_special_ids)
    )
    expected = []
    for (r, i), target in zip(positions, targets):
        with torch.no_grad():  # each row alone, bidirectional through transformers' own route: is_causal off, no mask
            for module in model.modules():
                if hasattr(module, "is_causal"):
                    module.is_causal = False
            set_attention(model, "causal")
            logits = model(input_ids=torch.tensor([masked[r]])).logits[0, i - 1]
            set_attention(model, "bidirectional")
            for module in model.modules():
                if hasattr(module, "is_causal"):
                    module.is_causal = True
        expected.append(-F.log_softmax(logits.double(), -1)[target])
    assert float(loss) == pytest.approx(float(torch.stack(expected).mean()), abs=1e-5)
    assert tokens == sum(len(r) for r in rows)


def test_simcse_views_differ_only_under_dropout_and_the_loss_matches_numpy():
    model, tokenizer = _model()
    method = LLM2Vec(LLM2VecConfig(max_length=32, temperature=0.1))
    stage = SimCSEStage(method.config)
    config = stage_config(method.config, stage)
    assert config.dropout == 0.3 and config.lr == 3e-5
    with torch.no_grad():
        quiet, _ = stage.loss(model, tokenizer, TEXTS, config)
    vectors = method.build_encoder(
        type("B", (), {"model": model, "tokenizer": tokenizer})(), EncodeSettings(max_length=32)
    ).encode(TEXTS)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ unit.T / 0.1
    expected = np.mean([np.log(np.exp(row).sum()) - row[i] for i, row in enumerate(scores)])
    assert float(quiet) == pytest.approx(expected, abs=1e-4)  # eval mode: the two views are one
    model.train()
    with torch.no_grad(), training_dropout(model, config.dropout):
        noisy, _ = stage.loss(model, tokenizer, TEXTS, config)
    model.eval()
    assert abs(float(noisy) - float(quiet)) > 1e-3
    with torch.no_grad():
        again, _ = stage.loss(model, tokenizer, TEXTS, config)
    assert float(again) == pytest.approx(float(quiet), abs=1e-6)  # the dropout is gone after the stage


def test_the_training_path_gives_the_encoders_vectors():
    model, tokenizer = _model("qwen2")
    config = LLM2VecConfig(max_length=32, template="Given a claim, find it: {text}")
    method = LLM2Vec(config)
    encoder = method.build_encoder(
        type("B", (), {"model": model, "tokenizer": tokenizer})(), EncodeSettings(max_length=32)
    )
    stage = SimCSEStage(config)
    rows = stage.rows(tokenizer, TEXTS, stage_config(config, stage))
    assert all(row.span != (0, len(row)) for row in rows)  # the instruction is not pooled
    with torch.no_grad():
        trained = stage.embed(model, rows, config).numpy()
    got = encoder.encode(TEXTS)
    np.testing.assert_allclose(trained, got / np.linalg.norm(got, axis=1, keepdims=True), atol=1e-5)


def test_bad_stages_are_refused():
    from harness.errors import HarnessError
    from harness.options import check_values

    for stages in (["mntp", "simcse", "supervised"], ["mlm"], ["mntp", "mntp"]):
        with pytest.raises(HarnessError, match="method_args.stages"):
            check_values(LLM2VecConfig(stages=stages), "--set", "method_args.")


def test_a_run_exports_and_reloads_bidirectional_from_its_folder(tmp_path, tiny_llama_dir, small_sts_file):
    from sentence_transformers import SentenceTransformer

    from harness.export.model import load_encoder
    from leaderboard.store import open_store
    from tests.export.test_model_export import _harness_vectors

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS * 3) + "\n")
    db = tmp_path / "h.db"
    run = run_args(
        db,
        tiny_llama_dir,
        small_sts_file,
        "--train-data",
        str(texts),
        "--output-dir",
        str(tmp_path / "runs"),
        "--set",
        "method_args.steps=2",
        "--set",
        "method_args.batch_size=4",
        "--set",
        "method_args.mntp_lr=0.01",
        "--set",
        "method_args.simcse_lr=0.01",
        method="llm2vec",
    )
    result = CliRunner().invoke(app, run, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = open_store(db).get_run(1)
    assert record["config"]["attention"] == "bidirectional"
    assert (
        record["versions"]["method.module"] == "methods.llm2vec"
        and record["versions"]["method.distribution"] == "harness"
    )
    out = tmp_path / "encoder"
    result = CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "harness-encoder.json").read_text())
    assert spec["attention"] == "bidirectional" and spec["template"] == "{pool}{text}{/pool}"
    expected = _harness_vectors(db)
    np.testing.assert_allclose(
        load_encoder(out).encode(llm2vec_texts := ["the cat sat on the mat", "a dog ran in a park", "rain falls"]),
        expected,
        atol=1e-4,
        rtol=0,
    )
    st = SentenceTransformer(str(out), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(st.encode(llm2vec_texts), expected, atol=1e-4, rtol=0)
    untrained = _harness_vectors_untrained(tiny_llama_dir, llm2vec_texts)
    assert np.abs(expected - untrained).max() > 1e-3  # training changed the encoder


def _harness_vectors_untrained(folder, texts):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    set_attention(model, "bidirectional")
    backbone = type("B", (), {"model": model, "tokenizer": AutoTokenizer.from_pretrained(folder)})()
    return LLM2Vec(LLM2VecConfig()).build_encoder(backbone, EncodeSettings()).encode(texts)


def test_llm2vec_module_cites_the_paper():
    assert "2404.05961" in (llm2vec.__doc__ or "")
