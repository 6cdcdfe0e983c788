"""InfoNCE contrastive baselines (the paper's -L / -M rows): one query, its positive, its hard
negative, optionally every other document of the global batch as further negatives.

Temperature: 0.05 by default. The paper grid-searched it and its code defaults to 0.02; 0.05 is the
SimCSE value and was the best of a small probe on SmolLM2 here (docs/results.md). Change it
with ``--set method_args.temperature=0.02``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from harness.errors import HarnessError
from harness.method import Method, option
from harness.options import side_template_option, template_option
from harness.prompts import INSTRUCTION_TEMPLATE
from harness.training import TrainConfig

if TYPE_CHECKING:
    import torch

    from harness.model.backbones import Backbone
    from harness.encoder import EncodeSettings, Encoder


@dataclass
class InfoNCEConfig(TrainConfig):
    pooling: Literal["mean", "last"] = option("mean", "mean (-M) or last-token (-L) pooling")
    in_batch: bool = option(True, "also use every other document of the global batch as a negative")
    hard_negatives: bool = option(True, "score each query against its triplet's negative; false = in-batch negatives only (needs in_batch)")
    mini_batch: int = option(
        0, "GradCache: embed each batch this many texts at a time without activations, then re-run and back-propagate "
        "each chunk (the gradients of the whole batch in the memory of a chunk); 0 = off", minimum=0,
    )
    temperature: float = option(0.05, "softmax temperature of the cosine scores", above=0)
    template: str = template_option(INSTRUCTION_TEMPLATE, "prompt around each text (shared with AutoRegEmbed)")
    document_template: str = side_template_option(
        "prompt around the documents of retrieval and reranking tasks (evaluation only; '' = template, which training reads)",
    )
    query_template: str = side_template_option(
        "prompt around the queries of retrieval and reranking tasks (evaluation only; '' = template)",
    )

    unrecorded_at: ClassVar[dict[str, Any]] = {**TrainConfig.unrecorded_at, "hard_negatives": True, "mini_batch": 0}

    def inconsistency(self, prefix: str) -> str | None:
        if not self.in_batch and not self.hard_negatives:
            return f"{prefix}in_batch=false and {prefix}hard_negatives=false leave a query no negative; keep one of them"
        return super().inconsistency(prefix)


def infonce_loss(
    query: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None, temperature: float, in_batch: bool
) -> torch.Tensor:
    """Cross-entropy of each query picking its positive; inputs are L2-normalised embeddings.

    Hard-negative only: candidates are (positive, negative). In-batch: candidates are all positives
    and negatives (``neg`` None: positives only) gathered from every rank (rank order), the query's
    positive at ``rank*B + i``.
    """
    import torch
    import torch.nn.functional as F

    from harness.training.distributed import gather_with_grad, world

    if in_batch:
        docs = torch.cat([gather_with_grad(pos)] + ([gather_with_grad(neg)] if neg is not None else []))
        scores = query @ docs.T / temperature
        labels = torch.arange(query.shape[0], device=query.device) + world().rank * query.shape[0]
    else:
        scores = torch.stack([(query * pos).sum(-1), (query * neg).sum(-1)], dim=1) / temperature
        labels = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(scores, labels)


class ContrastiveStage:
    """One stage on the triplets; every option comes from the ``config`` the loop passes."""

    name = "contrastive"

    def examples(self, source: str, seed: int) -> Sequence[Any]:
        from harness.data.train_data import load_triplets

        return load_triplets(source, seed)

    def loss(self, model: Any, tokenizer: Any, batch: Sequence[Any], config: InfoNCEConfig) -> tuple[Any, int]:
        sides = [[t.query for t in batch], [t.pos for t in batch]] + ([[t.neg for t in batch]] if config.hard_negatives else [])
        rows = self.rows(tokenizer, [text for side in sides for text in side], config)
        query, pos, *neg = self.embed(model, rows, config).split(len(batch))
        return self.loss_from_embeddings(query, pos, neg[0] if neg else None, config), sum(len(row) for row in rows)

    @staticmethod
    def rows(tokenizer: Any, texts: Sequence[str], config: InfoNCEConfig) -> list[Any]:
        """The texts' token rows under the training template and its pooled span (the text's own
        tokens where the config has ``pool_text_only`` set): as the encoder reads them."""
        from harness.encoder import PromptTokenizer, text_span

        template = text_span(config.template) if getattr(config, "pool_text_only", False) else config.template
        return PromptTokenizer(tokenizer, template, config.max_length)(texts)

    @staticmethod
    def embed(model: Any, rows: Sequence[Any], config: InfoNCEConfig) -> torch.Tensor:
        """L2-normalised embeddings of ``rows`` through the encoder's own path
        (:func:`harness.model.packing.embed_rows`), chunked by GradCache when ``mini_batch`` is set."""
        import torch.nn.functional as F

        from harness.model.packing import embed_rows
        from harness.training.grad_cache import cached_embeddings

        def embed(chunk: Sequence[Any]) -> torch.Tensor:
            return F.normalize(embed_rows(model, chunk, config.pooling, pack=config.pack).float(), dim=-1)

        device = next(model.parameters()).device
        return cached_embeddings(embed, rows, config.mini_batch, device) if config.mini_batch else embed(rows)

    @staticmethod
    def loss_from_embeddings(query: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None, config: InfoNCEConfig) -> torch.Tensor:
        """The loss of embedded sides alone (loss wrappers compose here)."""
        return infonce_loss(query, pos, neg, config.temperature, config.in_batch)


class InfoNCE(Method):
    """Contrastive fine-tuning on (query, positive, hard negative) triplets."""

    Config = InfoNCEConfig
    summary = "InfoNCE on triplets: hard negative, optional in-batch negatives; mean or last pooling"

    def stages(self) -> Sequence[ContrastiveStage]:
        return [ContrastiveStage()]

    def check_inputs(self, train_data: str, seed: int) -> None:
        super().check_inputs(train_data, seed)
        if self.config.mini_batch:
            from harness.training.sharding import for_training

            engine = for_training(self.config).engine
            if engine != "none":
                raise HarnessError(
                    f"method_args.mini_batch (GradCache) re-runs the model inside backward, which the {engine} engine's "
                    "parameter gathering does not support; use method_args.sharding=none (every rank holds the model)."
                )

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        from harness.encoder import PooledEncoder

        return PooledEncoder(
            backbone.model, backbone.tokenizer, pooling=self.config.pooling, settings=settings,
            template=self.config.template, document_template=self.config.document_template or None,
            query_template=self.config.query_template or None,
        )
