"""Packed training passes against padded ones, and the model-FLOP count against hand sums and
torch's own FLOP counter, on the tiny Llama."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.model.packing import forward_rows, pool_rows, row_sums
from harness.telemetry import flops
from methods.autoregembed import CDAStage, ICExample, ICStage
from tests.methods.test_autoregembed import TRIPLES, _method
from tests.training_fixtures import TRIPLETS, lora_model, stage_for

# the tiny Llama: d 32, 4 heads x 8 (q 32), 2 key/value heads (kv 16), MLP 64, vocab 64, 2 layers
PROJECTIONS = 32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 64  # 9,216 weights per layer


def test_packed_rows_equal_padded_rows_and_each_row_alone():
    model, _ = lora_model()
    stack = model.get_decoder()
    lengths = [3, 7, 1, 5]
    embeds = torch.randn(sum(lengths), 32)
    with torch.no_grad():
        packed = forward_rows(stack, embeds, lengths, pack=True)
        padded = forward_rows(stack, embeds, lengths, pack=False)
        alone = torch.cat([forward_rows(stack, row, [len(row)], pack=False) for row in embeds.split(lengths)])
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)


def test_row_pooling_by_hand():
    hidden = torch.arange(12, dtype=torch.float32).view(6, 2)  # rows of 2 and 4 tokens
    assert pool_rows(hidden, [2, 4], "last").tolist() == [[2, 3], [10, 11]]
    assert pool_rows(hidden, [2, 4], "mean").tolist() == [[1, 2], [7, 8]]
    assert row_sums(torch.tensor([1.0, 2, 3, 4, 5, 6]), [2, 4]).tolist() == [3, 18]


def _loss_and_grads(model, tok, stage, batch, config):
    loss, tokens = stage.loss(model, tok, batch, config)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return float(loss.detach()), tokens, grads


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_infonce_step_packed_equals_padded(pooling):
    model, tok = lora_model()
    results = []
    for pack in (True, False):
        stage, config = stage_for(in_batch=True, batch_size=4, pooling=pooling, pack=pack)
        results.append(_loss_and_grads(model, tok, stage, TRIPLETS[:4], config))
    (packed, tokens, grads), (padded, padded_tokens, padded_grads) = results
    assert packed == pytest.approx(padded, abs=1e-5) and tokens == padded_tokens
    assert grads.keys() == padded_grads.keys() and len(grads) > 0
    for name, grad in grads.items():
        torch.testing.assert_close(grad, padded_grads[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("stage_name", ["ic", "cda"])
def test_autoregembed_steps_packed_equal_padded(stage_name):
    method, backbone, _ = _method()
    model, tok = backbone.model, backbone.tokenizer
    results = []
    for pack in (True, False):
        config = dataclasses.replace(method.config, pack=pack)
        if stage_name == "ic":
            stage, batch = ICStage(method), [ICExample(e.query, "", e.query) for e in TRIPLES]
        else:
            stage = CDAStage(method)
            batch = stage.begin(model, tok, TRIPLES, config)
        results.append(_loss_and_grads(model, tok, stage, batch, config))
    (packed, tokens, grads), (padded, padded_tokens, padded_grads) = results
    assert packed == pytest.approx(padded, abs=1e-5) and tokens == padded_tokens
    assert "base_model.model.autoregembed_slots" in grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, padded_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_flop_count_by_hand():
    shape = flops.Shape(layers=2, hidden=32, q_dim=32, kv_dim=16, ffn=64, vocab=64)
    assert shape.projection_weights == PROJECTIONS
    # rows of 3 and 5 tokens: 8 tokens, 6 + 15 = 21 causal pairs
    forward = 2 * (2 * 8 * PROJECTIONS + 4 * 21 * 32)
    assert flops.transformer_flops(shape, [3, 5], flops.Pass(inputs=False)) == forward
    frozen_through = 2 * (2 * 8 * PROJECTIONS * 2 + 4 * 21 * 32 * 3)  # input gradients only
    assert flops.transformer_flops(shape, [3, 5], flops.Pass(inputs=True)) == frozen_through
    trained = 2 * (2 * 8 * PROJECTIONS * 3 + 4 * 21 * 32 * 3)
    assert flops.transformer_flops(shape, [3, 5], flops.Pass(inputs=True, weights=True)) == trained
    lora = 4 * (32 + 16)  # say one adapter of rank 4 on a 32 -> 16 projection
    with_lora = frozen_through + 3 * 2 * 8 * lora
    assert flops.transformer_flops(shape, [3, 5], flops.Pass(inputs=True, lora=lora)) == with_lora
    assert flops.head_flops(shape, 10, inputs=True, weights=False) == 2 * (2 * 10 * 32 * 64)


def test_flop_count_matches_torchs_counter_on_a_forward_pass():
    """torch counts the matrix products that ran; it has no formula for the CPU attention kernel,
    so it sees the projections and adapters only, which must agree exactly."""
    model, _ = lora_model()
    stack = model.get_decoder()
    length = 6
    embeds = torch.randn(length, 32)
    with torch.no_grad(), flops.meter() as counted, FlopCounterMode(display=False) as counter:
        forward_rows(stack, embeds, [length], pack=True)
    lora = sum(m.r["default"] * (m.in_features + m.out_features) for m in stack.modules() if hasattr(m, "lora_A"))
    assert lora == 2 * 4 * ((32 + 32) + 2 * (32 + 16) + (32 + 32) + 3 * (32 + 64))  # layers x r x (q, k v, o, MLP)
    attention = 2 * 4 * length * (length + 1) // 2 * 32
    assert counted[0] == 2 * length * (2 * PROJECTIONS) + 2 * length * lora + attention
    assert counter.get_total_flops() == counted[0] - attention


def test_the_meter_counts_a_lora_training_step_with_its_backward():
    model, tok = lora_model()
    stage, config = stage_for(in_batch=True, batch_size=2, pack=True)
    with flops.meter() as counted:
        loss, tokens = stage.loss(model, tok, TRIPLETS[:2], config)
    lengths = [len(r) for r in _rows(tok, config, TRIPLETS[:2])]
    lora = sum(
        m.r["default"] * (m.in_features + m.out_features)
        for m in model.get_decoder().modules()
        if hasattr(m, "lora_A")
    )
    shape = flops.Shape.of(model.config)
    assert tokens == sum(lengths)
    assert counted[0] == flops.transformer_flops(shape, lengths, flops.Pass(inputs=True, lora=lora))
    with flops.meter() as none, torch.no_grad():
        stage.loss(model, tok, TRIPLETS[:2], config)
    assert none[0] == flops.transformer_flops(shape, lengths, flops.Pass(inputs=False, lora=lora))


def _rows(tok, config, triplets):
    from harness.encoder import PromptTokenizer

    prompt = PromptTokenizer(tok, config.template, config.max_length)
    return prompt([t.query for t in triplets] + [t.pos for t in triplets] + [t.neg for t in triplets])
