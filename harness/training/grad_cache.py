"""GradCache (Gao et al., 2021): a contrastive loss over a large batch in the memory of a small one.

:func:`cached_embeddings` embeds a batch in chunks of ``mini_batch`` items without keeping any
activations, and returns the embeddings as one node of the autograd graph. The loss on top of them
(in-batch negatives, cross-rank gathers) is computed on the whole batch as usual; when it is
back-propagated, the node's backward re-runs each chunk with its graph (the random state, e.g.
dropout masks, replayed as the first pass drew it, under the same autocast) and sends the chunk's
slice of the embedding gradient into the parameters. The parameter gradients are those of the
plain loss: only one chunk's activations are alive at a time, for one more forward pass. The
FLOP meter counts the re-runs (forward and backward, as a plain pass), not the first pass: like
activation recomputation, it is not model FLOPs.

Because the second pass happens inside ``loss.backward()``, the training loop and its engines see
one ordinary loss; the engines that gather parameters in forward hooks (FSDP, DeepSpeed) are not
supported by this re-entrant pass and are refused by the method that uses it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from typing import Any

import torch

from harness.telemetry import flops


def cached_embeddings(
    embed: Callable[[Sequence[Any]], torch.Tensor], items: Sequence[Any], mini_batch: int, device: torch.device
) -> torch.Tensor:
    """``embed(items)`` computed ``mini_batch`` items at a time, with the gradient of the whole.

    ``embed`` maps a list of items to a (len, dim) tensor on ``device``; it must depend on nothing
    but its argument, the parameters and the random state, since it runs twice per item.
    """
    chunks = [items[start : start + mini_batch] for start in range(0, len(items), mini_batch)]
    anchor = torch.empty(0, requires_grad=torch.is_grad_enabled())  # makes the node part of the graph
    return _CachedEmbeddings.apply(embed, chunks, device, anchor)


class _RandomState:
    """The CPU generator's state and, on an accelerator, that device's."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.accelerator = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.accelerator is not None:
            torch.cuda.set_rng_state(self.accelerator, self.device)


class _CachedEmbeddings(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        embed: Callable[[Sequence[Any]], torch.Tensor],
        chunks: list[Sequence[Any]],
        device: torch.device,
        anchor: torch.Tensor,
    ) -> torch.Tensor:
        ctx.embed, ctx.chunks, ctx.device, ctx.states = embed, chunks, device, []
        ctx.autocast = (torch.is_autocast_enabled(device.type), torch.get_autocast_dtype(device.type))
        ctx.context = contextvars.copy_context()  # backward may run on autograd's device thread
        parts = []
        with flops.meter():  # not counted: the re-runs in backward are
            for chunk in chunks:  # autograd.Function.forward runs without a graph
                ctx.states.append(_RandomState(device))
                parts.append(embed(chunk))
        ctx.sizes = [part.shape[0] for part in parts]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, None, None]:  # type: ignore[override]
        ctx.context.run(_rerun, ctx, grad)
        return None, None, None, None


def _rerun(ctx: Any, grad: torch.Tensor) -> None:
    """Each chunk again, with its graph, back-propagated with its slice of ``grad``."""
    after_forward = _RandomState(ctx.device)  # training's random state goes on from here
    enabled, dtype = ctx.autocast
    try:
        for chunk, state, part in zip(ctx.chunks, ctx.states, grad.split(ctx.sizes)):
            state.restore()
            with torch.enable_grad(), torch.autocast(ctx.device.type, dtype=dtype, enabled=enabled):
                again = ctx.embed(chunk)
            torch.autograd.backward(again, part)
    finally:
        after_forward.restore()
