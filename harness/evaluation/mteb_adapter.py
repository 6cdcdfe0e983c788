"""One adapter from a harness :class:`~harness.encoder.Encoder` to mteb's ``EncoderProtocol``.

mteb's STS evaluator encodes every row of both columns, duplicates included (Lee: 2,450 encodings of
50 documents), so the adapter memoises vectors by (prompt type, text) for the life of a run. Texts
the memo lacks are looked up in the embedding cache across runs, where the run has one
(:mod:`harness.evaluation.embedding_cache`), and only the rest are encoded (and then cached). The
Under data-parallel evaluation only rank 0 has the cache, and every rank
takes rank 0's answer, so all ranks ask the sharded encoder for the same texts. The
memo holds at most ``MEMO_LIMIT_BYTES`` of vectors, the least recently used going first, so a long
corpus is never kept twice in memory (mteb's search index holds its vectors already).

With ``instructions`` (``harness run --instructions``), queries and the texts of symmetric tasks
are first put in the e5 format with the task's instruction, as mteb's instruction models do;
documents stay bare. The memo's text is then the instructed text.

With ``dim`` set (``harness run --dims``), mteb gets each vector cut to its first ``dim``
dimensions (every cosine re-normalises it; classifiers read it unnormalised, as they read whole
vectors, so a cut at the full width scores as the whole vector); the memo and the cache keep whole
vectors, so every dim is served from one encoding.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.ranks import broadcast_from_main

if TYPE_CHECKING:
    from mteb.models.model_meta import ModelMeta

    from harness.encoder import Encoder
    from harness.evaluation.contamination import Overlap
    from harness.evaluation.embedding_cache import EmbeddingCache


def model_name(method: str, backbone: str) -> str:
    """The mteb model name of a run: its method and backbone."""
    return f"harness/{method}__{backbone.replace('/', '--')}"


def model_meta(
    *,
    name: str,
    revision: str,
    n_parameters: int | None,
    embed_dim: int | None,
    max_tokens: int | None,
    source: str,
    license: str | None = None,
    languages: list[str] | None = None,
    training_datasets: set[str] | None = None,
    experiment_kwargs: dict[str, Any] | None = None,
    use_instructions: bool = False,
    release_date: str | None = None,
) -> ModelMeta:
    """A real ``ModelMeta``: name from method and backbone, revision from the config hash."""
    from mteb.models.model_meta import ModelMeta

    unknown = dict.fromkeys(("loader", "memory_usage_mb", "public_training_code", "public_training_data"))
    return ModelMeta(
        **unknown,
        release_date=release_date,
        name=name,
        revision=revision,
        languages=languages,
        n_parameters=n_parameters,
        max_tokens=max_tokens,
        embed_dim=embed_dim,
        license=license,
        open_weights=True,
        framework=["PyTorch"],
        similarity_fn_name="cosine",
        use_instructions=use_instructions,
        training_datasets=training_datasets,
        adapted_from=source,
        experiment_kwargs=experiment_kwargs,
    )


E5_FORMAT = "Instruct: {instruction}\nQuery: {text}"
MEMO_LIMIT_BYTES = 2 * 2**30


def task_instruction(task_metadata: Any, side: str | None) -> str:
    """The instruction mteb gives instruction models for a task: its metadata's ``prompt`` (one per
    side: this side's, '' where it has none), else the default of its task type ('' where none)."""
    from mteb.abstasks.abstask import get_abstask_prompt

    prompt = task_metadata.prompt
    if isinstance(prompt, dict):
        return prompt.get(side or "query") or ""
    return prompt or get_abstask_prompt(task_metadata.name)


def _unit(vectors: Any) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


class MtebEncoder:
    """mteb ``EncoderProtocol`` over a harness encoder, with a per-run memo by text."""

    def __init__(
        self, encoder: Encoder, meta: ModelMeta, *, instructions: bool = False, cache: EmbeddingCache | None = None
    ) -> None:
        self.encoder = encoder
        self._meta = meta
        self.instructions = instructions
        self.cache = cache
        self._memo: OrderedDict[tuple[str | None, str], np.ndarray] = OrderedDict()
        self.memo_limit = MEMO_LIMIT_BYTES // (4 * max(encoder.embed_dim, 1))  # vectors
        self.requested = 0  # texts mteb asked for
        self.computed = 0  # texts the memo lacked (answered by the cache or the model)
        self.dim: int | None = None  # mteb sees the first ``dim`` dims; None: whole vectors
        self.overlap: Overlap | None = None  # counts the texts asked for that the run trained on

    @property
    def mteb_model_meta(self) -> ModelMeta:
        return self._meta

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any = None,
        hf_split: str = "",
        hf_subset: str = "",
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        kind = None if prompt_type is None else str(getattr(prompt_type, "value", prompt_type))
        texts = [text for batch in inputs for text in batch["text"]]
        if self.overlap is not None and self.dim is None:  # the cut dims ask for the same texts again
            self.overlap.add(texts)
        if self.instructions and kind != "document" and task_metadata is not None:
            instruction = task_instruction(task_metadata, kind)
            if instruction:
                texts = [E5_FORMAT.format(instruction=instruction, text=text) for text in texts]
        vectors: dict[str, np.ndarray] = {}
        todo = []
        for text in dict.fromkeys(texts):
            vector = self._memo.get((kind, text))
            if vector is None:
                todo.append(text)
            else:
                self._memo.move_to_end((kind, text))
                vectors[text] = vector
        if todo:
            vectors.update(self._fill(kind, todo))
        self.requested += len(texts)
        self.computed += len(todo)
        if not texts:
            return np.zeros((0, self.dim or self.encoder.embed_dim), dtype=np.float32)
        whole = np.stack([vectors[t] for t in texts])
        return whole if self.dim is None else np.ascontiguousarray(whole[:, : self.dim])

    def _fill(self, kind: str | None, todo: list[str]) -> dict[str, np.ndarray]:
        """The vectors of ``todo``: from the cache where it has them, else computed (and cached); memoised."""
        found = self.cache.lookup(kind, todo) if self.cache is not None else {}
        if getattr(
            self.encoder, "distributed", False
        ):  # rank 0 reads the cache; every rank must encode the same texts
            found = broadcast_from_main(found)
        missing = [t for t in todo if t not in found]
        if missing:
            computed = self.encoder.encode(missing, prompt_type=kind)
            found.update(zip(missing, computed))
            if self.cache is not None:
                self.cache.save(kind, missing, computed)
        for text in todo:
            self._memo[(kind, text)] = found[text]
        while len(self._memo) > self.memo_limit:
            self._memo.popitem(last=False)
        return found

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Cosine of every row of one with every row of the other; of two single vectors, one
        number (0-d: mteb's summarization evaluator calls ``float()`` on it)."""
        first, second = _unit(embeddings1), _unit(embeddings2)
        if first.ndim == 1 and second.ndim == 1:
            return np.asarray(first @ second)
        return np.atleast_2d(first) @ np.atleast_2d(second).T

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        return (_unit(embeddings1) * _unit(embeddings2)).sum(axis=-1)
