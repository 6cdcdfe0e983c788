"""LLM2Vec: bidirectional attention, masked next-token prediction, then contrastive learning.

BehnamGhader, Adlakha, Mosbach, Bahdanau, Chapados and Reddy, "LLM2Vec: Large Language Models
Are Secretly Powerful Text Encoders", arXiv 2404.05961 (2024); reference code:
github.com/McGill-NLP/llm2vec. Three steps turn a decoder into an encoder:

1. attention made bidirectional (``Method.attention``: every stage and the encoder);
2. ``mntp``: masked next-token prediction. A fraction of each text's tokens (``mask_probability``,
   the reference's 0.2 for Llama; 0.8 for Mistral) is chosen; of those, 80% read the mask token
   (the reference's "blank" ``_``), 10% a random token and 10% stay (the masked-LM collator's
   split); token i is predicted from the state at position i-1, through the LM head, on plain
   texts; the reference's learning rate (5e-5) by default;
3. ``simcse``: unsupervised SimCSE, each text twice in one batch with dropout (``simcse_dropout``,
   the reference's 0.3), the other texts as negatives, at the reference's learning rate 3e-5; or
   ``supervised``: the InfoNCE loss on triplets (in-batch and hard negatives), bidirectional.

Vectors are the mean over the text's own tokens (``pool_text_only``; an instruction in the template
is excluded, as the reference's ``embed_mask`` does). Training runs with LoRA (r 16, alpha 32,
dropout 0.05: the house defaults, which match the reference) through the shared loop.

Where this departs from the reference: the SimCSE or supervised stage goes on training the MNTP
stage's LoRA adapters instead of merging them and starting new ones; there is no separate
``padding`` token handling for Llama (the harness pads by its own masks); bidirectional attention
is applied by the harness's attention mode (:mod:`harness.model.attention`), not by patched model
classes, and is checked on the loaded backbone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.data.texts import load_texts
from harness.encoder import PooledEncoder, encoder_templates
from harness.method import Method, option, set_only
from harness.model.packing import forward_rows, lm_head, offsets
from harness.options import template_option
from methods.infonce import ContrastiveStage, InfoNCEConfig, infonce_loss
from methods.untrained import untrained_twin

if TYPE_CHECKING:
    import torch

    from harness.encoder import Encoder, EncodeSettings
    from harness.model.backbones import Backbone

STAGES = ("mntp", "simcse", "supervised")


@dataclass
class LLM2VecConfig(InfoNCEConfig):
    template: str = template_option("{text}", "prompt around each text (an instruction, for supervised training)")
    stages: list[str] = option(
        ["mntp", "simcse"],
        "stages in order: mntp, then simcse (unsupervised, on texts) or supervised (InfoNCE on triplets); "
        "[] = the bidirectional backbone, untrained",
    )
    pool_text_only: bool = option(True, "mean over the text's own tokens, instruction excluded; false = the whole row")
    mask_probability: float = option(
        0.2, "mntp: fraction of tokens masked (the reference: 0.2 for Llama, 0.8 for Mistral)", above=0, below=1
    )
    mask_token: str = option(
        "_",
        "mntp: the token a masked position reads (the reference's blank '_'; the tokenizer's unk, else pad, when unknown)",
    )
    mntp_steps: int = option(0, "mntp: optimizer steps (0 = steps)", minimum=0)
    mntp_lr: float = option(5e-5, "mntp: learning rate (the reference's)", above=0)
    simcse_steps: int = option(0, "simcse: optimizer steps (0 = steps)", minimum=0)
    simcse_lr: float = option(3e-5, "simcse: learning rate (the reference's)", above=0)
    simcse_dropout: float = option(
        0.3, "simcse: attention dropout making the two views (the reference's)", minimum=0, below=1
    )
    supervised_steps: int = option(0, "supervised: optimizer steps (0 = steps)", minimum=0)
    supervised_lr: float = option(2e-4, "supervised: learning rate (the reference's)", above=0)

    def inconsistency(self, prefix: str) -> str | None:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown or len(set(self.stages)) != len(self.stages) or {"simcse", "supervised"} <= set(self.stages):
            return f"{prefix}stages={self.stages}: give mntp, simcse or supervised once each, not both of the last two"
        return super().inconsistency(prefix)


class MNTPStage:
    """Masked next-token prediction on plain texts, under bidirectional attention."""

    name = "mntp"
    data_kind = "texts"

    def __init__(self, config: LLM2VecConfig) -> None:
        self.overrides = {**set_only(steps=config.mntp_steps), "lr": config.mntp_lr}

    def examples(self, source: str, seed: int) -> Sequence[str]:
        return load_texts(source, seed)

    def loss(self, model: Any, tokenizer: Any, batch: Sequence[str], config: LLM2VecConfig) -> tuple[Any, int]:
        """Cross-entropy of each masked token i predicted from the state at i-1 (mean over the
        masked tokens of this rank's batch)."""
        import torch
        import torch.nn.functional as F

        device = next(model.parameters()).device
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
        rows = [row[: config.max_length] for row in tokenizer(list(batch), add_special_tokens=True)["input_ids"]]
        rows = [row + [eos] * (2 - len(row)) for row in rows]  # a one-token text predicts EOS after it
        masked, targets, positions = mask_rows(
            rows,
            config.mask_probability,
            mask_id(tokenizer, config.mask_token),
            len(tokenizer),
            special_ids(tokenizer),
        )
        ids = torch.tensor([t for row in masked for t in row], device=device)
        lengths = [len(row) for row in rows]
        hidden = forward_rows(model.get_decoder(), model.get_input_embeddings()(ids), lengths, pack=config.pack)
        starts = offsets(lengths)
        before = torch.tensor([starts[r] + i - 1 for r, i in positions], device=device)
        logits = lm_head(model, hidden[before]).float()
        return F.cross_entropy(logits, torch.tensor(targets, device=device)), sum(lengths)


def special_ids(tokenizer: Any) -> set[int]:
    return set(tokenizer.all_special_ids)


def mask_id(tokenizer: Any, token: str) -> int:
    """The id masked positions read: ``token`` if the tokenizer knows it, else its unk, else pad."""
    found = tokenizer.convert_tokens_to_ids(token)
    if found is not None and found != tokenizer.unk_token_id:
        return int(found)
    return int(tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.pad_token_id)


def mask_rows(
    rows: Sequence[Sequence[int]], probability: float, mask: int, vocab: int, specials: set[int]
) -> tuple[list[list[int]], list[int], list[tuple[int, int]]]:
    """(rows with chosen tokens replaced, the chosen tokens, their (row, position)).

    Positions 1.. of each row that hold no special token are candidates (position 0 has no state
    before it; a row of special tokens only offers all of its positions 1..); each is chosen with ``probability`` (at least one per row), then read as ``mask``
    (80%), a random token (10%) or itself (10%). Draws come from torch's generator, which the loop
    seeds and checkpoints.
    """
    import torch

    masked, targets, positions = [], [], []
    for r, row in enumerate(rows):
        candidates = [i for i in range(1, len(row)) if row[i] not in specials] or list(range(1, len(row)))
        chosen = [i for i in candidates if float(torch.rand(())) < probability]
        if not chosen:
            chosen = [candidates[int(torch.randint(len(candidates), ()))]]
        new = list(row)
        for i in chosen:
            draw = float(torch.rand(()))
            new[i] = mask if draw < 0.8 else int(torch.randint(vocab, ())) if draw < 0.9 else row[i]
            targets.append(row[i])
            positions.append((r, i))
        masked.append(new)
    return masked, targets, positions


class SimCSEStage(ContrastiveStage):
    """Unsupervised SimCSE: each text twice in one batch, dropout making the two views differ."""

    name = "simcse"
    data_kind = "texts"

    def __init__(self, config: LLM2VecConfig) -> None:
        self.overrides = {
            **set_only(steps=config.simcse_steps),
            "lr": config.simcse_lr,
            "dropout": config.simcse_dropout,
        }

    def examples(self, source: str, seed: int) -> Sequence[str]:
        return load_texts(source, seed)

    def loss(self, model: Any, tokenizer: Any, batch: Sequence[str], config: LLM2VecConfig) -> tuple[Any, int]:
        rows = self.rows(tokenizer, [*batch, *batch], config)
        first, second = self.embed(model, rows, config).split(len(batch))
        return self.objective(first, second, None, config), sum(len(row) for row in rows)

    @staticmethod
    def loss_from_embeddings(
        query: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None, config: InfoNCEConfig
    ) -> torch.Tensor:
        """Each first view picks its own second view among every text's second view (under the
        config's loss options; in-batch whatever ``in_batch`` says, as SimCSE has no hard negative)."""
        return infonce_loss(query, pos, None, dataclasses.replace(config.loss_options(), in_batch=True))


class SupervisedStage(ContrastiveStage):
    """The InfoNCE loss on triplets, under bidirectional attention."""

    name = "supervised"

    def __init__(self, config: LLM2VecConfig) -> None:
        self.overrides = {**set_only(steps=config.supervised_steps), "lr": config.supervised_lr}


class LLM2Vec(Method):
    """Bidirectional attention, MNTP, then SimCSE or supervised contrastive training."""

    Config = LLM2VecConfig
    summary = "LLM2Vec (BehnamGhader et al. 2024): bidirectional attention; MNTP, then SimCSE or supervised InfoNCE"
    attention = "bidirectional"

    def stages(self) -> Sequence[Any]:
        table = {"mntp": MNTPStage, "simcse": SimCSEStage, "supervised": SupervisedStage}
        return [table[name](self.config) for name in self.config.stages]

    def baseline(self) -> tuple[str, dict[str, Any]] | None:
        """The backbone as it is (causal, untrained: the paper's "Uni" row), pooled as the trained
        encoder pools: what bidirectional attention and the stages add together."""

        return untrained_twin(self.config.pooling, self.config)

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        c = self.config
        return PooledEncoder(
            backbone.model,
            backbone.tokenizer,
            pooling=c.pooling,
            settings=settings,
            **encoder_templates(c.template, c.document_template, c.query_template, text_only=c.pool_text_only),
        )
