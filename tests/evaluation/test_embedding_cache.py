"""The embedding cache across runs: a second run reads its vectors instead of computing them, any
change to what decides a vector misses, a damaged entry is recomputed, and concurrent writers
corrupt nothing."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import sqlite3

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.encoder import EncodeSettings, PooledEncoder
from harness.evaluation import fingerprint as fingerprints
from harness.evaluation.embedding_cache import CacheSettings, EmbeddingCache, entry_key, seal, unseal
from harness.evaluation.fingerprint import fingerprint, fingerprintable
from methods.untrained import UntrainedLast, UntrainedMean
from tests.conftest import make_tiny_llama, make_tokenizer

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "the sky is blue"]


def _run(tiny_llama_dir, task, db, *extra):
    args = [
        "run",
        "--method",
        "untrained-mean",
        "--backbone",
        str(tiny_llama_dir),
        "--tasks",
        str(task),
        "--db",
        str(db),
        *extra,
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def _evaluation(db, run_id):
    with sqlite3.connect(db) as conn:
        ((items, details),) = conn.execute(
            "SELECT items, details FROM timings WHERE run_id = ? AND phase LIKE 'evaluate:%'", (run_id,)
        )
        ((score,),) = conn.execute("SELECT main_score FROM scores WHERE run_id = ?", (run_id,))
    return items, json.loads(details), score


def _distinct_texts(sts_file):
    rows = [line.split("\t") for line in sts_file.read_text().splitlines()[1:]]
    return {text for row in rows for text in row[:2]}


def test_a_second_run_reads_every_vector_from_the_cache_and_scores_the_same(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    _run(tiny_llama_dir, small_sts_file, db)
    _run(tiny_llama_dir, small_sts_file, db)
    distinct = len(_distinct_texts(small_sts_file))
    first_items, first, first_score = _evaluation(db, 1)
    second_items, second, second_score = _evaluation(db, 2)
    assert (first_items, first["cache_hits"]) == (distinct, 0)
    assert (second_items, second["cache_hits"]) == (0, distinct)  # nothing went through the model
    assert second["memo_hits"] == second["texts_requested"] - distinct
    assert second_score == first_score
    assert first["cache"] == second["cache"] and len(first["cache"]) == 16  # the key's digits, same encoder


def test_no_cache_computes_everything_and_writes_nothing(
    tmp_path, tiny_llama_dir, small_sts_file, own_embedding_cache
):
    db = tmp_path / "h.db"
    _run(tiny_llama_dir, small_sts_file, db, "--no-cache")
    items, details, _ = _evaluation(db, 1)
    assert details["cache"] == "off (--no-cache)" and details["cache_hits"] == 0
    assert items == len(_distinct_texts(small_sts_file))
    assert list(own_embedding_cache.iterdir()) == []


# -- the key ---------------------------------------------------------------------------------------
def _encoder(model=None, tokenizer=None, *, pooling="mean", max_length=64, **templates):
    model = model if model is not None else make_tiny_llama()
    return PooledEncoder(
        model,
        tokenizer or make_tokenizer(),
        pooling=pooling,
        settings=EncodeSettings(batch_size=4, max_length=max_length),
        **templates,
    )


def _method(cls=UntrainedMean, **options):
    return cls(dataclasses.replace(cls.Config(), **options))


def _with_lora(model):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    peft_model = get_peft_model(
        model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    return peft_model


def _variants():
    """(what changed, encoder, method, method name), each differing from the baseline in one part of the key."""
    base = _method()
    perturbed = make_tiny_llama()
    with torch.no_grad():
        perturbed.model.layers[1].mlp.up_proj.weight[0, 0] += 1e-3
    bigger_vocab = make_tokenizer()
    bigger_vocab.add_tokens(["zebra"])
    no_cleanup = make_tokenizer()
    no_cleanup.clean_up_tokenization_spaces = not no_cleanup.clean_up_tokenization_spaces  # truncation decodes
    rotary = make_tiny_llama()
    rotary.model.rotary_emb.inv_freq.mul_(1.5)  # a buffer outside state_dict
    disabled = _with_lora(make_tiny_llama())
    disabled.base_model.disable_adapter_layers()
    rescaled = _with_lora(make_tiny_llama())
    for layer in rescaled.modules():
        if hasattr(layer, "scaling") and isinstance(layer.scaling, dict):
            layer.scaling["default"] *= 2
    training = make_tiny_llama().train()
    return [
        ("backbone weights", _encoder(perturbed), base, "untrained-mean"),
        ("another seed's backbone", _encoder(make_tiny_llama(seed=1)), base, "untrained-mean"),
        ("trained parameters (LoRA)", _encoder(_with_lora(make_tiny_llama())), base, "untrained-mean"),
        ("method name", _encoder(), base, "untrained-last"),
        ("method option", _encoder(), _method(preset="autoregembed"), "untrained-mean"),
        ("template", _encoder(template="this : {text}"), base, "untrained-mean"),
        ("query template", _encoder(query_template="query : {text}"), base, "untrained-mean"),
        ("document template", _encoder(document_template="passage : {text}"), base, "untrained-mean"),
        ("pooling", _encoder(pooling="last"), _method(UntrainedLast), "untrained-mean"),
        ("max length", _encoder(max_length=8), base, "untrained-mean"),
        ("dtype", _encoder(make_tiny_llama().to(torch.bfloat16)), base, "untrained-mean"),
        ("tokenizer", _encoder(tokenizer=bigger_vocab), base, "untrained-mean"),
        ("tokenizer setting", _encoder(tokenizer=no_cleanup), base, "untrained-mean"),
        ("non-persistent buffer", _encoder(rotary), base, "untrained-mean"),
        ("adapter layers disabled", _encoder(disabled), base, "untrained-mean"),
        ("LoRA scaling", _encoder(rescaled), base, "untrained-mean"),
        ("training mode (dropout)", _encoder(training), base, "untrained-mean"),
    ]


def test_each_part_of_the_key_changes_the_fingerprint_and_misses(tmp_path):
    base_encoder, base_method = _encoder(), _method()
    base = fingerprint(base_encoder, base_method, "untrained-mean")
    assert base == fingerprint(_encoder(), _method(), "untrained-mean")  # the same encoder, built again
    cache = EmbeddingCache.open(CacheSettings(folder=tmp_path), base, base_encoder.embed_dim)
    cache.save(None, TEXTS, base_encoder.encode(TEXTS))
    assert set(cache.lookup(None, TEXTS)) == set(TEXTS)
    seen = {base}
    for what, encoder, method, name in _variants():
        other = fingerprint(encoder, method, name)
        assert other is not None and other not in seen, what
        seen.add(other)
        assert EmbeddingCache(cache.store, other, encoder.embed_dim).lookup(None, TEXTS) == {}, what
    assert cache.lookup("query", TEXTS) == {} and cache.lookup("document", TEXTS) == {}  # the side
    assert cache.lookup(None, [TEXTS[0] + " "]) == {}  # the text


def test_the_encoding_code_version_is_part_of_the_key(monkeypatch):
    encoder, method = _encoder(), _method()
    before = fingerprint(encoder, method, "untrained-mean")
    monkeypatch.setattr(fingerprints, "ENCODING_VERSION", fingerprints.ENCODING_VERSION + 1)
    assert fingerprint(encoder, method, "untrained-mean") != before


def test_the_source_that_computes_the_vectors_is_part_of_the_key(tmp_path, monkeypatch):
    plugin = tmp_path / "cache_probe_plugin.py"
    source = (
        "from harness.encoder import PooledEncoder\n"
        "class Probe(PooledEncoder):\n"
        "    def embed_rows(self, rows):\n"
        "        return super().embed_rows(rows){}\n"
        "    def cache_tensors(self):\n"
        "        return super().cache_tensors()\n"
    )
    plugin.write_text(source.format(""))
    monkeypatch.syspath_prepend(str(tmp_path))
    import cache_probe_plugin

    encoder = cache_probe_plugin.Probe(make_tiny_llama(), make_tokenizer(), pooling="mean", settings=EncodeSettings())
    before = fingerprint(encoder, _method(), "untrained-mean")
    plugin.write_text(source.format(" * -1"))  # the same class name, another computation
    assert before is not None and fingerprint(encoder, _method(), "untrained-mean") != before


def test_a_forward_hook_switches_the_cache_off():
    encoder = _encoder()
    assert fingerprintable(encoder)
    handle = encoder.decoder.layers[0].register_forward_hook(lambda module, args, output: output)
    assert not fingerprintable(encoder)
    handle.remove()
    assert fingerprintable(encoder)


def test_the_attention_mode_is_part_of_the_key_and_its_hook_keeps_the_cache_on():
    from harness.model.attention import set_attention

    encoder, method = _encoder(), _method()
    causal = fingerprint(encoder, method, "untrained-mean")
    set_attention(encoder.model, "bidirectional")
    assert fingerprintable(encoder)
    assert fingerprint(encoder, method, "untrained-mean") not in (None, causal)
    set_attention(encoder.model, "causal")
    assert fingerprint(encoder, method, "untrained-mean") == causal


def test_an_encoder_that_does_not_name_its_tensors_is_never_cached():
    class Projected(PooledEncoder):  # changes the computation, names no tensors of its own
        def embed_rows(self, rows):
            return super().embed_rows(rows) * 2

    class Named(Projected):
        def cache_tensors(self):
            return super().cache_tensors()

    model, tokenizer, settings = make_tiny_llama(), make_tokenizer(), EncodeSettings()
    assert fingerprintable(PooledEncoder(model, tokenizer, pooling="mean", settings=settings))
    assert not fingerprintable(Projected(model, tokenizer, pooling="mean", settings=settings))
    assert not fingerprintable(
        Named(model, tokenizer, pooling="mean", settings=settings)
    )  # embed_rows is still Projected's
    assert (
        fingerprint(Projected(model, tokenizer, pooling="mean", settings=settings), _method(), "untrained-mean")
        is None
    )


# -- damage ----------------------------------------------------------------------------------------
def test_sealed_values_reject_truncation_bit_flips_and_other_keys():
    key, other = entry_key("f", None, "a"), entry_key("f", None, "b")
    vector = np.arange(8, dtype=np.float32) / 7
    value = seal(key, vector)
    np.testing.assert_array_equal(unseal(key, value, 8), vector)
    flipped = bytearray(value)
    flipped[3] ^= 0x01
    for bad in (value[:-1], value[: 4 * 8], bytes(flipped), value + b"\x00", b"", "text"):
        assert unseal(key, bad, 8) is None
    assert unseal(other, value, 8) is None  # an entry copied under another text's key
    assert unseal(key, value, 7) is None


def test_a_pickled_entry_is_never_unpickled(tmp_path):
    import diskcache

    key = entry_key("f" * 64, None, "a")
    plain = diskcache.Cache(str(tmp_path))
    plain.set(key, {"would": "unpickle"})  # diskcache pickles what is not bytes
    plain.close()
    cache = EmbeddingCache.open(CacheSettings(folder=tmp_path), "f" * 64, 4)
    assert cache.lookup(None, ["a"]) == {} and cache.corrupt == 1 and cache.usable


def test_a_damaged_entry_is_recomputed_never_returned(tmp_path, tiny_llama_dir, small_sts_file, own_embedding_cache):
    db = tmp_path / "h.db"
    _run(tiny_llama_dir, small_sts_file, db)
    import diskcache

    store = diskcache.Cache(str(own_embedding_cache))
    keys = [
        key for key in store.iterkeys() if not store.get(key).startswith(b"{")
    ]  # the vectors; the load key's record aside
    assert len(keys) == len(_distinct_texts(small_sts_file))
    store.set(keys[0], store.get(keys[0])[:-7])  # truncated
    damaged = bytearray(store.get(keys[1]))
    damaged[0] ^= 0xFF
    store.set(keys[1], bytes(damaged))  # one bit pattern changed
    store.set(keys[2], store.get(keys[3]))  # another text's vector
    store.close()
    _run(tiny_llama_dir, small_sts_file, db)
    first_items, _, first_score = _evaluation(db, 1)
    items, details, score = _evaluation(db, 2)
    assert (items, details["cache_hits"]) == (3, first_items - 3)
    assert score == pytest.approx(first_score, abs=1e-6)
    _run(tiny_llama_dir, small_sts_file, db)  # the three were written again, whole
    assert _evaluation(db, 3)[:2][0] == 0


def test_a_cache_that_cannot_be_read_is_switched_off_and_the_run_goes_on(
    tmp_path, tiny_llama_dir, small_sts_file, own_embedding_cache
):
    (own_embedding_cache / "cache.db").write_bytes(b"this is not a SQLite database" * 100)
    db = tmp_path / "h.db"
    result = _run(tiny_llama_dir, small_sts_file, db)
    items, details, _ = _evaluation(db, 1)
    assert details["cache"].startswith("off (the embedding cache in ") and "cannot be opened" in details["cache"]
    assert items == len(_distinct_texts(small_sts_file))
    assert "warning: embedding cache off" in " ".join(result.output.split())


def _fill(folder, fingerprint_hex, start, barrier):
    cache = EmbeddingCache.open(CacheSettings(folder=folder), fingerprint_hex, 16)
    barrier.wait()
    for round_ in range(20):
        texts = [f"text {i}" for i in range(start + round_ * 10, start + round_ * 10 + 50)]
        cache.save(None, texts, np.stack([np.full(16, float(t.split()[1]), dtype=np.float32) for t in texts]))
    cache.close()


def test_two_processes_filling_one_cache_at_once_corrupt_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_fill, args=(tmp_path, "f" * 64, start, barrier)) for start in (0, 25)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    cache = EmbeddingCache.open(CacheSettings(folder=tmp_path), "f" * 64, 16)
    texts = [f"text {i}" for i in range(25 + 19 * 10 + 50)]
    found = cache.lookup(None, texts)
    assert set(found) == set(texts) and cache.corrupt == 0
    for text, vector in found.items():
        np.testing.assert_array_equal(vector, np.full(16, float(text.split()[1]), dtype=np.float32))


def test_the_size_cap_evicts_the_oldest_entries(tmp_path):
    cap = 2**20  # 1 MiB; 2,000 vectors of 2 KiB are written
    cache = EmbeddingCache.open(CacheSettings(folder=tmp_path, limit_gb=cap / 2**30), "f" * 64, 512)
    for start in range(0, 2000, 50):
        texts = [f"t{i}" for i in range(start, start + 50)]
        cache.save(None, texts, np.ones((50, 512), dtype=np.float32))
    kept = cache.lookup(None, [f"t{i}" for i in range(2000)])
    assert 0 < len(kept) < 2000 and "t1999" in kept and "t0" not in kept
    assert min(int(text[1:]) for text in kept) == 2000 - len(kept)  # the newest are the ones kept
    assert cache.store.volume() <= cap


def test_the_pooled_span_is_part_of_the_key():
    method = _method()
    keys = {
        fingerprint(_encoder(template=template, document_template=document), method, "untrained-mean")
        for template, document in [
            ("{text} again {text}", None),
            ("{text} again {pool}{text}{/pool}", None),
            ("{pool}{text}{/pool} again {text}", None),
            ("{text} again {pool}{text}{/pool}", "{pool}{text}{/pool}"),
        ]
    }
    assert None not in keys and len(keys) == 4
