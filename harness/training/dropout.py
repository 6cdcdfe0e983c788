"""The house dropout options: attention dropout and hidden dropout while a stage trains.

Decoder LLMs ship with dropout 0 (Llama, Mistral, Qwen, Gemma). SimCSE's two views of one text
come from dropout alone (Gao et al. 2021). ``dropout`` sets every attention module's dropout on its
attention weights, as LLM2Vec's SimCSE stage does (0.3); ``hidden_dropout`` also drops the output
of every attention and MLP sublayer before it joins the residual stream (BERT's hidden dropout,
which SimCSE's encoders had). Both hold for the stage's length only and act in training mode only;
evaluation never sees them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _sublayers(model: Any) -> list[Any]:
    """The attention and MLP sublayers of ``model``'s transformer blocks."""
    layers = getattr(model.get_decoder(), "layers", None) or []
    return [
        part
        for block in layers
        for part in (getattr(block, "self_attn", None), getattr(block, "mlp", None))
        if part is not None
    ]


@contextlib.contextmanager
def training_dropout(model: Any, attention: float, hidden: float = 0.0) -> Iterator[None]:
    """Attention dropout ``attention`` and sublayer-output dropout ``hidden`` inside the block."""
    import torch.nn.functional as F

    attentions = (
        [m for m in model.modules() if hasattr(m, "attention_dropout") and hasattr(m, "o_proj")]
        if attention > 0
        else []
    )
    before = [m.attention_dropout for m in attentions]

    def drop(module: Any, args: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (F.dropout(output[0], hidden, training=module.training), *output[1:])
        return F.dropout(output, hidden, training=module.training)

    handles = [part.register_forward_hook(drop) for part in _sublayers(model)] if hidden > 0 else []
    for module in attentions:
        module.attention_dropout = attention
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module, value in zip(attentions, before):
            module.attention_dropout = value
