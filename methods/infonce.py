"""InfoNCE contrastive baselines (the paper's -L / -M rows): one query, its positive, its hard
negative, optionally every other document of the global batch as further negatives.

Temperature: 0.05 by default. The paper grid-searched it and its code defaults to 0.02; 0.05 is the
SimCSE value and was the best of a small probe on SmolLM2 here (../shared/docs notes). Change it
with ``--set method_args.temperature=0.02``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from harness.method import Method, option
from harness.options import text_slot_once, text_slot_once_or_empty
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
    temperature: float = option(0.05, "softmax temperature of the cosine scores", above=0)
    template: str = option(INSTRUCTION_TEMPLATE, "prompt around each text (shared with AutoRegEmbed)", check=text_slot_once, rule="{text} once")
    document_template: str = option(
        "", "prompt around the documents of retrieval and reranking tasks (evaluation only; '' = template, which training reads)",
        check=text_slot_once_or_empty, rule="'' or {text} once",
    )
    query_template: str = option(
        "", "prompt around the queries of retrieval and reranking tasks (evaluation only; '' = template)",
        check=text_slot_once_or_empty, rule="'' or {text} once",
    )


def infonce_loss(
    query: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, temperature: float, in_batch: bool
) -> torch.Tensor:
    """Cross-entropy of each query picking its positive; inputs are L2-normalised embeddings.

    Hard-negative only: candidates are (positive, negative). In-batch: candidates are all positives
    and negatives gathered from every rank (rank order), the query's positive at ``rank*B + i``.
    """
    import torch
    import torch.nn.functional as F

    from harness.training.distributed import gather_with_grad, world

    if in_batch:
        docs = torch.cat([gather_with_grad(pos), gather_with_grad(neg)])
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
        import torch
        import torch.nn.functional as F

        from harness.encoder import PromptTokenizer
        from harness.model.packing import forward_rows, pool_rows

        prompt = PromptTokenizer(tokenizer, config.template, config.max_length)
        rows = prompt([t.query for t in batch] + [t.pos for t in batch] + [t.neg for t in batch])
        ids = torch.tensor([t for row in rows for t in row], device=next(model.parameters()).device)
        lengths = [len(row) for row in rows]
        hidden = forward_rows(model.get_decoder(), model.get_input_embeddings()(ids), lengths, pack=config.pack)
        embeddings = F.normalize(pool_rows(hidden, lengths, config.pooling).float(), dim=-1)
        query, pos, neg = embeddings.split(len(batch))
        loss = infonce_loss(query, pos, neg, config.temperature, config.in_batch)
        return loss, sum(lengths)


class InfoNCE(Method):
    """Contrastive fine-tuning on (query, positive, hard negative) triplets."""

    Config = InfoNCEConfig
    summary = "InfoNCE on triplets: hard negative, optional in-batch negatives; mean or last pooling"

    def stages(self) -> Sequence[ContrastiveStage]:
        return [ContrastiveStage()]

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        from harness.encoder import PooledEncoder

        return PooledEncoder(
            backbone.model, backbone.tokenizer, pooling=self.config.pooling, settings=settings,
            template=self.config.template, document_template=self.config.document_template or None,
            query_template=self.config.query_template or None,
        )
