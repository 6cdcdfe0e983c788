"""Token prepending: a placeholder before the text carries the sentence's state to its earlier
tokens, under causal attention (training-free).

Fu, Cheng, Zhou, Wang and Li, "Token Prepending: A Training-Free Approach for Eliciting Better
Sentence Embeddings from LLMs", arXiv 2412.11556 (ACL 2025); reference code:
github.com/fuyuchenIfyw/token_prepending. Under causal attention the text's early tokens never see
its end. A placeholder token is written before the text; before each of the early layers
``layers_from`` .. ``layers_to - 1`` it is overwritten with the state of the row's last token at
that depth (the sentence as the previous layer decoded it), so every later token of the text attends
to a summary of the whole sentence. The vector is the last token's state, as PromptEOL pools.

Follows the reference: the PromptEOL template with the placeholder before the quoted text
(``This sentence : <PST> "x" means in one word:"``), the placeholder cut out of the text's
tokenisation as an added token is, the layer range of its Llama-2-7B setting (1 to 7: layers 1..6
read the carried state), last-token pooling. Departs from it: the placeholder's input at layer 0 is
a zero vector, not a random one (the reference draws ``torch.randn`` for a new vocabulary row;
zeros add no draw and no vocabulary row); the placeholder is the tokenizer's EOS token in the text
(its embedding is replaced, so which token does not matter); the vector is the last layer's
(after the final norm) where the reference exits early at a tuned layer (27 of Llama-2-7B's 32);
the reference's sentence clean-up (a full stop added, double quotes made single) is not done.
``prompteol`` is the same template without the placeholder: the baseline that isolates it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.encoder import PooledEncoder, PromptTokenizer, special_tokens_around
from harness.errors import HarnessError
from harness.method import Method, MethodConfig, option
from harness.model.packing import forward_rows, offsets, pool_rows
from harness.options import POOL_START, TEXT_SLOT, template_problem

if TYPE_CHECKING:
    import torch

    from harness.encoder import Encoder, EncodeSettings
    from harness.model.backbones import Backbone

PLACEHOLDER = "{pst}"
TP_TEMPLATE = 'This sentence : {pst} "{text}" means in one word:"'
RULE = f"{PLACEHOLDER} once, before the first {TEXT_SLOT}; no {POOL_START} span"


def placeholder_problem(template: Any) -> str | None:
    """What is wrong with a token-prepending template ('' = the symmetric template), or None."""
    if template == "":
        return None
    problem = template_problem(template)
    if problem:
        return problem
    if (
        template.count(PLACEHOLDER) != 1
        or template.find(PLACEHOLDER) > template.find(TEXT_SLOT)
        or POOL_START in template
    ):
        return f"must hold {RULE}"
    return None


def without_placeholder(template: str) -> str:
    """``template`` with its placeholder (and the space after it) taken out: PromptEOL's template."""
    return template.replace(PLACEHOLDER + " ", "", 1).replace(PLACEHOLDER, "", 1)


@dataclass
class TokenPrependingConfig(MethodConfig):
    template: str = option(
        TP_TEMPLATE,
        "PromptEOL prompt with the placeholder {pst} before the text",
        check=placeholder_problem,
        rule=RULE,
    )
    document_template: str = option(
        "", "prompt around retrieval documents ('' = template)", check=placeholder_problem, rule=f"'' or {RULE}"
    )
    query_template: str = option(
        "", "prompt around retrieval queries ('' = template)", check=placeholder_problem, rule=f"'' or {RULE}"
    )
    layers_from: int = option(
        1, "first layer whose input placeholder carries the last token's state (the reference's 1)", minimum=0
    )
    layers_to: int = option(7, "the layer after the last one that does (the reference's 7 for Llama-2-7B)", minimum=1)

    def inconsistency(self, prefix: str) -> str | None:
        if self.layers_from >= self.layers_to:
            return f"{prefix}layers_from={self.layers_from} must be below {prefix}layers_to={self.layers_to}"
        return None


