"""The encoder contract and the shared machinery for token-level encoders.

An :class:`Encoder` maps texts to a float32 array, one row per text. :class:`TokenEncoder` holds
what every LLM encoder needs: prompt templates whose text part alone is truncated (one for
symmetric tasks, one for the queries and one for the documents of retrieval and reranking tasks;
the last two default to the first: mteb says which side it encodes through ``prompt_type``),
length-sorted batches (little padding),
``torch.inference_mode`` and counters for telemetry. Subclasses say how rows of token ids become
vectors (:meth:`TokenEncoder.embed_rows`), or only how a padded batch does
(:meth:`TokenEncoder.embed_batch`) when they pool whole rows.

A template holds ``{text}`` once or more (Echo embeddings write it twice) and may mark the span
that is pooled with ``{pool}`` ... ``{/pool}`` (``Rewrite: {text}, again: {pool}{text}{/pool}``);
without marks the whole row is pooled. A template with one ``{text}`` and no marks is tokenised as
one string (as ever); any other is tokenised piece by piece, so every copy of the text has the
same ids and never merges with the template's punctuation (Echo's reference code does the same).
:class:`TokenRow` carries a row's ids and its pooled span.
"""

from __future__ import annotations

import re
from abc import ABC
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from harness.errors import HarnessError
from harness.model.attention import attention_mode
from harness.model.packing import TokenRow, embed_rows, span_of
from harness.options import POOL_END, POOL_START, TEXT_SLOT, template_problem

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


DOCUMENT = "document"  # mteb's PromptType.document: the corpus side of retrieval and reranking
QUERY = "query"  # mteb's PromptType.query; None: a symmetric task (STS, classification, clustering...)

#: Part of every embedding-cache key: bump it whenever the code that turns a text into a vector
#: changes (templating, truncation, batching, pooling), so vectors cached before are never reused.
ENCODING_VERSION = 2


@dataclass(frozen=True)
class EncodeSettings:
    batch_size: int = 32
    max_length: int = 512


class Encoder(Protocol):
    """What mteb evaluates: texts in, one float32 row per text out."""

    embed_dim: int
    max_length: int

    def encode(self, texts: Sequence[str], *, prompt_type: str | None = None) -> np.ndarray: ...


def check_template(template: str, where: str = "template") -> str:
    problem = template_problem(template)
    if problem:
        raise HarnessError(f"{where} {template!r} {problem}.")
    return template


def text_span(template: str) -> str:
    """``template`` pooling over its (last) ``{text}`` only: the text's own tokens, instruction
    excluded (as LLM2Vec and GritLM pool). A template that marks a span already is kept."""
    if POOL_START in template:
        return template
    head, _, tail = template.rpartition(TEXT_SLOT)
    return f"{head}{POOL_START}{TEXT_SLOT}{POOL_END}{tail}"


def encoder_templates(template: str, document: str, query: str, *, text_only: bool) -> dict[str, str | None]:
    """A pooled encoder's three templates from a method's options ('' = the symmetric template
    stands in), each pooling the text's own tokens where ``text_only``."""
    span = text_span if text_only else (lambda t: t)
    return {
        "template": span(template),
        "document_template": span(document) if document else None,
        "query_template": span(query) if query else None,
    }


def plain_template(template: str) -> str:
    """``template`` without its span marks (what a text reads like)."""
    return template.replace(POOL_START, "").replace(POOL_END, "")


