"""The house ``dropout`` option: attention and hidden-state dropout while a stage trains.

Decoder LLMs ship with dropout 0 (Llama, Mistral, Qwen, Gemma). SimCSE's two views of one text
come from dropout alone (Gao et al. 2021; LLM2Vec's SimCSE stage uses 0.3 on attention), so a stage
that needs it sets ``dropout`` and, for the stage's length only, every attention module drops
attention weights with that probability and every transformer block's output hidden states are
dropped too. Both act in training mode only; evaluation never sees them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _blocks(model: Any) -> list[Any]:
    """The transformer blocks of ``model``'s body (its ``layers`` list)."""
    layers = getattr(model.get_decoder(), "layers", None)
    return list(layers) if layers is not None else []


@contextlib.contextmanager
def training_dropout(model: Any, p: float) -> Iterator[None]:
    """Attention and hidden-state dropout of probability ``p`` inside the block (none when 0)."""
    import torch.nn.functional as F

    if p <= 0:
        yield
        return
    attentions = [m for m in model.modules() if hasattr(m, "attention_dropout") and hasattr(m, "o_proj")]
    before = [m.attention_dropout for m in attentions]

    def drop(module: Any, args: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = F.dropout(hidden, p, training=module.training)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handles = [block.register_forward_hook(drop) for block in _blocks(model)]
    for module in attentions:
        module.attention_dropout = p
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module, value in zip(attentions, before):
            module.attention_dropout = value