class TokenPrepending(Method):
    """The untrained backbone under PromptEOL, the sentence's state prepended at early layers."""

    Config = TokenPrependingConfig
    summary = "Token prepending (Fu et al. 2024): the last token's state fed back before the text at early layers; no training"

    def baseline(self) -> tuple[str, dict[str, Any]] | None:
        """PromptEOL: the same templates without the placeholder, what the prepended state adds."""
        c = self.config
        sides = {"template": c.template, "document_template": c.document_template, "query_template": c.query_template}
        return "prompteol", {side: without_placeholder(t) for side, t in sides.items() if t}

    def check_backbone(self, backbone: Backbone) -> None:
        layers = len(backbone.model.get_decoder().layers)
        if self.config.layers_to > layers:
            raise HarnessError(
                f"method_args.layers_to={self.config.layers_to}: {backbone.spec.name} has {layers} layers; give at most {layers}."
            )
        c = self.config
        for side, template in (
            ("template", c.template),
            ("document_template", c.document_template),
            ("query_template", c.query_template),
        ):
            if template:
                check_placeholder(backbone.tokenizer, template, f"method_args.{side}")

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        c = self.config
        marker = backbone.tokenizer.eos_token
        return PrependingEncoder(
            backbone.model,
            backbone.tokenizer,
            settings=settings,
            layers=(c.layers_from, c.layers_to),
            **{
                side: template.replace(PLACEHOLDER, marker) if template else None
                for side, template in (
                    ("template", c.template),
                    ("document_template", c.document_template),
                    ("query_template", c.query_template),
                )
            },
        )

    def export_encoder(self, encoder: Encoder, model: Any, folder: Path) -> dict[str, Any]:
        assert isinstance(encoder, PrependingEncoder)
        return {"kind": "token-prepending", "pooling": "last", "layers": list(encoder.layers)}

    @classmethod
    def load_exported(
        cls, model: Any, tokenizer: Any, spec: dict[str, Any], folder: Path, settings: EncodeSettings
    ) -> Encoder:
        return PrependingEncoder(
            model,
            tokenizer,
            settings=settings,
            layers=tuple(spec["layers"]),
            template=spec["template"],
            document_template=spec.get("document_template"),
            query_template=spec.get("query_template"),
        )


def check_placeholder(tokenizer: Any, template: str, where: str) -> None:
    """The tokenizer must keep its EOS token whole where ``{pst}`` stands, and nowhere before it."""

    eos = tokenizer.eos_token
    if eos is None or tokenizer.eos_token_id is None:
        raise HarnessError(f"{where}: the tokenizer has no EOS token to stand for {PLACEHOLDER}.")
    start = len(special_tokens_around(tokenizer)[0])
    prefix = template.split(PLACEHOLDER)[0].replace(TEXT_SLOT, "")
    expected = start + len(tokenizer(prefix, add_special_tokens=False)["input_ids"])
    (row,) = PromptTokenizer(tokenizer, template.replace(PLACEHOLDER, eos), 2**31 - 1)(["x"])
    found = row.index(tokenizer.eos_token_id, start) if tokenizer.eos_token_id in row[start:] else None
    if found != expected:
        raise HarnessError(
            f"{where}: the tokenizer does not read its EOS token {eos!r} as one token where {PLACEHOLDER} stands, "
            "so the placeholder cannot be found; this tokenizer cannot run token-prepending."
        )


class PrependingEncoder(PooledEncoder):
    """Last-token pooling, the row's placeholder (its first EOS) overwritten before ``layers``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        settings: EncodeSettings,
        layers: tuple[int, int],
        template: str,
        document_template: str | None = None,
        query_template: str | None = None,
    ) -> None:
        super().__init__(
            model,
            tokenizer,
            pooling="last",
            settings=settings,
            template=template,
            document_template=document_template,
            query_template=query_template,
        )

        self.layers = layers
        self.placeholder = tokenizer.eos_token_id
        self.start = len(special_tokens_around(tokenizer)[0])  # the placeholder comes after the leading special tokens

    def cache_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """The pooled encoder's tensors (the layer range is among its facts): cacheable."""
        return super().cache_tensors()

    def encoding_facts(self) -> dict[str, Any]:
        return {**super().encoding_facts(), "prepending_layers": list(self.layers)}

    def embed_rows(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        import torch

        lengths = [len(row) for row in rows]
        places = [
            list(row).index(self.placeholder, self.start) for row in rows
        ]  # the template's: it comes before the text
        ids = torch.tensor([token for row in rows for token in row], dtype=torch.long, device=self.device)
        embeds = self.model.get_input_embeddings()(ids)
        starts = offsets(lengths)
        embeds = embeds.index_fill(0, torch.tensor([s + p for s, p in zip(starts, places)], device=self.device), 0.0)
        with prepending(self.decoder, self.layers, places, [n - 1 for n in lengths]):
            hidden = forward_rows(self.decoder, embeds, lengths, pack=False)
        return pool_rows(hidden, lengths, "last", [(0, n) for n in lengths])


@contextlib.contextmanager
def prepending(decoder: Any, layers: tuple[int, int], places: Sequence[int], lasts: Sequence[int]) -> Iterator[None]:
    """While inside: before each decoder layer in ``range(*layers)``, row r's state at ``places[r]``
    becomes its state at ``lasts[r]`` (the rows of a right-padded batch [B, T, d])."""
    import torch

    def carry(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        states = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        rows = torch.arange(states.shape[0], device=states.device)
        carried = states.clone()
        carried[rows, torch.tensor(list(places), device=states.device)] = states[
            rows, torch.tensor(list(lasts), device=states.device)
        ]
        if "hidden_states" in kwargs:
            return args, {**kwargs, "hidden_states": carried}
        return (carried, *args[1:]), kwargs

    handles = [decoder.layers[i].register_forward_pre_hook(carry, with_kwargs=True) for i in range(*layers)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