def special_tokens_around(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text (``add_special_tokens=True``)."""
    probe = "x"
    with_special = tokenizer(probe)["input_ids"]
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    start = next(i for i in range(len(with_special)) if with_special[i : i + len(bare)] == bare)
    return with_special[:start], with_special[start + len(bare) :]


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists into (input_ids, attention_mask)."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids.to(device), mask.to(device)


class PromptTokenizer:
    """Token ids of templated texts, at most ``max_length``: only the text part is ever cut."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, template: str, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.template = check_template(template)
        self.max_length = max_length
        self.whole = template.count(TEXT_SLOT) == 1 and POOL_START not in template
        if not self.whole:
            self._pieces = _template_pieces(tokenizer, template)
            self._fixed = sum(len(piece) for piece in self._pieces if isinstance(piece, list))
            self._copies = template.count(TEXT_SLOT)
            if self._fixed + self._copies > max_length:
                raise HarnessError(f"max_length={max_length} cannot hold the template {template!r}.")

    @property
    def fixed_tokens(self) -> int:
        """Tokens the template takes around its texts, special tokens included."""
        if self.whole:
            return len(self.tokenizer(self._apply(""), add_special_tokens=True)["input_ids"])
        return self._fixed

    def _apply(self, text: str) -> str:
        return self.template.replace(TEXT_SLOT, text)

    def __call__(self, texts: Sequence[str]) -> list[TokenRow]:
        if not self.whole:
            return [self._never_empty(row) for row in self._pieced(texts)]
        rows = self.tokenizer([self._apply(t) for t in texts], add_special_tokens=True)["input_ids"]
        return [
            self._never_empty(TokenRow(row if len(row) <= self.max_length else self._truncate(text)))
            for text, row in zip(texts, rows)
        ]

    def _never_empty(self, row: TokenRow) -> TokenRow:
        """A row with no token at all (an empty text under ``{text}`` with a tokenizer that adds no
        special token) reads the EOS token (else pad): a pass needs one token to pool."""
        if row:
            return row
        eos = self.tokenizer.eos_token_id
        return TokenRow([eos if eos is not None else self.tokenizer.pad_token_id])

    def _pieced(self, texts: Sequence[str]) -> list[TokenRow]:
        """Rows of a template with spans or several copies: each piece tokenised alone."""
        keep = (self.max_length - self._fixed) // self._copies
        text_ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
        rows = []
        for ids in text_ids:
            row: list[int] = []
            start = end = None
            for piece in self._pieces:
                if piece is POOL_START:
                    start = len(row)
                elif piece is POOL_END:
                    end = len(row)
                else:
                    row += ids[:keep] if piece is TEXT_SLOT else piece
            rows.append(TokenRow(row, (start, end) if start is not None else None))
        return rows

    def _truncate(self, text: str) -> list[int]:
        text_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        keep = len(text_ids)
        while True:
            cut = self.tokenizer.decode(text_ids[:keep])
            row = self.tokenizer(self._apply(cut), add_special_tokens=True)["input_ids"]
            if len(row) <= self.max_length:
                return row
            if keep == 0:
                raise HarnessError(f"max_length={self.max_length} cannot hold the template {self.template!r}.")
            keep = max(0, keep - (len(row) - self.max_length))


def _template_pieces(tokenizer: PreTrainedTokenizerBase, template: str) -> list[Any]:
    """The template as token id lists (its literal parts, and the tokenizer's special tokens
    around it) with the markers ``TEXT_SLOT``, ``POOL_START`` and ``POOL_END`` between them."""

    before, after = special_tokens_around(tokenizer)
    marks = {TEXT_SLOT: TEXT_SLOT, POOL_START: POOL_START, POOL_END: POOL_END}
    pieces: list[Any] = [list(before)]
    for part in re.split("(" + "|".join(re.escape(m) for m in marks) + ")", template):
        if part in marks:
            pieces.append(marks[part])
        elif part:
            pieces.append(tokenizer(part, add_special_tokens=False)["input_ids"])
    return pieces + [list(after)]


def model_facts(model: PreTrainedModel) -> dict[str, Any]:
    """What of a model decides its outputs besides its tensors: its config, attention
    implementation and mode (causal or bidirectional), dtype and training mode, the config of any
    PEFT adapters, and each adapter layer's state (active, disabled or merged adapters and their
    scaling: none is a tensor)."""

    peft = getattr(model, "peft_config", None) or {}
    layers = [
        [
            name,
            layer.disable_adapters,
            list(layer.merged_adapters),
            list(layer.active_adapters),
            dict(getattr(layer, "scaling", {})),
        ]
        for name, layer in model.named_modules()
        if hasattr(layer, "merged_adapters") and hasattr(layer, "disable_adapters")
    ]
    return {
        "model_config": model.config.to_json_string(use_diff=False),
        "attention": getattr(model.config, "_attn_implementation", None),
        "attention_mode": attention_mode(model),
        "dtype": str(next(model.parameters()).dtype),
        "training": model.training,
        "adapters": {name: config.to_dict() for name, config in peft.items()},
        "active_adapters": list(getattr(model, "active_adapters", None) or []) if peft else [],
        "adapter_layers": layers,
    }


def named_tensors(module: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every parameter (each shared one once) and every buffer, persistent or not (rotary
    frequencies are not in ``state_dict``), by name."""
    yield from module.named_parameters()
    yield from (("buffer:" + name, buffer) for name, buffer in module.named_buffers())


ProgressHook = Callable[[int], None]


class TokenEncoder(ABC):  # noqa: B024 (abstract in effect: a subclass implements embed_rows or embed_batch)
    """Template, truncation, length-sorted batching; subclasses implement :meth:`embed_batch`."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        embed_dim: int,
        device: torch.device,
        settings: EncodeSettings,
        template: str = TEXT_SLOT,
        document_template: str | None = None,
        query_template: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.embed_dim = embed_dim
        self.device = device
        self.batch_size = settings.batch_size
        self.max_length = settings.max_length
        self.tokenize = PromptTokenizer(tokenizer, template, settings.max_length)
        self.tokenize_document = self._side(document_template)
        self.tokenize_query = self._side(query_template)
        self.progress: ProgressHook | None = None  # called with the number of texts done
        self.texts_encoded = 0
        self.tokens_encoded = 0

    def _side(self, template: str | None) -> PromptTokenizer:
        if template is None or template == self.tokenize.template:
            return self.tokenize
        return PromptTokenizer(self.tokenizer, template, self.max_length)

    # -- what decides the vectors (the embedding cache's key) --------------------------------
    def encoding_facts(self) -> dict[str, Any]:
        """Everything besides the tensors that decides this encoder's vectors; subclasses add theirs."""
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "templates": [self.tokenize.template, self.tokenize_query.template, self.tokenize_document.template],
            "max_length": self.max_length,
            "device": self.device.type,
        }

    def cache_tensors(self) -> Iterator[tuple[str, torch.Tensor]] | None:
        """Every tensor the vectors are computed from, by name; None (this base class): unknown,
        so the vectors are never cached. A subclass that defines :meth:`embed_rows` or
        :meth:`embed_batch` defines this too, or its vectors are not cached (see
        :mod:`harness.evaluation.fingerprint`)."""
        return None

    # -- encoding --------------------------------------------------------------------------
    def embed_rows(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Vectors (len(rows) x embed_dim) of token rows, each pooled over its span. By default
        the rows are right-padded into :meth:`embed_batch`, which pools whole rows."""
        whole = [span_of(row) == (0, len(row)) for row in rows]
        if not all(whole):
            raise HarnessError(
                f"{type(self).__name__} pools whole rows (embed_batch); its templates cannot mark a span with {POOL_START}."
            )
        ids, mask = pad_batch(rows, self.tokenizer.pad_token_id, self.device)
        return self.embed_batch(ids, mask)

    def embed_batch(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Vectors (batch x embed_dim) for a right-padded batch (encoders of whole rows)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither embed_rows nor embed_batch.")

    def side_tokenizer(self, prompt_type: str | None) -> PromptTokenizer:
        """The tokenizer of the side mteb encodes: documents, queries, or symmetric texts."""
        return {DOCUMENT: self.tokenize_document, QUERY: self.tokenize_query}.get(prompt_type or "", self.tokenize)

    def encode(self, texts: Sequence[str], *, prompt_type: str | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return self.encode_rows(self.side_tokenizer(prompt_type)(texts))

    def encode_rows(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Vectors of token id rows (as :meth:`side_tokenizer` gives them), in their order:
        batched longest first, counted, and reported to :attr:`progress`."""
        import torch

        out = np.zeros((len(rows), self.embed_dim), dtype=np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]), reverse=True)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                vectors = self.embed_rows([rows[i] for i in chunk])
                out[chunk] = vectors.float().cpu().numpy()
                self.tokens_encoded += sum(len(rows[i]) for i in chunk)
                self.texts_encoded += len(chunk)
                if self.progress:
                    self.progress(len(chunk))
        return out


class PooledEncoder(TokenEncoder):
    """Mean of the last hidden states over each row's pooled span (by default the whole row), or
    the span's last state, through :func:`harness.model.packing.embed_rows`: the path training
    stages embed through too."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        pooling: Literal["mean", "last"],
        settings: EncodeSettings,
        template: str = TEXT_SLOT,
        document_template: str | None = None,
        query_template: str | None = None,
    ) -> None:
        super().__init__(
            tokenizer,
            embed_dim=model.config.hidden_size,
            device=next(model.parameters()).device,
            settings=settings,
            template=template,
            document_template=document_template,
            query_template=query_template,
        )
        if pooling not in ("mean", "last"):
            raise HarnessError(f"pooling {pooling!r} must be 'mean' or 'last'.")
        self.model = model
        self.decoder = model.get_decoder()  # the transformer body: no LM head, final norm applied
        self.pooling = pooling

    def encoding_facts(self) -> dict[str, Any]:
        return {**super().encoding_facts(), "pooling": self.pooling, **model_facts(self.model)}

    def cache_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        return named_tensors(self.decoder)

    def embed_rows(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        return embed_rows(self.model, rows, self.pooling)
