"""The encoder contract on a tiny random Llama: pooling, batching, truncation, and the mteb adapter's
memo, similarity and what it hands mteb."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.encoder import EncodeSettings, PooledEncoder
from harness.errors import HarnessError
from harness.evaluation.mteb_adapter import MtebEncoder, model_meta

TEXTS = [
    "the cat sat on the mat",
    "dog",
    "the bird flew over the house and the car drove down the road",
    "rain falls",
    "the man read a book",
]


def _alone(model, tokenizer, text: str) -> torch.Tensor:
    """Hidden states of one text run on its own: no padding, no batching."""
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        return model.model(input_ids=ids).last_hidden_state[0]


@pytest.mark.parametrize("batch_size", [1, 2, 32])
def test_mean_pooling_matches_unpadded_single_texts(tiny_llama, batch_size):
    model, tokenizer = tiny_llama
    encoder = PooledEncoder(model, tokenizer, pooling="mean", settings=EncodeSettings(batch_size=batch_size))
    got = encoder.encode(TEXTS)
    expected = np.stack([_alone(model, tokenizer, t).mean(0).numpy() for t in TEXTS])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 32)


def test_last_pooling_takes_each_rows_last_real_token(tiny_llama):
    model, tokenizer = tiny_llama
    encoder = PooledEncoder(model, tokenizer, pooling="last", settings=EncodeSettings(batch_size=8))
    got = encoder.encode(TEXTS)
    expected = np.stack([_alone(model, tokenizer, t)[-1].numpy() for t in TEXTS])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_counts_texts_and_real_tokens(tiny_llama):
    model, tokenizer = tiny_llama
    encoder = PooledEncoder(model, tokenizer, pooling="mean", settings=EncodeSettings(batch_size=2))
    encoder.encode(TEXTS)
    assert encoder.texts_encoded == len(TEXTS)
    assert encoder.tokens_encoded == sum(len(t.split()) for t in TEXTS)


def test_truncation_cuts_the_text_and_keeps_the_template(tiny_llama):
    model, tokenizer = tiny_llama
    template = 'this sentence : " {text} " means one word'
    encoder = PooledEncoder(
        model, tokenizer, pooling="last", settings=EncodeSettings(max_length=10), template=template
    )
    long_text = " ".join(["cat"] * 30)
    (row,) = encoder.tokenize([long_text])
    suffix = tokenizer('" means one word')["input_ids"]
    prefix = tokenizer('this sentence : "')["input_ids"]
    assert 1 not in prefix + suffix  # every template word is in the vocabulary
    assert len(row) == 10
    assert row[: len(prefix)] == prefix and row[-len(suffix) :] == suffix
    assert row[len(prefix) : -len(suffix)] == tokenizer("cat")["input_ids"] * (10 - len(prefix) - len(suffix))


@pytest.mark.parametrize(
    "template, problem",
    [
        ("no slot", "must contain"),
        ("{pool}{text}", "one pooled span"),
        ("{/pool}{text}{pool}", "one pooled span"),
        ("{pool}{text}{/pool}{pool}{/pool}", "one pooled span"),
    ],
)
def test_template_needs_the_text_and_at_most_one_span(tiny_llama, template, problem):
    model, tokenizer = tiny_llama
    with pytest.raises(HarnessError, match=problem):
        PooledEncoder(model, tokenizer, pooling="mean", settings=EncodeSettings(), template=template)


def _adapter(tiny_llama):
    model, tokenizer = tiny_llama
    encoder = PooledEncoder(model, tokenizer, pooling="mean", settings=EncodeSettings(batch_size=4))
    meta = model_meta(
        name="harness/test__tiny", revision="0" * 12, n_parameters=1, embed_dim=32, max_tokens=512, source="tiny"
    )
    return encoder, MtebEncoder(encoder, meta)


def test_adapter_memoises_by_text(tiny_llama):
    encoder, adapter = _adapter(tiny_llama)
    batches = [{"text": ["dog", "rain falls", "dog"]}, {"text": ["rain falls", "the cat sat on the mat"]}]
    first = adapter.encode(batches)
    second = adapter.encode([{"text": ["dog"]}])
    assert (adapter.requested, adapter.computed, encoder.texts_encoded) == (6, 3, 3)
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_allclose(first[4], encoder.encode(["the cat sat on the mat"])[0], atol=1e-6)


def test_adapter_similarity_is_the_cosine_and_one_number_for_two_single_vectors(tiny_llama):
    """mteb scores with the adapter's similarity: cosines of rows, pairwise or row by row, and of two
    single vectors one 0-d number (mteb's summarization evaluator calls ``float()`` on it)."""
    _, adapter = _adapter(tiny_llama)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 32)), rng.normal(size=(3, 32))
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    cosine = unit(a) @ unit(b).T
    np.testing.assert_allclose(adapter.similarity(a, b), cosine, atol=1e-5)
    np.testing.assert_allclose(adapter.similarity_pairwise(a, b), np.diag(cosine), atol=1e-5)
    one = adapter.similarity(a[0], b[1])
    assert np.shape(one) == () and float(one) == pytest.approx(cosine[0, 1], abs=1e-5)


