"""InfoNCE contrastive baselines (the paper's -L / -M rows): one query, its positive, its hard
negative, optionally every other document of the global batch as further negatives.

The improved contrastive loss (GTE, Li et al. 2023, arXiv 2308.03281; Qwen3-Embedding, Zhang et
al. 2025, arXiv 2506.05176) comes as options, each off by default: the batch's other queries and
other documents as further negatives in the denominator, a mask on negatives scoring above the
positive by a margin (Qwen3's false-negative mask), and the document-to-query direction (as
sentence-transformers' ``MultipleNegativesSymmetricRankingLoss``). Matryoshka dims
(``matryoshka_dims``) wrap whichever loss a contrastive stage computes.

Temperature: 0.05 by default. The paper grid-searched it and its code defaults to 0.02; 0.05 is the
SimCSE value and was the best of a small probe on SmolLM2 here (docs/results.md). Change it
with ``--set method_args.temperature=0.02``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from harness.data.train_data import load_triplets
from harness.encoder import PooledEncoder, PromptTokenizer, text_span
from harness.errors import HarnessError
from harness.method import Method, option
from harness.model.packing import embed_rows
from harness.options import distinct_dims, side_template_option, template_option
from harness.prompts import INSTRUCTION_TEMPLATE
from harness.training import TrainConfig
from harness.training.distributed import gather_with_grad, world
from harness.training.losses import matryoshka_loss
from harness.training.sharding import for_training
from methods.untrained import untrained_twin

if TYPE_CHECKING:
    import torch

    from harness.encoder import Encoder, EncodeSettings
    from harness.model.backbones import Backbone


@dataclass
class InfoNCEConfig(TrainConfig):
    pooling: Literal["mean", "last"] = option("mean", "mean (-M) or last-token (-L) pooling")
    in_batch: bool = option(True, "also use every other document of the global batch as a negative")
    hard_negatives: bool = option(
        True, "score each query against its triplet's negative; false = in-batch negatives only (needs in_batch)"
    )
    mini_batch: int = option(
        0,
        "GradCache: embed each batch this many texts at a time without activations, then re-run and back-propagate "
        "each chunk (the gradients of the whole batch in the memory of a chunk); 0 = off",
        minimum=0,
    )
    temperature: float = option(0.05, "softmax temperature of the cosine scores", above=0)
    query_negatives: bool = option(
        False, "the batch's other queries are further negatives of each query (GTE, Qwen3-Embedding; needs in_batch)"
    )
    document_negatives: bool = option(
        False,
        "the batch's other documents, scored against a query's positive, are further negatives of it (GTE, Qwen3-Embedding; needs in_batch)",
    )
    false_negative_margin: float | None = option(
        None,
        "leave out a negative whose cosine exceeds the positive's by more than this (Qwen3-Embedding: 0.1); None = off",
        minimum=0,
    )
    symmetric: bool = option(
        False,
        "also each positive picks its query among the batch's queries; the two directions averaged "
        "(sentence-transformers' MultipleNegativesSymmetricRankingLoss; needs in_batch)",
    )
    matryoshka_dims: list[int] = option(
        [],
        "Matryoshka: the loss summed over the embedding's first N dims for each N (e.g. [64, 128, 256, 576]); [] = off",
        minimum=1,
        check=distinct_dims,
        rule="distinct",
    )
    matryoshka_weights: list[float] = option([], "Matryoshka: one weight per dim ([] = 1 each)", minimum=0)
    template: str = template_option(INSTRUCTION_TEMPLATE, "prompt around each text (shared with AutoRegEmbed)")
    document_template: str = side_template_option(
        "prompt around the documents of retrieval and reranking tasks (evaluation only; '' = template, which training reads)"
    )
    query_template: str = side_template_option(
        "prompt around the queries of retrieval and reranking tasks (evaluation only; '' = template)"
    )

    def inconsistency(self, prefix: str) -> str | None:
        if not self.in_batch and not self.hard_negatives:
            return (
                f"{prefix}in_batch=false and {prefix}hard_negatives=false leave a query no negative; keep one of them"
            )
        needs_batch = [name for name in ("query_negatives", "document_negatives", "symmetric") if getattr(self, name)]
        if needs_batch and not self.in_batch:
            return f"{prefix}{needs_batch[0]}=true scores the batch's other texts, which {prefix}in_batch=false leaves out"
        if self.matryoshka_weights and len(self.matryoshka_weights) != len(self.matryoshka_dims):
            return f"{prefix}matryoshka_weights={self.matryoshka_weights} needs one weight per {prefix}matryoshka_dims={self.matryoshka_dims}"
        return super().inconsistency(prefix)

    def loss_options(self) -> LossOptions:
        return LossOptions(
            self.temperature,
            self.in_batch,
            self.query_negatives,
            self.document_negatives,
            self.false_negative_margin,
            self.symmetric,
        )


@dataclass(frozen=True)
class LossOptions:
    """What :func:`infonce_loss` computes; the defaults are the plain loss."""

    temperature: float = 0.05
    in_batch: bool = True
    query_negatives: bool = False
    document_negatives: bool = False
    false_negative_margin: float | None = None
    symmetric: bool = False


def infonce_loss(
    query: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None, options: LossOptions
) -> torch.Tensor:
    """Cross-entropy of each query picking its positive; inputs are L2-normalised embeddings.

    Hard-negative only (``in_batch`` false): candidates are (positive, negative). In-batch: the
    candidates are all positives and negatives (``neg`` None: positives only) gathered from every
    rank (rank order), the query's positive at ``rank*B + i``; ``query_negatives`` adds the other
    queries, ``document_negatives`` the other documents scored against the query's positive, to
    its denominator. ``false_negative_margin`` drops every negative whose cosine exceeds the
    positive's by more than the margin. ``symmetric`` averages in the positive-to-query direction.
    """
    import torch
    import torch.nn.functional as F

    o = options
    if not o.in_batch:
        scores = torch.stack([(query * pos).sum(-1), (query * neg).sum(-1)], dim=1)
        return F.cross_entropy(
            _masked(scores, torch.zeros_like(scores, dtype=torch.bool), 0, o) / o.temperature,
            torch.zeros(query.shape[0], dtype=torch.long, device=query.device),
        )
    own = torch.arange(query.shape[0], device=query.device) + world().rank * query.shape[0]
    docs = torch.cat([gather_with_grad(pos)] + ([gather_with_grad(neg)] if neg is not None else []))
    queries = gather_with_grad(query) if o.query_negatives or o.symmetric else None
    blocks, excluded = [query @ docs.T], [torch.zeros(len(own), len(docs), dtype=torch.bool, device=query.device)]
    if o.query_negatives:
        blocks.append(query @ queries.T)
        excluded.append(F.one_hot(own, len(queries)).bool())  # a query is not its own negative
    if o.document_negatives:
        blocks.append(pos @ docs.T)
        excluded.append(F.one_hot(own, len(docs)).bool())  # nor is the positive
    scores = _masked(torch.cat(blocks, dim=1), torch.cat(excluded, dim=1), own, o)
    loss = F.cross_entropy(scores / o.temperature, own)
    if o.symmetric:
        back = _masked(
            pos @ queries.T, torch.zeros(len(own), len(queries), dtype=torch.bool, device=query.device), own, o
        )
        loss = (loss + F.cross_entropy(back / o.temperature, own)) / 2
    return loss


def _masked(
    scores: torch.Tensor, excluded: torch.Tensor, label: torch.Tensor | int, options: LossOptions
) -> torch.Tensor:
    """Cosine ``scores`` with excluded entries, and (under a margin) false negatives, set to -inf;
    the label column (each row's positive) is never dropped."""
    import torch

    if options.false_negative_margin is not None:
        rows = torch.arange(scores.shape[0], device=scores.device)
        positive = scores[rows, label].unsqueeze(1)
        excluded = excluded | (scores > positive + options.false_negative_margin)
        excluded[rows, label] = False
    return scores.masked_fill(excluded, float("-inf"))


class ContrastiveStage:
    """One stage on the triplets; every option comes from the ``config`` the loop passes."""

    name = "contrastive"

    def examples(self, source: str, seed: int) -> Sequence[Any]:
        return load_triplets(source, seed)

    def loss(self, model: Any, tokenizer: Any, batch: Sequence[Any], config: InfoNCEConfig) -> tuple[Any, int]:
        sides = [[t.query for t in batch], [t.pos for t in batch]] + (
            [[t.neg for t in batch]] if config.hard_negatives else []
        )
        rows = self.rows(tokenizer, [text for side in sides for text in side], config)
        query, pos, *neg = self.embed(model, rows, config).split(len(batch))
        return self.objective(query, pos, neg[0] if neg else None, config), sum(len(row) for row in rows)

    @staticmethod
    def rows(tokenizer: Any, texts: Sequence[str], config: InfoNCEConfig) -> list[Any]:
        """The texts' token rows under the training template and its pooled span (the text's own
        tokens where the config has ``pool_text_only`` set): as the encoder reads them."""

        template = text_span(config.template) if getattr(config, "pool_text_only", False) else config.template
        return PromptTokenizer(tokenizer, template, config.max_length)(texts)

    @staticmethod
    def embed(model: Any, rows: Sequence[Any], config: InfoNCEConfig) -> torch.Tensor:
        """L2-normalised embeddings of ``rows`` through the encoder's own path
        (:func:`harness.model.packing.embed_rows`), chunked by GradCache when ``mini_batch`` is set."""
        import torch.nn.functional as F

        from harness.training.grad_cache import cached_embeddings

        def embed(chunk: Sequence[Any]) -> torch.Tensor:
            return F.normalize(embed_rows(model, chunk, config.pooling, pack=config.pack).float(), dim=-1)

        device = next(model.parameters()).device
        return cached_embeddings(embed, rows, config.mini_batch, device) if config.mini_batch else embed(rows)

    @staticmethod
    def loss_from_embeddings(
        query: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None, config: InfoNCEConfig
    ) -> torch.Tensor:
        """The loss of embedded sides alone."""
        return infonce_loss(query, pos, neg, config.loss_options())

    def objective(
        self, query: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None, config: InfoNCEConfig
    ) -> torch.Tensor:
        """``loss_from_embeddings`` under the config's loss wrappers (Matryoshka dims)."""

        def loss(*sides: torch.Tensor | None) -> torch.Tensor:
            return self.loss_from_embeddings(*sides, config)

        if config.matryoshka_dims:
            return matryoshka_loss(loss, (query, pos, neg), config.matryoshka_dims, config.matryoshka_weights)
        return loss(query, pos, neg)


class InfoNCE(Method):
    """Contrastive fine-tuning on (query, positive, hard negative) triplets."""

    Config = InfoNCEConfig
    summary = "InfoNCE on triplets: hard negative, optional in-batch negatives; mean or last pooling"

    def stages(self) -> Sequence[ContrastiveStage]:
        return [ContrastiveStage()]

    def baseline(self) -> tuple[str, dict[str, Any]] | None:
        """The backbone untrained, read and pooled as the trained encoder reads and pools."""

        return untrained_twin(self.config.pooling, self.config)

    def check_inputs(self, train_data: str, seed: int) -> None:
        super().check_inputs(train_data, seed)
        if self.config.mini_batch:
            engine = for_training(self.config).engine
            if engine != "none":
                raise HarnessError(
                    f"method_args.mini_batch (GradCache) re-runs the model inside backward, which the {engine} engine's "
                    "parameter gathering does not support; use method_args.sharding=none (every rank holds the model)."
                )

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        return PooledEncoder(
            backbone.model,
            backbone.tokenizer,
            pooling=self.config.pooling,
            settings=settings,
            template=self.config.template,
            document_template=self.config.document_template or None,
            query_template=self.config.query_template or None,
        )
