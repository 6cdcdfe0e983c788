"""One adapter from a harness :class:`~harness.encoder.Encoder` to mteb's ``EncoderProtocol``.

mteb's STS evaluator encodes every row of both columns, duplicates included (Lee: 2,450 encodings of
50 documents), so the adapter memoises vectors by (prompt type, text) for the life of a run.

With ``instructions`` (``harness run --instructions``), queries and the texts of symmetric tasks
are first put in the e5 format with the task's instruction, as mteb's instruction models do;
documents stay bare. The memo's text is then the instructed text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mteb.models.model_meta import ModelMeta

    from harness.encoder import Encoder


def model_name(method: str, backbone: str) -> str:
    """The mteb model name of a run: its method and backbone."""
    return f"harness/{method}__{backbone.replace('/', '--')}"


def model_meta(
    *, name: str, revision: str, n_parameters: int | None, embed_dim: int | None, max_tokens: int | None,
    source: str, license: str | None = None, languages: list[str] | None = None,
    training_datasets: set[str] | None = None, experiment_kwargs: dict[str, Any] | None = None, use_instructions: bool = False,
) -> ModelMeta:
    """A real ``ModelMeta``: name from method and backbone, revision from the config hash."""
    from mteb.models.model_meta import ModelMeta

    unknown = dict.fromkeys(("loader", "release_date", "memory_usage_mb", "public_training_code", "public_training_data"))
    return ModelMeta(
        **unknown, name=name, revision=revision, languages=languages, n_parameters=n_parameters, max_tokens=max_tokens,
        embed_dim=embed_dim, license=license, open_weights=True, framework=["PyTorch"], similarity_fn_name="cosine",
        use_instructions=use_instructions, training_datasets=training_datasets, adapted_from=source, experiment_kwargs=experiment_kwargs,
    )


E5_FORMAT = "Instruct: {instruction}\nQuery: {text}"


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

    def __init__(self, encoder: Encoder, meta: ModelMeta, *, instructions: bool = False) -> None:
        self.encoder = encoder
        self._meta = meta
        self.instructions = instructions
        self._memo: dict[tuple[str | None, str], np.ndarray] = {}
        self.requested = 0  # texts mteb asked for
        self.computed = 0  # texts actually run through the model

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
        if self.instructions and kind != "document" and task_metadata is not None:
            instruction = task_instruction(task_metadata, kind)
            if instruction:
                texts = [E5_FORMAT.format(instruction=instruction, text=text) for text in texts]
        todo = list(dict.fromkeys(t for t in texts if (kind, t) not in self._memo))
        if todo:
            vectors = self.encoder.encode(todo, prompt_type=kind)
            self._memo.update(((kind, t), v) for t, v in zip(todo, vectors))
        self.requested += len(texts)
        self.computed += len(todo)
        if not texts:
            return np.zeros((0, self.encoder.embed_dim), dtype=np.float32)
        return np.stack([self._memo[(kind, t)] for t in texts])

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Cosine of every row of one with every row of the other; of two single vectors, one
        number (0-d: mteb's summarization evaluator calls ``float()`` on it)."""
        first, second = _unit(embeddings1), _unit(embeddings2)
        if first.ndim == 1 and second.ndim == 1:
            return np.asarray(first @ second)
        return np.atleast_2d(first) @ np.atleast_2d(second).T

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        return (_unit(embeddings1) * _unit(embeddings2)).sum(axis=-1)
