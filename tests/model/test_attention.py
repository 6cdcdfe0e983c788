"""Attention modes on every family of the tiny-model matrix: the guard, padded and packed rows,
an independent bidirectional reference, and a cut mechanism that the guard must catch."""

from __future__ import annotations

import pytest
import torch

from harness.errors import HarnessError
from harness.model import attention
from harness.model.attention import attention_mode, set_attention
from harness.model.attention_check import check_attention
from harness.model.packing import forward_rows
from tests.families import FAMILIES

ROWS = [[3, 4, 5, 6], [7, 8], [9, 10, 11]]  # at most 4 tokens: inside every family's sliding window


def _flat(model, rows, *, pack):
    ids = torch.tensor([t for row in rows for t in row])
    with torch.no_grad():
        return forward_rows(model.get_decoder(), model.get_input_embeddings()(ids), [len(r) for r in rows], pack=pack)


def _full_attention_reference(model, row):
    """One unpadded row with every attention module's own ``is_causal`` off and no mask: SDPA
    then attends to the whole row (transformers' route, not the harness's hook)."""
    modules = [
        m
        for m in model.modules()
        if hasattr(m, "is_causal") and hasattr(m, "q_proj" if hasattr(m, "q_proj") else "qkv_proj")
    ]
    assert modules
    for module in modules:
        module.is_causal = False
    try:
        with torch.no_grad():
            return model.get_decoder()(input_ids=torch.tensor([row])).last_hidden_state[0]
    finally:
        for module in modules:
            module.is_causal = True


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_bidirectional_rows_equal_full_attention_padded_and_packed(family):
    model = FAMILIES[family].model()
    causal = _flat(model, ROWS, pack=False)
    set_attention(model, "bidirectional")
    check_attention(model, family)
    assert attention_mode(model) == "bidirectional"
    reference = torch.cat([_full_attention_reference(model, row) for row in ROWS])
    for pack in (False, True):
        torch.testing.assert_close(_flat(model, ROWS, pack=pack), reference, atol=1e-5, rtol=0)
    assert (causal[:3] - reference[:3]).abs().max() > 1e-3  # the first row's early tokens changed
    set_attention(model, "causal")
    check_attention(model, family)
    torch.testing.assert_close(_flat(model, ROWS, pack=True), causal, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_guard_fails_when_the_mechanism_is_cut(family, monkeypatch):
    model = FAMILIES[family].model()
    monkeypatch.setattr(
        attention, "bidirectional_mask", lambda padding, *rest: padding
    )  # the hook passes masks through
    set_attention(model, "bidirectional")
    with pytest.raises(HarnessError, match=r"set to run bidirectional, but padded: .*packed: .*transformers \d"):
        check_attention(model, family)


def test_the_guard_fails_when_rows_see_each_other(monkeypatch):
    model = FAMILIES["llama"].model()

    def one_segment(padding, positions, batch, length, device, dtype, implementation):
        return torch.ones((batch, 1, length, length), dtype=torch.bool, device=device)

    monkeypatch.setattr(attention, "bidirectional_mask", one_segment)
    set_attention(model, "bidirectional")
    with pytest.raises(HarnessError, match="a row saw another row or padding"):
        check_attention(model, "llama")


def test_the_guard_fails_when_padding_leaks(monkeypatch):
    model = FAMILIES["qwen2"].model()
    original = attention.bidirectional_mask

    def pads_are_real(padding, *rest):
        return original(None if padding is None else torch.ones_like(padding), *rest)

    monkeypatch.setattr(attention, "bidirectional_mask", pads_are_real)
    set_attention(model, "bidirectional")
    with pytest.raises(HarnessError, match="padded: a row saw another row or padding"):
        check_attention(model, "qwen2")


def test_the_guard_fails_when_causal_attention_is_not_causal():
    model = FAMILIES["llama"].model()
    model.config.is_causal = False  # transformers then builds bidirectional masks itself
    with pytest.raises(HarnessError, match="set to run causal, but .*the first token saw a later one"):
        check_attention(model, "llama")


def test_a_kernel_that_ignores_4d_masks_is_refused():
    model = FAMILIES["llama"].model()
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(HarnessError, match="sdpa or eager"):
        set_attention(model, "bidirectional")


def test_eager_attention_reads_the_additive_mask():
    from transformers import AutoModelForCausalLM

    family = FAMILIES["llama"]
    sdpa = family.model()
    eager = AutoModelForCausalLM.from_config(sdpa.config, attn_implementation="eager", dtype=torch.float32).eval()
    eager.load_state_dict(sdpa.state_dict())
    for model in (sdpa, eager):
        set_attention(model, "bidirectional")
        check_attention(model, "llama")
    torch.testing.assert_close(_flat(eager, ROWS, pack=False), _flat(sdpa, ROWS, pack=False), atol=1e-5, rtol=0)
