"""Attention as part of the method contract: causal (the backbone as trained) or bidirectional.

One mechanism serves every pass: :func:`set_attention` puts a forward pre-hook on the model's
transformer body (``model.get_decoder()``) that replaces whatever mask a caller passes (a padding
mask, packed rows' position ids, or none) with a 4D mask of its own, in which every real token
sees every real token of its own row and nothing else. transformers returns a 4D mask as it is
(``masking_utils``), so the model's own causal mask is never built; the training forward (padded
and packed), the encoders, data-parallel encoding, exports and anything a plug-in calls on the
body all run through the hook. Causal is the body untouched.

Sliding windows (Mistral, Gemma 3) are not applied under bidirectional attention: every layer
attends to the whole row. :func:`harness.model.attention_check.check_attention` verifies on the
loaded model that the mode took effect, padded and packed, since how transformers builds masks
changes between versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from harness.errors import HarnessError

if TYPE_CHECKING:
    import torch

Attention = Literal["causal", "bidirectional"]
CAUSAL: Attention = "causal"
BIDIRECTIONAL: Attention = "bidirectional"
MODES: tuple[Attention, ...] = (CAUSAL, BIDIRECTIONAL)
_HANDLE = "_harness_attention_hook"  # the hook's handle, on the transformer body
_MASKED = ("sdpa", "eager")  # attention implementations that read a 4D mask as given


def body(model: Any) -> Any:
    """The transformer body the hook sits on (``model`` itself when it is the body)."""
    get = getattr(model, "get_decoder", None)
    return get() if callable(get) else model


def attention_mode(model: Any) -> Attention:
    """The mode ``model`` (or its body) runs in."""
    return BIDIRECTIONAL if getattr(body(model), _HANDLE, None) is not None else CAUSAL


def is_attention_hook(hook: Any) -> bool:
    """Whether a forward pre-hook is this module's (the embedding cache's fingerprint knows it)."""
    return getattr(hook, "__func__", hook) is _bidirectional_hook


def set_attention(model: Any, mode: Attention) -> None:
    """Run ``model``'s body in ``mode`` from now on (idempotent; causal removes the hook)."""
    if mode not in MODES:
        raise HarnessError(f"attention {mode!r} must be one of {', '.join(MODES)}.")
    stack = body(model)
    handle = getattr(stack, _HANDLE, None)
    if handle is not None:
        handle.remove()
        setattr(stack, _HANDLE, None)
    if mode == BIDIRECTIONAL:
        implementation = getattr(stack.config, "_attn_implementation", None)
        if implementation not in _MASKED:
            raise HarnessError(
                f"bidirectional attention needs the sdpa or eager attention implementation, not {implementation!r}: "
                "it passes its own 4D mask, which other kernels do not read."
            )
        setattr(stack, _HANDLE, stack.register_forward_pre_hook(_bidirectional_hook, with_kwargs=True))


def _bidirectional_hook(
    module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Replace the call's mask with the bidirectional 4D mask of its rows."""
    inputs = kwargs.get("inputs_embeds")
    if inputs is None:
        inputs = kwargs.get("input_ids", args[0] if args else None)
    if inputs is None or kwargs.get("past_key_values") is not None:
        raise HarnessError(
            "bidirectional attention: the body was called without inputs or with a cache (generation is causal)."
        )
    batch, length = inputs.shape[:2]
    dtype = inputs.dtype if inputs.is_floating_point() else module.get_input_embeddings().weight.dtype
    kwargs["attention_mask"] = bidirectional_mask(
        kwargs.get("attention_mask"),
        kwargs.get("position_ids"),
        batch,
        length,
        inputs.device,
        dtype,
        module.config._attn_implementation,
    )
    return args, kwargs


def bidirectional_mask(
    padding: torch.Tensor | None,
    positions: torch.Tensor | None,
    batch: int,
    length: int,
    device: torch.device,
    dtype: torch.dtype,
    implementation: str,
) -> torch.Tensor:
    """[batch, 1, length, length]: query i sees key j when both are real tokens of one row.

    Rows are told apart by ``padding`` (a 2D 0/1 mask: padded rows) or, without one, by position
    ids that restart at 0 (packed rows in one sequence). A padding query sees only itself, so its
    state stays finite and never reaches a real token. SDPA reads a boolean mask, eager attention
    an additive one.
    """
    import torch

    if padding is not None and padding.ndim == 4:
        raise HarnessError("bidirectional attention: a caller passed its own 4D mask; pass a padding mask or none.")
    if padding is not None:
        real = padding.to(device=device, dtype=torch.bool)
        segment = torch.zeros((batch, length), dtype=torch.long, device=device)
    else:
        real = torch.ones((batch, length), dtype=torch.bool, device=device)
        starts = (
            (positions == 0)
            if positions is not None
            else torch.zeros((batch, length), dtype=torch.bool, device=device)
        )
        segment = starts.to(device=device).expand(batch, length).long().cumsum(dim=1)
    allowed = (segment.unsqueeze(2) == segment.unsqueeze(1)) & real.unsqueeze(1) & real.unsqueeze(2)
    allowed |= torch.eye(length, dtype=torch.bool, device=device).unsqueeze(0)
    allowed = allowed.unsqueeze(1)
    if implementation == "eager":
        return torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, torch.finfo(dtype).min)
    return allowed
