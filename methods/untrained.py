"""Untrained baselines: the backbone as it is, pooled three ways. No training stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from harness.method import Method, MethodConfig, option
from harness.options import text_slot_once, text_slot_once_or_empty
from harness.prompts import INSTRUCTION_TEMPLATE

if TYPE_CHECKING:
    from harness.model.backbones import Backbone
    from harness.encoder import EncodeSettings, Encoder

PROMPTEOL_TEMPLATE = 'This sentence : "{text}" means in one word:"'


@dataclass
class PoolingConfig(MethodConfig):
    preset: str = option("plain", "plain (the bare text) or autoregembed (its instruction template: the paper's -L/-M untrained rows)")
    template: str = option("{text}", "prompt around each text", check=text_slot_once, rule="{text} once")
    document_template: str = option(
        "", "prompt around the documents of retrieval and reranking tasks ('' = template, which symmetric tasks read)",
        check=text_slot_once_or_empty, rule="'' or {text} once",
    )
    query_template: str = option(
        "", "prompt around the queries of retrieval and reranking tasks ('' = template, which symmetric tasks read)",
        check=text_slot_once_or_empty, rule="'' or {text} once",
    )


#: The paper's untrained LLaMA2-L / -M rows read the text under AutoRegEmbed's instruction.
POOLING_PRESETS: dict[str, dict[str, str]] = {"plain": {}, "autoregembed": {"template": INSTRUCTION_TEMPLATE}}


@dataclass
class PromptEOLConfig(MethodConfig):
    template: str = option(PROMPTEOL_TEMPLATE, "PromptEOL prompt (Jiang et al., 2023)", check=text_slot_once, rule="{text} once")
    document_template: str = option(
        "", "prompt around the documents of retrieval and reranking tasks ('' = template, which symmetric tasks read)",
        check=text_slot_once_or_empty, rule="'' or {text} once",
    )
    query_template: str = option(
        "", "prompt around the queries of retrieval and reranking tasks ('' = template, which symmetric tasks read)",
        check=text_slot_once_or_empty, rule="'' or {text} once",
    )


class _Untrained(Method):
    pooling: ClassVar[Literal["mean", "last"]]

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        from harness.encoder import PooledEncoder

        return PooledEncoder(
            backbone.model,
            backbone.tokenizer,
            pooling=self.pooling,
            settings=settings,
            template=self.config.template,
            document_template=self.config.document_template or None,
            query_template=self.config.query_template or None,
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
