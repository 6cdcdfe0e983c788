"""The house dropout options: they act in training mode only, for the stage's length only."""

from __future__ import annotations

import torch

from harness.model.packing import forward_rows
from harness.training.dropout import training_dropout
from tests.families import FAMILIES


def _states(model):
    ids = torch.tensor([3, 4, 5, 6, 7, 8])
    with torch.no_grad():
        return forward_rows(model.get_decoder(), model.get_input_embeddings()(ids), [6], pack=False)


def test_attention_and_hidden_dropout_act_while_training_and_go_after():
    model = FAMILIES["llama"].model()
    plain = _states(model)
    attention_modules = [m for m in model.modules() if hasattr(m, "attention_dropout") and hasattr(m, "o_proj")]
    for attention, hidden in ((0.3, 0.0), (0.0, 0.3)):
        with training_dropout(model, attention, hidden):
            assert all(m.attention_dropout == attention for m in attention_modules) or attention == 0
            torch.testing.assert_close(_states(model), plain)  # eval mode: no dropout
            model.train()
            first, second = _states(model), _states(model)
            model.eval()
        assert (first - second).abs().max() > 1e-3  # two views of one text
        assert all(m.attention_dropout == 0.0 for m in attention_modules)
        assert not any(m._forward_hooks for m in model.modules())
        model.train()
        torch.testing.assert_close(_states(model), plain)  # gone after the stage, in training mode too
        model.eval()
