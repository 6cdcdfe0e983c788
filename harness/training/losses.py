"""Loss wrappers that compose with any loss computed from embeddings (a stage's
``loss_from_embeddings``), under GradCache and in-batch gathers alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

EmbeddingLoss = Callable[..., "torch.Tensor"]  # loss(side, side, ...) of L2-normalised (n, dim) sides (None allowed)


def matryoshka_loss(
    loss: EmbeddingLoss, sides: Sequence[torch.Tensor | None], dims: Sequence[int], weights: Sequence[float] = ()
) -> torch.Tensor:
    """Matryoshka representation learning (Kusupati et al. 2022, arXiv 2205.13147), as
    sentence-transformers' ``MatryoshkaLoss``: ``sum_k weights[k] * loss(sides cut to dims[k])``,
    each side cut to its first ``dims[k]`` dimensions and re-normalised; weights default to 1.

    The cut is a view of the embeddings the stage computed once, so a GradCache node upstream
    receives one summed gradient and re-runs each chunk once.
    """
    import torch.nn.functional as F

    weights = list(weights) or [1.0] * len(dims)
    total = None
    for dim, weight in zip(dims, weights, strict=True):
        cut = [F.normalize(side[:, :dim], dim=-1) if side is not None else None for side in sides]
        term = weight * loss(*cut)
        total = term if total is None else total + term
    assert total is not None, "matryoshka_loss needs at least one dim"
    return total
