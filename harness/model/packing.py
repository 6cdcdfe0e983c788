"""One transformer pass over rows of different lengths, padded or packed, and what follows it:
pooling per row (over each row's span), the LM head at chosen positions, and the model FLOPs it
reports. :func:`embed_rows` is the one embedding path of pooling methods: their training stages
and their evaluation encoder both call it.

Rows travel flat: ``embeds`` is [N, d], the rows' real tokens one after another, ``lengths`` says
where each row ends, and the result is the last-layer states in the same flat layout, so the
callers (training losses) never see padding and score real positions only.

Padded (the default, ``method_args.pack=false``): the rows right-padded to the longest, as a batch
with an attention mask. Packed: one sequence of N tokens whose position ids restart at 0 for every
row, with no attention mask; transformers (>= 4.54) turns such position ids into a block-diagonal
causal mask for SDPA and eager attention, and FlashAttention-2 reads them as variable-length rows.
There must be no 2D attention mask and no cache, or the rows would attend to each other. With
SDPA on a CPU the masked attention costs N^2, which outweighs the padding saved on the small
batches measured here (docs/performance.md), hence padded by default.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.model.attention import CAUSAL, attention_mode
from harness.telemetry import flops

if TYPE_CHECKING:
    import torch


class TokenRow(list):
    """The token ids of one templated text, and ``span``: the [start, end) its vector pools over."""

    def __init__(self, ids: Sequence[int], span: tuple[int, int] | None = None) -> None:
        super().__init__(ids)
        self.span = span if span is not None else (0, len(self))


def span_of(row: Sequence[int]) -> tuple[int, int]:
    """A row's pooled span: its own, or the whole row; an empty span pools the whole row."""
    start, end = getattr(row, "span", (0, len(row)))
    return (start, end) if end > start else (0, len(row))


