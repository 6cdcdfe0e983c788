"""Checks of a run's options that need its loaded backbone, made before the run is recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.encoder import PromptTokenizer
from harness.errors import HarnessError
from harness.model.aliases import TESTED_FAMILIES
from harness.training import TrainConfig
from harness.training.parameters import lora_targets

if TYPE_CHECKING:
    from harness.config import RunConfig
    from harness.method import MethodConfig
    from harness.model.backbones import Backbone


def template_tokens(backbone: Backbone, template: str) -> int:
    """Tokens the template takes around its (empty) texts, special tokens included, as the encoder
    tokenises it (span marks are not text)."""

    return PromptTokenizer(backbone.tokenizer, template, 2**31 - 1).fixed_tokens


def family_note(backbone: Backbone) -> str | None:
    """A note when the backbone's architecture family is not one the test matrix covers."""

    family = getattr(backbone.model.config, "model_type", None)
    if family in TESTED_FAMILIES:
        return None
    return (
        f"note: {backbone.spec.name} is a {family!r} model, a family the harness's tests do not cover "
        f"(they cover {', '.join(TESTED_FAMILIES)}); check its LoRA targets, special tokens and exports."
    )


def check_against_backbone(backbone: Backbone, config: RunConfig, options: MethodConfig) -> None:
    """LoRA targets must name modules of the backbone, each max length must leave room for at
    least one token of text after the method's template, and Matryoshka dims must fit the
    backbone's hidden size."""
    width = backbone.model.get_input_embeddings().embedding_dim
    for name, dims in (
        ("method_args.matryoshka_dims", getattr(options, "matryoshka_dims", None) or []),
        ("--dims", config.dims),
    ):
        if dims and max(dims) > width:
            raise HarnessError(
                f"{name} {','.join(map(str, dims))}: {backbone.spec.name}'s embeddings have {width} dims; each dim must be at most {width}."
            )
    limits = [("max_length", config.max_length)]
    if isinstance(options, TrainConfig):
        limits.append(("method_args.max_length", options.max_length))
        if options.finetune == "lora":
            lora_targets(backbone, options)
    for side in ("template", "query_template", "document_template"):
        template = getattr(options, side, None)
        if not isinstance(template, str) or not template:
            continue
        needed = template_tokens(backbone, template) + template.count("{text}")
        for name, limit in limits:
            if limit < needed:
                raise HarnessError(
                    f"{name}={limit} cannot hold the {side.replace('_', ' ')} {template!r}: it takes {needed - template.count('{text}')} "
                    f"tokens of {backbone.spec.name}, so {name} must be at least {needed}."
                )
