"""AutoRegEmbed's maths as plain functions: compression through the slots, decoder scores, the CDA scores and loss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.model.packing import forward_rows, lm_head, offsets, row_sums
from methods.autoregembed.config import SLOTS_PARAMETER

if TYPE_CHECKING:
    import torch


# -- the maths, as plain functions ------------------------------------------------------------
def cda_scores(
    a: torch.Tensor,
    self_lp: torch.Tensor,
    n: torch.Tensor,
    ra: torch.Tensor,
    rn: torch.Tensor,
    *,
    beta: float,
    sign: str,
    s1_form: str = "paper",
    divergence: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(s1 [B], s2 [B, N]) from summed log-probabilities; ``n``/``rn`` are [B, N].

    s1 = sigmoid(beta |a - self|) (``logsigmoid``: softplus(beta |a - self|) = -log sigmoid(-beta
    |a - self|), unbounded, as the authors' code computes it; ``kl``/``js``: sigmoid of beta times
    the per-token mean divergence, given in ``divergence``); s2 = sigmoid(beta m) with
    m = (a - n) - (ra - rn) for the paper's sign and (a - n) + (ra - rn) for the released code's.
    """
    import torch
    import torch.nn.functional as F

    if s1_form in ("kl", "js"):
        if divergence is None:
            raise ValueError("the kl and js forms need the token-level divergence")
        s1 = torch.sigmoid(beta * divergence)
    elif s1_form == "logsigmoid":
        s1 = F.softplus(beta * (a - self_lp).abs())
    else:
        s1 = torch.sigmoid(beta * (a - self_lp).abs())
    reference = (ra.unsqueeze(-1) if ra.dim() == 1 else ra) - rn
    policy = a.unsqueeze(-1) - n
    margin = policy - reference if sign == "paper" else policy + reference
    return s1, torch.sigmoid(beta * margin)


def cda_loss(s1: torch.Tensor, s2: torch.Tensor, *, tau: float, negatives: str = "joint") -> torch.Tensor:
    """Mean over queries of -log(exp(-s1/tau) / (exp(-s1/tau) + sum_i exp(-s2_i/tau))) (``joint``)
    or of the mean of softplus((s1 - s2_i)/tau) (``pairwise``); equal for one negative."""
    import torch
    import torch.nn.functional as F

    if negatives == "pairwise":
        return F.softplus((s1.unsqueeze(-1) - s2) / tau).mean()
    logits = torch.cat([-s1.unsqueeze(-1), -s2], dim=-1) / tau
    return (torch.logsumexp(logits, dim=-1) + s1 / tau).mean()


def compress(model: Any, slots: torch.Tensor, rows: Sequence[Sequence[int]], *, pack: bool) -> torch.Tensor:
    """E (B x k x d): last-layer states at k slots placed right after each row's tokens (position
    ids count the row's own tokens only)."""
    import torch

    k = slots.shape[0]
    tokens = model.get_input_embeddings()(torch.tensor([t for row in rows for t in row], device=slots.device))
    slot_states = slots.to(tokens.dtype)
    pieces = [part for row in tokens.split([len(row) for row in rows]) for part in (row, slot_states)]
    lengths = [len(row) + k for row in rows]
    hidden = forward_rows(model.get_decoder(), torch.cat(pieces), lengths, pack=pack)
    first_slot = torch.tensor([o + len(row) for o, row in zip(offsets(lengths), rows)], device=hidden.device)
    return hidden[first_slot.unsqueeze(1) + torch.arange(k, device=hidden.device)]


