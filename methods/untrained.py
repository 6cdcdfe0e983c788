"""Untrained baselines: the backbone as it is, pooled three ways. No training stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from harness.encoder import PooledEncoder, encoder_templates
from harness.method import Method, MethodConfig, option
from harness.options import side_template_option, template_option
from harness.prompts import INSTRUCTION_TEMPLATE

if TYPE_CHECKING:
    from harness.encoder import Encoder, EncodeSettings
    from harness.model.backbones import Backbone

PROMPTEOL_TEMPLATE = 'This sentence : "{text}" means in one word:"'
DOCUMENT_HELP = (
    "prompt around the documents of retrieval and reranking tasks ('' = template, which symmetric tasks read)"
)
QUERY_HELP = "prompt around the queries of retrieval and reranking tasks ('' = template, which symmetric tasks read)"


@dataclass
class PoolingConfig(MethodConfig):
    preset: str = option(
        "plain", "plain (the bare text) or autoregembed (its instruction template: the paper's -L/-M untrained rows)"
    )
    template: str = template_option("{text}", "prompt around each text")
    document_template: str = side_template_option(DOCUMENT_HELP)
    query_template: str = side_template_option(QUERY_HELP)
    pool_text_only: bool = option(
        False,
        "pool over the text's own tokens, instruction excluded (its last {text} as {pool}{text}{/pool}); false = as the template marks, else the whole row",
    )


#: The paper's untrained LLaMA2-L / -M rows read the text under AutoRegEmbed's instruction.
POOLING_PRESETS: dict[str, dict[str, str]] = {"plain": {}, "autoregembed": {"template": INSTRUCTION_TEMPLATE}}


@dataclass
class PromptEOLConfig(MethodConfig):
    template: str = template_option(PROMPTEOL_TEMPLATE, "PromptEOL prompt (Jiang et al., 2023)")
    document_template: str = side_template_option(DOCUMENT_HELP)
    query_template: str = side_template_option(QUERY_HELP)


def untrained_twin(pooling: Literal["mean", "last"], config: Any) -> tuple[str, dict[str, Any]]:
    """The untrained method that reads texts as ``config`` does (its templates, its pooled span)
    and pools them as ``pooling``: the baseline of a method that trains that encoder."""
    args = {
        side: getattr(config, side)
        for side in ("template", "document_template", "query_template")
        if getattr(config, side, "")
    }
    if getattr(config, "pool_text_only", False):
        args["pool_text_only"] = True
    return f"untrained-{pooling}", args


class _Untrained(Method):
    pooling: ClassVar[Literal["mean", "last"]]

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        return PooledEncoder(
            backbone.model, backbone.tokenizer, pooling=self.pooling, settings=settings, **self.templates()
        )

    def templates(self) -> dict[str, str | None]:
        """The three templates as the encoder reads them (spans on the text where asked)."""

        c = self.config
        return encoder_templates(
            c.template, c.document_template, c.query_template, text_only=getattr(c, "pool_text_only", False)
        )


class UntrainedMean(_Untrained):
    """Mean of the last hidden states over the text's tokens."""

    Config = PoolingConfig
    summary = "untrained backbone, mean of last hidden states"
    pooling = "mean"
    presets = POOLING_PRESETS


class UntrainedLast(_Untrained):
    """Last hidden state of the last real token."""

    Config = PoolingConfig
    summary = "untrained backbone, last real token's hidden state"
    pooling = "last"
    presets = POOLING_PRESETS


class PromptEOL(_Untrained):
    """Last token under the PromptEOL template, which asks the model to sum the text up in one word."""

    Config = PromptEOLConfig
    summary = "untrained backbone, last token under the PromptEOL one-word prompt"
    pooling = "last"

    def baseline(self) -> tuple[str, dict[str, Any]] | None:
        """The last token of the bare text: what the one-word prompt adds."""
        return "untrained-last", {}
