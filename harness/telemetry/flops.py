"""Model FLOPs of training passes, counted analytically, and a meter that sums them per stage.

A pass through a decoder-only transformer over rows of lengths L_i (N tokens in all) costs, per
layer, ``2 N (d q + 2 d kv + q d + 3 d f)`` for the projections and the gated MLP, and ``4 P q``
for attention scores and their weighted sum, with ``P = sum L_i (L_i + 1) / 2`` causal pairs, or
``P = sum L_i^2`` under bidirectional attention (padding and masked pairs are not model FLOPs). A LoRA adapter of rank r on a (d_in, d_out)
projection adds ``2 N r (d_in + d_out)``. The LM head at M positions costs ``2 M d V``.

Backward, per part: weights that train cost twice their forward (input and weight gradients);
frozen weights that gradients pass through cost once (input gradients only); attention costs
twice its forward. Activation recomputation (gradient checkpointing) is not counted: MFU is
model FLOPs over time, as in the PaLM paper's definition.

The meter is opt-in: :func:`harness.model.packing.forward_rows` and the LM-head helpers report to it
while a stage's training loop holds one open, and report nothing otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shape:
    """What the count needs of a Llama-style model."""

    layers: int
    hidden: int
    q_dim: int  # heads x head_dim
    kv_dim: int  # key/value heads x head_dim
    ffn: int
    vocab: int

    @classmethod
    def of(cls, config: Any) -> Shape:
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        return cls(
            layers=config.num_hidden_layers,
            hidden=config.hidden_size,
            q_dim=heads * head_dim,
            kv_dim=kv_heads * head_dim,
            ffn=config.intermediate_size,
            vocab=config.vocab_size,
        )

    @property
    def projection_weights(self) -> int:
        """Weights of one layer's projections and MLP (multiply-accumulates per token)."""
        d = self.hidden
        return d * self.q_dim + 2 * d * self.kv_dim + self.q_dim * d + 3 * d * self.ffn


@dataclass(frozen=True)
class Pass:
    """How one pass is differentiated: ``inputs`` whether gradients flow through it at all,
    ``weights`` whether the base weights train, ``lora`` the sum of r x (d_in + d_out) over every
    active adapter of the model (0 when none run)."""

    inputs: bool
    weights: bool = False
    lora: int = 0


def transformer_flops(shape: Shape, lengths: Sequence[int], how: Pass, *, causal: bool = True) -> float:
    """Forward + backward model FLOPs of one pass over rows of ``lengths`` real tokens."""
    tokens = sum(lengths)
    pairs = sum(n * (n + 1) // 2 if causal else n * n for n in lengths)
    projections = 2.0 * tokens * shape.projection_weights * shape.layers
    attention = 4.0 * pairs * shape.q_dim * shape.layers
    adapters = 2.0 * tokens * how.lora
    total = projections + attention + adapters
    if how.inputs:
        total += projections * (2 if how.weights else 1) + 2 * attention + 2 * adapters
    return total


def head_flops(shape: Shape, positions: int, *, inputs: bool, weights: bool) -> float:
    """Forward + backward FLOPs of the LM head at ``positions`` token positions."""
    forward = 2.0 * positions * shape.hidden * shape.vocab
    return forward * (1 + int(inputs) + int(weights))


_meter: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("harness_flops", default=None)


@contextlib.contextmanager
def meter() -> Iterator[list[float]]:
    """Sum the FLOPs reported inside the block into ``total[0]``."""
    total = [0.0]
    token = _meter.set(total)
    try:
        yield total
    finally:
        _meter.reset(token)


def add(flops: float) -> None:
    total = _meter.get()
    if total is not None:
        total[0] += flops


def metering() -> bool:
    return _meter.get() is not None