def compress_padded(
    model: Any, slots: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """:func:`compress` of a padded batch (either padding side), run padded."""
    rows = [ids[mask.bool()].tolist() for ids, mask in zip(input_ids, attention_mask)]
    return compress(model, slots, rows, pack=False)


def without_adapter_dropout(model: Any) -> None:
    """Set every LoRA dropout of ``model`` to p = 0 (peft keeps them as ``lora_dropout`` modules)."""
    import torch

    for name, module in model.named_modules():
        if "lora_dropout" in name and isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def mean_input_embedding(embedding: torch.nn.Module, chunk: int = 8192) -> torch.Tensor:
    """The mean over the vocabulary of what the embedding module outputs (not of its weight:
    Gemma's module multiplies the looked-up rows by sqrt(d), and the slots sit among its outputs)."""
    import torch

    weight = embedding.weight
    total = torch.zeros(weight.shape[1], dtype=torch.float32, device=weight.device)
    with torch.no_grad():
        for start in range(0, weight.shape[0], chunk):
            ids = torch.arange(start, min(start + chunk, weight.shape[0]), device=weight.device)
            total += embedding(ids).float().sum(0)
    return (total / weight.shape[0]).to(weight.dtype)


def slots_of(model: Any) -> torch.Tensor:
    """The slot parameter as ``model`` holds it now (a sharding engine swaps parameters, so a
    reference kept from before training would be stale)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, SLOTS_PARAMETER)


@dataclass
class Scored:
    """Decoder output for a batch of (E, target) pairs."""

    sums: torch.Tensor  # [B] summed log-probability of target tokens + EOS
    tokens: torch.Tensor  # [B] number of target tokens + EOS
    log_probs: torch.Tensor | None  # [B, T, V] full next-token distributions, when asked for
    mask: torch.Tensor  # [B, T]


def score_targets(
    decoder: Any, compressed: torch.Tensor, targets: Sequence[Sequence[int]], *, pack: bool, full: bool = False
) -> Scored:
    """log p(y | E) for each row: the decoder reads E (no BOS) then y; only y's tokens (incl. EOS)
    are scored, never the slot positions, and the LM head runs at those positions only."""
    import torch

    rows, k, _ = compressed.shape
    device = compressed.device
    flat = torch.tensor([t for row in targets for t in row], device=device)
    embedded = decoder.get_input_embeddings()(flat)
    prefixes = compressed.to(embedded.dtype)
    pieces = [
        part for prefix, row in zip(prefixes, embedded.split([len(t) for t in targets])) for part in (prefix, row)
    ]
    lengths = [k + len(row) for row in targets]
    hidden = forward_rows(decoder.get_decoder(), torch.cat(pieces), lengths, pack=pack)
    # position k-1+t of a row predicts its target token t
    predicting = torch.cat(
        [torch.arange(o + k - 1, o + k - 1 + len(row)) for o, row in zip(offsets(lengths), targets)]
    )
    log_probs = torch.log_softmax(lm_head(decoder, hidden[predicting.to(device)]).float(), dim=-1)
    counts = [len(row) for row in targets]
    sums = row_sums(log_probs.gather(-1, flat.unsqueeze(-1)).squeeze(-1), counts)
    mask = torch.arange(max(counts), device=device).unsqueeze(0) < torch.tensor(counts, device=device).unsqueeze(1)
    padded = log_probs.new_zeros(mask.shape + log_probs.shape[-1:]).index_put((mask,), log_probs) if full else None
    return Scored(sums, torch.tensor(counts, device=device), padded, mask.long())


def token_divergence(p_self: Scored, p_query: Scored, form: str) -> torch.Tensor:
    """Mean over target positions (1/T, as the paper defines S) of KL(p(.|E_d+) || p(.|E_q)) or
    of their JS divergence."""
    import torch

    lp, lq = p_self.log_probs, p_query.log_probs
    if form == "kl":
        per_token = (lp.exp() * (lp - lq)).sum(-1)
    else:
        lm = torch.logaddexp(lp, lq) - torch.log(torch.tensor(2.0, device=lp.device))
        per_token = 0.5 * ((lp.exp() * (lp - lm)).sum(-1) + (lq.exp() * (lq - lm)).sum(-1))
    return (per_token * p_self.mask).sum(1) / p_self.mask.sum(1)


def heldout_loss(
    decoder: Any, prefixes: torch.Tensor, targets: Sequence[Sequence[int]], step: int, *, pack: bool
) -> float:
    """Token-mean negative log-likelihood of ``targets`` after ``prefixes``, in batches of ``step``."""
    total = tokens = 0.0
    for i in range(0, len(targets), step):
        scored = score_targets(decoder, prefixes[i : i + step], targets[i : i + step], pack=pack)
        total -= float(scored.sums.sum())
        tokens += float(scored.tokens.sum())
    return total / tokens
