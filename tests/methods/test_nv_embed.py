"""NV-Embed: the latent-attention layer against a plain-torch re-implementation, one embedding
path for training and encoding, and a trained run end to end (checkpoint, restore, export)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.encoder import EncodeSettings
from harness.errors import HarnessError
from harness.model.packing import TOKEN_HEAD
from harness.options import check_values
from methods.infonce import ContrastiveStage
from methods.nv_embed import NVEmbed, NVEmbedConfig, latent_attention
from tests.families import FAMILIES

SMALL_HEAD = {"latents": 6, "latent_heads": 2, "latent_head_dim": 8}


def _by_hand(layer, states):
    """The layer written out with explicit loops over heads: layer norms, softmax(q k^T / sqrt(e)) v,
    the residual, then x W1 split into values and gates, values * gelu(gates), W2, the residual."""

    def norm(x, ln):
        mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias

    e, heads = layer.head_dim, layer.heads
    q = norm(states, layer.norm) @ layer.to_q.weight.T
    kv = norm(layer.latents, layer.norm_latents) @ layer.to_kv.weight.T
    k, v = kv[:, : heads * e], kv[:, heads * e :]
    outs = []
    for head in range(heads):
        part = slice(head * e, (head + 1) * e)
        weights = torch.softmax(q[:, part] @ k[:, part].T / math.sqrt(e), dim=-1)
        outs.append(weights @ v[:, part])
    x = torch.cat(outs, dim=-1) @ layer.to_out.weight.T + states
    hidden = norm(x, layer.norm_ff) @ layer.ff_in.weight.T + layer.ff_in.bias
    values, gates = hidden[:, : 4 * layer.hidden], hidden[:, 4 * layer.hidden :]
    gelu = 0.5 * gates * (1 + torch.erf(gates / math.sqrt(2)))
    return (values * gelu) @ layer.ff_out.weight.T + layer.ff_out.bias + x


def test_the_latent_attention_layer_equals_a_plain_torch_reimplementation():
    torch.manual_seed(0)
    layer = latent_attention(hidden=16, latents=5, heads=4, head_dim=3)
    for module in (layer.norm, layer.norm_latents, layer.norm_ff):  # non-trivial affine parts
        torch.nn.init.normal_(module.weight)
        torch.nn.init.normal_(module.bias)
    states = torch.randn(7, 16)
    with torch.no_grad():
        got, expected = layer(states), _by_hand(layer, states)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert (got - states).abs().max() > 1e-2  # the layer does something


class _Backbone:
    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer


def test_training_and_encoding_embed_through_the_head_alike():
    from harness.model.attention_check import attend

    fam = FAMILIES["llama"]
    model, tokenizer = fam.model(), fam.tokenizer()
    method = NVEmbed(NVEmbedConfig(**SMALL_HEAD, max_length=32, template="query : {text}"))
    attend(model, "bidirectional", "tiny")
    method.prepare(_Backbone(model, tokenizer))
    texts = ["the cat sat on the mat", "dog", "the bird flew over the house"]
    encoder = method.build_encoder(_Backbone(model, tokenizer), EncodeSettings(max_length=32))
    stage = ContrastiveStage()
    with torch.no_grad():
        trained = stage.embed(model, stage.rows(tokenizer, texts, method.config), method.config).numpy()
        plain = torch.nn.functional.normalize(torch.tensor(encoder.encode(texts)), dim=-1).numpy()
    np.testing.assert_allclose(trained, plain, atol=1e-5)
    from harness.evaluation.fingerprint import fingerprint

    key = fingerprint(encoder, method, "nv-embed")
    with torch.no_grad():
        getattr(model, TOKEN_HEAD).latents[0, 0] += 1.0
    assert fingerprint(encoder, method, "nv-embed") != key  # the cache key reads the head's tensors
    with torch.no_grad():
        getattr(model, TOKEN_HEAD).latents[0, 0] -= 1.0
    delattr(model, TOKEN_HEAD)
    without = torch.nn.functional.normalize(torch.tensor(encoder.encode(texts)), dim=-1).numpy()
    assert np.abs(without - plain).max() > 1e-3  # the head is on the path


def test_options_are_checked():
    with pytest.raises(HarnessError, match="pooling='last'.*keep mean"):
        check_values(NVEmbedConfig(pooling="last"), "method 'nv-embed'", prefix="method_args.")
    with pytest.raises(HarnessError, match="latents=0 must be >= 1"):
        check_values(NVEmbedConfig(latents=0), "method 'nv-embed'", prefix="method_args.")


def test_a_trained_run_restores_and_exports_its_head(tmp_path, tiny_llama_dir, small_sts_file):
    from sentence_transformers import SentenceTransformer

    from harness.export.model import load_encoder
    from tests.export.test_model_export import TEXTS, _harness_vectors, _trained_run

    extra = [
        "--set",
        "method_args.steps=2",
        *(x for k, v in SMALL_HEAD.items() for x in ("--set", f"method_args.{k}={v}")),
    ]
    db = _trained_run(tmp_path, tiny_llama_dir, small_sts_file, "nv-embed", *extra)
    (state,) = (tmp_path / "runs").glob("run-1-*/checkpoints/*/trainable.pt")
    saved = torch.load(state, weights_only=False)
    names = [name for name in (saved.get("trainable", saved) if isinstance(saved, dict) else saved)]
    assert any(TOKEN_HEAD in name for name in names) and any("lora_" in name for name in names)
    expected = _harness_vectors(db)  # the run restored from its checkpoint: backbone, adapters and head
    out = tmp_path / "encoder"
    result = CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "harness-encoder.json").read_text())
    assert spec["kind"] == "latent-attention" and spec["attention"] == "bidirectional" and spec["latents"] == 6
    np.testing.assert_allclose(load_encoder(out).encode(TEXTS), expected, atol=1e-4, rtol=0)  # a merged LoRA rounds
    st = SentenceTransformer(str(out), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(st.encode(TEXTS), expected, atol=1e-4, rtol=0)
