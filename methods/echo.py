"""Echo embeddings: the text written twice, pooled over the second copy (training-free).

Springer, Kotha, Fried, Neubig and Raghunathan, "Repetition Improves Language Model Embeddings",
arXiv 2402.15449 (2024); reference code: github.com/jakespringer/echo-embeddings. Under causal
attention a token's state sees only what comes before it; in the second copy every token has
already read the whole text once, so the mean over that copy describes all of it.

Follows the reference: the template pieces and the text are tokenised apart (both copies are the
same ids), the tokenizer's own BOS leads, and the mean runs over the second copy's tokens only.
The zero-shot template is the paper's ``Rewrite the sentence: x, rewritten sentence: x``; documents
of retrieval tasks read the reference's ``Document: x`` / ``Document again: x``. Departs from it
where the reference pools a closing ``</s>`` with the second copy: no EOS is appended here
(the tokenizer's own habit decides), so the span is the text alone. ``untrained-mean`` with
``pool_text_only`` and the same template isolates what the repetition buys from what the template
buys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from harness.encoder import PooledEncoder
from harness.method import Method, MethodConfig, option
from harness.options import side_template_option, template_option

if TYPE_CHECKING:
    from harness.encoder import Encoder, EncodeSettings
    from harness.model.backbones import Backbone

ECHO_TEMPLATE = "Rewrite the sentence: {text}, rewritten sentence: {pool}{text}{/pool}"
ECHO_DOCUMENT_TEMPLATE = "Document: {text}\nDocument again: {pool}{text}{/pool}"


@dataclass
class EchoConfig(MethodConfig):
    template: str = template_option(ECHO_TEMPLATE, "the text twice; {pool}...{/pool} marks the pooled (second) copy")
    document_template: str = side_template_option(
        "prompt around the documents of retrieval and reranking tasks ('' = template)", ECHO_DOCUMENT_TEMPLATE
    )
    query_template: str = side_template_option(
        "prompt around the queries of retrieval and reranking tasks ('' = template)"
    )
    pooling: Literal["mean", "last"] = option("mean", "mean over the pooled copy (the paper's), or its last token")


class Echo(Method):
    """The untrained backbone reading each text twice, pooled over the second copy."""

    Config = EchoConfig
    summary = "Echo embeddings (Springer et al. 2024): text twice, mean over the second copy; no training"

    def baseline(self) -> tuple[str, dict[str, Any]] | None:
        """The text read once, pooled the same way: what the repetition (with its template) adds."""
        return f"untrained-{self.config.pooling}", {}

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