def test_mteb_gets_the_task_files_pairs_and_each_text_encoded_once(tiny_llama, small_sts_file):
    """What the harness hands mteb for a task file: its pairs and gold scores as written, within the
    range they span, and one encoding of each text however often mteb's STS evaluator asks for it.
    (The score mteb then computes, against a Spearman computed without the harness:
    tests/cli/test_cli.py.)"""
    import mteb

    from harness.data.task_files import read_sts_file
    from harness.evaluation.tasks import build_mteb_task, resolve_tasks

    encoder, adapter = _adapter(tiny_llama)
    (spec,) = resolve_tasks([str(small_sts_file)])
    task = build_mteb_task(spec)
    task.load_data()
    written = read_sts_file(small_sts_file)
    given = task.dataset["test"]
    assert (given["sentence1"], given["sentence2"]) == (written.sentence1, written.sentence2)
    np.testing.assert_allclose(given["score"], written.scores)
    assert (task.min_score, task.max_score) == (min(written.scores), max(written.scores))

    mteb.evaluate(adapter, task, cache=None, show_progress_bar=False)
    texts = set(written.sentence1) | set(written.sentence2)
    assert adapter.requested == 2 * len(written.sentence1) > len(texts)  # both columns, repeats included
    assert adapter.computed == encoder.texts_encoded == len(texts)
    assert adapter.mteb_model_meta.name == "harness/test__tiny"


@pytest.mark.parametrize("name, pool", [("untrained-last", lambda h: h[-1]), ("untrained-mean", lambda h: h.mean(0))])
def test_untrained_baselines_with_the_autoregembed_preset_read_its_instruction(tiny_llama, name, pool):
    """The paper's untrained -L / -M rows: the text under AutoRegEmbed's instruction template."""
    from harness.model.backbones import Backbone, BackboneSpec
    from harness.prompts import STS_INSTRUCTION
    from harness.registry import get_method
    from harness.runs.plan import method_options

    model, tokenizer = tiny_llama
    cls = get_method(name)
    config = method_options(cls, {"preset": "autoregembed"}, name)
    assert config.template == "{text}\n" + STS_INSTRUCTION
    assert method_options(cls, {}, name).template == "{text}"  # plain stays the default
    encoder = cls(config).build_encoder(
        Backbone(BackboneSpec("tiny", "tiny", "local"), model, tokenizer), EncodeSettings(batch_size=2)
    )
    got = encoder.encode(TEXTS[:3])
    expected = np.stack([pool(_alone(model, tokenizer, t + "\n" + STS_INSTRUCTION)).numpy() for t in TEXTS[:3]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
