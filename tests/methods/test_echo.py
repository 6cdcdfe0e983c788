"""Echo embeddings and span pooling: rows built piece by piece, vectors against numpy means over
the pooled span of independently computed hidden states, truncation, and a run end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.encoder import EncodeSettings, PromptTokenizer
from harness.errors import HarnessError
from methods.echo import ECHO_TEMPLATE, Echo, EchoConfig
from methods.untrained import PoolingConfig, UntrainedMean
from tests.conftest import run_args
from tests.families import FAMILIES

TEXTS = ["the cat sat on the mat", "dog", "the bird flew over the house and the car drove down the road"]


class _Backbone:
    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer


def _pieces(tokenizer, text, *parts):
    """Ids of ``parts`` (strings, or None for the text) each tokenised alone, after the BOS the
    family adds: the reference's way, written out here without the harness."""
    bos = [tokenizer.bos_token_id] if tokenizer("x")["input_ids"][0] == tokenizer.bos_token_id else []
    return bos, [tokenizer(text if part is None else part, add_special_tokens=False)["input_ids"] for part in parts]


def _hidden(model, ids):
    with torch.no_grad():
        return model.get_decoder()(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_echo_is_the_mean_over_the_second_copy(family):
    fam = FAMILIES[family]
    model, tokenizer = fam.model(), fam.tokenizer()
    encoder = Echo(EchoConfig()).build_encoder(_Backbone(model, tokenizer), EncodeSettings(batch_size=2))
    got = encoder.encode(TEXTS)
    for text, vector in zip(TEXTS, got):
        bos, (head, first, middle, second) = _pieces(
            tokenizer, text, "Rewrite the sentence: ", None, ", rewritten sentence: ", None
        )
        assert first == second
        ids = bos + head + first + middle + second
        start = len(ids) - len(second)
        np.testing.assert_allclose(vector, _hidden(model, ids)[start:].mean(axis=0), atol=1e-5)


def test_echo_differs_from_the_whole_row_mean_of_its_template():
    fam = FAMILIES["llama"]
    model, tokenizer = fam.model(), fam.tokenizer()
    settings = EncodeSettings()
    echo = Echo(EchoConfig()).build_encoder(_Backbone(model, tokenizer), settings).encode(TEXTS)
    whole = (
        Echo(EchoConfig(template=ECHO_TEMPLATE.replace("{pool}", "").replace("{/pool}", "")))
        .build_encoder(_Backbone(model, tokenizer), settings)
        .encode(TEXTS)
    )
    assert np.abs(echo - whole).max() > 1e-3


def test_text_only_mean_pools_the_texts_own_tokens():
    fam = FAMILIES["llama"]
    model, tokenizer = fam.model(), fam.tokenizer()
    config = PoolingConfig(template="this sentence : {text} means", pool_text_only=True)
    got = UntrainedMean(config).build_encoder(_Backbone(model, tokenizer), EncodeSettings()).encode(TEXTS)
    for text, vector in zip(TEXTS, got):
        bos, (head, body, tail) = _pieces(tokenizer, text, "this sentence : ", None, " means")
        hidden = _hidden(model, bos + head + body + tail)
        np.testing.assert_allclose(vector, hidden[len(bos + head) : len(bos + head + body)].mean(axis=0), atol=1e-5)


def test_last_pooling_takes_the_spans_last_token():
    fam = FAMILIES["llama"]
    model, tokenizer = fam.model(), fam.tokenizer()
    got = (
        Echo(EchoConfig(template="{pool}{text}{/pool} again {text}", pooling="last"))
        .build_encoder(_Backbone(model, tokenizer), EncodeSettings())
        .encode(TEXTS[:1])
    )
    bos, (first, middle, second) = _pieces(tokenizer, TEXTS[0], None, " again ", None)
    np.testing.assert_allclose(got[0], _hidden(model, bos + first + middle + second)[len(bos + first) - 1], atol=1e-5)


def test_truncation_cuts_every_copy_alike_and_keeps_the_template():
    tokenizer = FAMILIES["llama"].tokenizer()
    text = " ".join(["the cat sat"] * 10)  # 30 words
    (row,) = PromptTokenizer(tokenizer, "a {text} b {pool}{text}{/pool} c", max_length=21)([text])
    bos, (a, b, c) = _pieces(tokenizer, text, "a ", " b ", " c")
    keep = (21 - len(bos + a + b + c)) // 2
    cut = tokenizer(text, add_special_tokens=False)["input_ids"][:keep]
    assert list(row) == bos + a + cut + b + cut + c
    assert row.span == (len(bos + a + cut + b), len(bos + a + cut + b + cut))
    with pytest.raises(HarnessError, match="cannot hold the template"):
        PromptTokenizer(tokenizer, "a {text} b {text} c", max_length=len(bos + a + b + c) + 1)


def test_an_empty_text_pools_its_whole_row():
    fam = FAMILIES["llama"]
    model, tokenizer = fam.model(), fam.tokenizer()
    (vector,) = Echo(EchoConfig()).build_encoder(_Backbone(model, tokenizer), EncodeSettings()).encode([""])
    bos, (head, middle) = _pieces(tokenizer, "", "Rewrite the sentence: ", ", rewritten sentence: ")
    np.testing.assert_allclose(vector, _hidden(model, bos + head + middle).mean(axis=0), atol=1e-5)


@pytest.mark.parametrize("template", ["no text here", "{pool}{text}", "{text}{/pool}{pool}"])
def test_bad_templates_are_refused_naming_the_option(template):
    from harness.options import check_values

    with pytest.raises(HarnessError, match="method_args.template="):
        check_values(EchoConfig(template=template), "--set", "method_args.")


def test_an_echo_run_exports_and_reloads_its_vectors(tmp_path, tiny_llama_dir, small_sts_file):
    from sentence_transformers import SentenceTransformer
    from typer.testing import CliRunner

    from harness.cli import app
    from harness.export.model import load_encoder
    from tests.export.test_model_export import _harness_vectors

    db = tmp_path / "h.db"
    args = run_args(db, tiny_llama_dir, small_sts_file, method="echo")
    assert CliRunner().invoke(app, args).exit_code == 0
    out = tmp_path / "encoder"
    result = CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    texts = ["the cat sat on the mat", "rain falls", ""]
    for side in (None, "document"):
        expected = _harness_vectors(db, texts, prompt_type=side)
        np.testing.assert_allclose(load_encoder(out).encode(texts, prompt_type=side), expected, atol=1e-5, rtol=0)
        st = SentenceTransformer(str(out), device="cpu", trust_remote_code=True)
        got = st.encode_document(texts) if side else st.encode(texts)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert "{{ messages[0]['content'] }}" in (out / "chat_template.jinja").read_text()  # the text twice, marks gone
    assert (out / "chat_template.jinja").read_text().count("messages[0]['content']") == 4  # two sides, two copies each


def test_a_text_of_no_tokens_reads_eos():
    tokenizer = FAMILIES["qwen2"].tokenizer()  # adds no special token
    assert PromptTokenizer(tokenizer, "{text}", 16)([""]) == [[tokenizer.eos_token_id]]
    assert PromptTokenizer(tokenizer, "{pool}{text}{/pool}", 16)([""]) == [[tokenizer.eos_token_id]]


def test_a_max_length_that_cannot_hold_both_copies_is_refused_before_recording(
    tmp_path, tiny_llama_dir, small_sts_file
):
    from transformers import AutoTokenizer
    from typer.testing import CliRunner

    from harness.cli import app

    template = "the cat sat on the mat and {text} then the dog ran in the park : {pool}{text}{/pool}"
    fixed = PromptTokenizer(AutoTokenizer.from_pretrained(tiny_llama_dir), template, 512).fixed_tokens
    assert fixed == 15
    db = tmp_path / "h.db"
    args = run_args(
        db,
        tiny_llama_dir,
        small_sts_file,
        "--set",
        f"method_args.template='{template}'",
        "--set",
        f"max_length={fixed + 1}",
        method="echo",
    )
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and f"must be at least {fixed + 2}" in " ".join(result.output.split())
    assert not db.exists()
    args[-1] = f"max_length={fixed + 2}"
    assert CliRunner().invoke(app, args).exit_code == 0