def offsets(lengths: Sequence[int]) -> list[int]:
    """Where each row starts in the flat layout."""
    starts, total = [], 0
    for n in lengths:
        starts.append(total)
        total += n
    return starts


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count real tokens only, so a left-padded row gets the same positions as a
    right-padded one (Llama's default is 0..L-1 whatever the mask)."""
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def row_index(lengths: Sequence[int], device: Any) -> torch.Tensor:
    """For each flat token, the row it belongs to."""
    import torch

    return torch.repeat_interleave(
        torch.arange(len(lengths), device=device), torch.tensor(list(lengths), device=device)
    )


def row_sums(values: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
    """Sum of a flat [N, ...] tensor over each row's tokens: [B, ...]."""
    import torch

    out = torch.zeros((len(lengths),) + tuple(values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add(0, row_index(lengths, values.device), values)


def forward_rows(stack: Any, embeds: torch.Tensor, lengths: Sequence[int], *, pack: bool) -> torch.Tensor:
    """Last-layer states [N, d] of the transformer body ``stack`` (``model.get_decoder()``) over
    flat input embeddings [N, d] cut into rows of ``lengths``."""
    import torch

    if flops.metering():
        causal = attention_mode(stack) == CAUSAL
        flops.add(
            flops.transformer_flops(flops.Shape.of(stack.config), lengths, pass_kind(stack, embeds), causal=causal)
        )
    if pack:
        positions = torch.cat([torch.arange(n, device=embeds.device) for n in lengths]).unsqueeze(0)
        return stack(inputs_embeds=embeds.unsqueeze(0), position_ids=positions, use_cache=False).last_hidden_state[0]
    width = max(lengths)
    mask = torch.arange(width, device=embeds.device).unsqueeze(0) < torch.tensor(
        list(lengths), device=embeds.device
    ).unsqueeze(1)
    padded = embeds.new_zeros((len(lengths), width, embeds.shape[-1])).index_put((mask,), embeds)
    attention = mask.long()
    hidden = stack(
        inputs_embeds=padded, attention_mask=attention, position_ids=position_ids(attention), use_cache=False
    ).last_hidden_state
    return hidden[mask]


_STRUCTURE: weakref.WeakKeyDictionary[Any, tuple[list[Any], list[Any]]] = weakref.WeakKeyDictionary()


def _structure(stack: Any) -> tuple[list[Any], list[Any]]:
    """(LoRA layers, base parameters) of ``stack``, found once: walking every module on every
    pass cost ~10 ms on SmolLM2."""
    found = _STRUCTURE.get(stack)
    if found is None:
        lora = [m for m in stack.modules() if hasattr(m, "lora_A")]
        base = [p for name, p in stack.named_parameters() if "lora_" not in name]
        found = _STRUCTURE[stack] = (lora, base)
    return found


def pass_kind(stack: Any, embeds: torch.Tensor) -> flops.Pass:
    """How this pass runs: its active LoRA adapters, and whether backward goes through it and
    trains its base weights."""
    import torch

    layers, base = _structure(stack)
    lora = sum(
        module.r[name] * (module.in_features + module.out_features)
        for module in layers
        if not module.disable_adapters and not module.merged
        for name in module.active_adapters
        if name in module.lora_A
    )
    if not torch.is_grad_enabled():
        return flops.Pass(inputs=False, lora=lora)
    weights = any(p.requires_grad for p in base)
    return flops.Pass(inputs=bool(embeds.requires_grad or weights or lora), weights=weights, lora=lora)


def lm_head(model: Any, states: torch.Tensor) -> torch.Tensor:
    """Logits of ``model``'s LM head at flat states [M, d] (only the positions that are scored)."""
    import torch

    head = model.get_output_embeddings()
    if flops.metering():
        grad = torch.is_grad_enabled()
        shape = flops.Shape.of(model.get_decoder().config)
        flops.add(
            flops.head_flops(
                shape,
                states.shape[0],
                inputs=grad and states.requires_grad,
                weights=grad and head.weight.requires_grad,
            )
        )
    return head(states)


def pool_rows(
    hidden: torch.Tensor, lengths: Sequence[int], pooling: str, spans: Sequence[tuple[int, int]] | None = None
) -> torch.Tensor:
    """Per-row mean of flat states [N, d] over each row's span [start, end) (default: the whole
    row), or the span's last state: [B, d]."""
    import torch

    spans = spans if spans is not None else [(0, n) for n in lengths]
    starts = offsets(lengths)
    if pooling == "last":
        ends = torch.tensor([o + end - 1 for o, (_, end) in zip(starts, spans)], device=hidden.device)
        return hidden[ends]
    inside = torch.zeros(hidden.shape[0], dtype=hidden.dtype, device=hidden.device)
    for o, (start, end) in zip(starts, spans):
        inside[o + start : o + end] = 1
    counts = torch.tensor([end - start for start, end in spans], dtype=hidden.dtype, device=hidden.device).unsqueeze(1)
    return row_sums(hidden * inside.unsqueeze(1), lengths) / counts


#: the attribute of a base model under which a method registers a module that every token's last
#: state passes through before pooling (NV-Embed's latent-attention layer): in training and
#: encoding alike, since both embed through :func:`embed_rows`
TOKEN_HEAD = "harness_token_head"


def token_head(model: Any) -> Any:
    """The module registered under :data:`TOKEN_HEAD` on ``model`` (or its PEFT base), or None."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, TOKEN_HEAD, None)


def embed_rows(model: Any, rows: Sequence[Sequence[int]], pooling: str, *, pack: bool = False) -> torch.Tensor:
    """Pooled last-layer states [B, d] of token rows (:class:`harness.encoder.TokenRow`: each
    pooled over its span), through the model's token head where it has one: the embedding of
    training stages and evaluation encoders alike."""
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor([token for row in rows for token in row], dtype=torch.long, device=device)
    lengths = [len(row) for row in rows]
    hidden = forward_rows(model.get_decoder(), model.get_input_embeddings()(ids), lengths, pack=pack)
    head = token_head(model)
    if head is not None:
        hidden = head(hidden)
    return pool_rows(hidden, lengths, pooling, [span_of(row) for row in rows])
