"""Evaluate an encoder on tasks through mteb, and hand each task's scores to whoever records them."""

from __future__ import annotations

import importlib.util
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console

from harness import faults, ranks
from harness.encoder import EncodeSettings
from harness.errors import HarnessError
from harness.evaluation.contamination import Overlap, changed_file
from harness.evaluation.contamination import training_index as build
from harness.evaluation.data_parallel import ShardedEncoder
from harness.evaluation.embedding_cache import CacheSettings, CacheUnavailable, EmbeddingCache
from harness.evaluation.fingerprint import fingerprint
from harness.evaluation.items import task_items
from harness.evaluation.mteb_adapter import MtebEncoder, model_meta, model_name
from harness.evaluation.mteb_run import score_task
from harness.evaluation.quick_check import texts_to_encode
from harness.evaluation.task_loading import LoadedTask
from harness.evaluation.warm import DeferredBackbone, DeferredEncoder, Known, StaleLoadKey, forget, remember
from harness.telemetry.phases import measure
from harness.telemetry.progress import encoding_progress

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask
    from rich.console import Console

    from harness.evaluation.contamination import TrainingData, TrainingIndex
    from harness.evaluation.warm import DeferredBackbone
    from harness.method import Method
    from harness.model.backbones import Backbone
    from harness.telemetry.phases import Phase


class ScoreSink(Protocol):
    """Where an evaluation's results go (the run's recorder)."""

    def model(self, **facts: int) -> None: ...

    def score(
        self,
        task: str,
        version: str,
        task_type: str,
        main_metric: str,
        main_score: float,
        details: dict,
        task_result: dict | None = None,
        items: dict | None = None,
        dim: int = 0,
        contamination: dict | None = None,
    ) -> None:
        """One task's scores, with its data's version, mteb's type of the task (``STS``, ``Retrieval``, ...),
        its per-item results (:mod:`harness.evaluation.items`), the embedding's first ``dim``
        dims it was computed on (0: the whole vector) and how many of its texts the run trained on
        (:mod:`harness.evaluation.contamination`; None: an untrained run, or not measured)."""

    def timing(self, phase: Phase, details: dict | None = None) -> None: ...


@dataclass
class Evaluation:
    """How a run's encoder is evaluated, and the name mteb's results carry."""

    method: str
    backbone: str
    source: str
    revision: str  # the run's config hash, cut: mteb's model revision
    batch_size: int
    max_length: int
    limit: int | None = None  # --limit: the first N items of each evaluated split
    instructions: bool = False  # --instructions: e5-style task instructions on queries and symmetric texts
    cache: CacheSettings = field(default_factory=CacheSettings)  # --no-cache, --cache-limit-gb: not part of the config
    keep_items: bool = True  # per-item results (harness.evaluation.items); dev evaluations during training keep none
    dims: tuple[int, ...] = ()  # --dims: each task also scored on the vectors' first N dims, re-normalised
    training: TrainingData | None = None  # a trained run's data: each task's overlap with it is measured
    load_key: str | None = None  # the model's load key (harness.evaluation.warm): its fingerprint is kept under it


def task_scores(task_result: Any) -> tuple[float, dict, dict]:
    """(main score, all numbers, the whole result) from one mteb ``TaskResult``: the main score
    is mteb's own ``get_score()`` (the mean of the main score over evaluated splits and subsets)."""
    whole = json.loads(json.dumps(task_result.to_dict(), default=str))  # dates as ISO strings
    if not any(whole["scores"].values()):
        raise HarnessError(f"mteb returned no scores for task {task_result.task_name}.")
    main = float(task_result.get_score())
    if not math.isfinite(main):
        raise HarnessError(
            f"task {task_result.task_name}: the main score is {main} (e.g. every embedding equal); it was not recorded."
        )
    return main, whole["scores"], whole


def search_model(adapter: Any, task: AbsTask) -> tuple[Any, str | None]:
    """What mteb evaluates ``task`` with, and how a retrieval or reranking task searches: mteb's
    own search wrapper over the adapter with its FAISS index where faiss is installed ("faiss"),
    else the adapter, which mteb wraps for its exact search in torch ("exact"). Other tasks: the
    adapter, and None."""
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    if not isinstance(task, AbsTaskRetrieval) and task.metadata.type not in (
        "Retrieval",
        "Reranking",
    ):  # an aggregate of them too
        return adapter, None
    if importlib.util.find_spec("faiss") is None:
        return adapter, "exact"
    from mteb.models.search_encoder_index.search_indexes.faiss_search_index import FaissSearchIndex
    from mteb.models.search_wrappers import SearchEncoderWrapper

    return SearchEncoderWrapper(adapter, index_backend=FaissSearchIndex(adapter)), "faiss"


def encoding_cost(phase: Phase, requested: int, cache_hits: int = 0) -> dict[str, float]:
    """What a task's encoding cost beside its time: the texts mteb asked for, how many of them the
    run's memo and the embedding cache answered, and the texts and tokens encoded per second."""
    cost: dict[str, float] = {
        "texts_requested": requested,
        "memo_hits": requested - cache_hits - (phase.items or 0),
        "cache_hits": cache_hits,
    }
    if phase.seconds > 0 and phase.items:  # none encoded (all from the memo or cache): no rate to tell
        cost.update(texts_per_s=(phase.items or 0) / phase.seconds, tokens_per_s=(phase.tokens or 0) / phase.seconds)
    return cost


def open_cache(
    settings: CacheSettings,
    encoder: Any,
    method: Method,
    method_name: str,
    backbone: Any = None,
    load_key: str | None = None,
) -> tuple[EmbeddingCache | None, str]:
    """The run's view of the embedding cache, and what its timings say of it: the key's first 16
    hex digits, or why the cache is off. A deferred backbone's cache is opened under the
    fingerprint its load key recalls; a loaded encoder's fingerprint is computed (every weight
    hashed), and kept under ``load_key`` for warm runs to come (:mod:`harness.evaluation.warm`)."""

    if not settings.enabled:
        return None, "off (--no-cache)"
    if isinstance(backbone, DeferredBackbone):
        key = backbone.known.fingerprint
    else:
        try:
            key = fingerprint(encoder, method, method_name)
        except Exception as exc:  # a plug-in's tensors or options that cannot be hashed: no cache, never a failed run
            return None, f"off (the encoder could not be fingerprinted: {type(exc).__name__}: {exc})"
    if key is None:
        return None, f"off ({type(encoder).__name__} does not name the tensors its vectors come from)"
    try:
        cache = EmbeddingCache.open(settings, key, encoder.embed_dim)
    except CacheUnavailable as exc:
        return None, f"off ({exc})"
    if load_key is not None and not isinstance(backbone, DeferredBackbone):
        try:
            remember(cache.store, load_key, Known(key, encoder.embed_dim, backbone.n_parameters))
        except Exception:  # the cache works; only the next run's shortcut is lost
            pass
    return cache, key[:16]


def training_index(
    training: TrainingData, cache: CacheSettings, sink: ScoreSink, console: Console
) -> TrainingIndex | None:
    """The index of the run's training texts (kept beside the embedding cache, unless it is off),
    its cost recorded; None (with a warning) where the recorded files are gone or changed, or cannot
    be read: the scores then say nothing of overlap."""

    with measure("contamination:index") as phase:
        problem = changed_file(training)
        try:
            index = None if problem else build(training, cache.folder / "contamination" if cache.enabled else None)
        except HarnessError as exc:
            index, problem = None, str(exc)
    if index is None:
        console.print(
            f"  warning: overlap with the training texts not measured: {problem}", highlight=False, soft_wrap=True
        )
        return None
    phase.items = len(index.exact)
    sink.timing(
        phase, details={"training_texts": len(index.exact), "ngrams": len(index.ngrams), "index": index.key[:12]}
    )
    return index


def evaluate(
    method: Method,
    backbone: Backbone | DeferredBackbone,
    tasks: Sequence[LoadedTask],
    how: Evaluation,
    sink: ScoreSink,
    console: Console,
) -> None:
    """Evaluate ``method``'s encoder on ``tasks`` through mteb and give each task's scores to ``sink``.
    A :class:`~harness.evaluation.warm.DeferredBackbone` is loaded only if a text is missing
    from the embedding cache.

    In a process group every rank calls this: each encodes its shard of the texts
    (:mod:`harness.evaluation.data_parallel`) on its share of the cores, all compute the same
    scores, and only rank 0 prints; ``sink`` should record on rank 0 alone. Rank 0 alone reads and
    fills the embedding cache, and tells the others what it found. A task that fails on one rank
    fails on all (:class:`~harness.ranks.RankFailed`)."""
    import torch

    info = ranks.world()
    settings = EncodeSettings(batch_size=how.batch_size, max_length=how.max_length)
    deferred = isinstance(backbone, DeferredBackbone)
    encoder = (
        DeferredEncoder(backbone, method, how.method, settings)
        if deferred
        else method.build_encoder(backbone, settings)
    )
    if any(d > encoder.embed_dim for d in how.dims):
        raise HarnessError(
            f"--dims {','.join(map(str, how.dims))}: the encoder's vectors have {encoder.embed_dim} dims; each dim must be at most that."
        )
    sink.model(n_parameters=backbone.n_parameters, embed_dim=encoder.embed_dim)
    meta = model_meta(
        name=model_name(how.method, how.backbone),
        revision=how.revision,
        n_parameters=backbone.n_parameters,
        embed_dim=encoder.embed_dim,
        max_tokens=how.max_length,
        source=how.source,
        use_instructions=how.instructions,
    )
    cache, cache_state = None, "rank 0's"
    if info.is_main:
        with measure("cache:key") as key_phase:  # the fingerprint hashes every weight: its cost is recorded
            cache, cache_state = open_cache(how.cache, encoder, method, how.method, backbone, how.load_key)
        if how.cache.enabled:
            sink.timing(key_phase, details={"cache": cache_state})
            if cache is None:
                console.print(f"  warning: embedding cache {cache_state}", highlight=False, soft_wrap=True)
    if info.enabled:
        encoder = ShardedEncoder(encoder)
        if backbone.device.type == "cpu":
            torch.set_num_threads(ranks.cores_per_process())
        if not info.is_main:
            console = Console(quiet=True)
    index = (
        training_index(how.training, how.cache, sink, console) if info.is_main and how.training is not None else None
    )
    adapter = MtebEncoder(encoder, meta, instructions=how.instructions, cache=cache)
    try:
        for loaded in tasks:
            adapter.overlap = (
                Overlap(index) if index is not None else None
            )  # counted on the whole vectors' pass, kept for the dims
            for dim in (None, *how.dims):
                adapter.dim = dim
                _evaluate_task(loaded, adapter, backbone, how, sink, console, cache_state)
                if deferred and encoder.load_phase is not None:  # the model was loaded for this task's missing texts
                    sink.timing(encoder.load_phase)
                    encoder.load_phase = None
    except StaleLoadKey as exc:
        if cache is not None:
            forget(cache.store, exc.key)
        raise
    finally:
        if cache is not None:
            cache.close()


def _evaluate_task(
    loaded: LoadedTask,
    adapter: Any,
    backbone: Backbone,
    how: Evaluation,
    sink: ScoreSink,
    console: Console,
    cache_state: str,
) -> None:
    import torch

    info = ranks.world()
    encoder, cache, dim = adapter.encoder, adapter.cache, adapter.dim
    name, task = loaded.spec.name, loaded.task
    shown = name if dim is None else f"{name} @{dim} dims"
    before_texts, before_tokens, before_asked = encoder.texts_encoded, encoder.tokens_encoded, adapter.requested
    before_hits, before_corrupt = (cache.hits, cache.corrupt) if cache is not None else (0, 0)
    before_ranks = list(encoder.texts_per_rank) if info.enabled else []
    error = None
    try:
        with tempfile.TemporaryDirectory(prefix="harness-predictions-") as predictions:
            with measure(f"evaluate:{name}" if dim is None else f"dims:{name}@{dim}", backbone.device) as phase:
                with encoding_progress(console, shown, texts_to_encode(task)) as advance:
                    encoder.progress = advance
                    model, search = search_model(adapter, task)
                    result = score_task(
                        model,
                        task,
                        batch_size=how.batch_size,
                        prediction_folder=Path(predictions) if how.keep_items else None,
                    )
            main_metric = task.metadata.main_score
            main_score, details, whole = task_scores(result)
            items = task_items(task, Path(predictions), details) if info.is_main and how.keep_items else None
    except ranks.RankFailed:
        raise  # every rank knows already
    except Exception as exc:
        error = exc
    ranks.agree(error)  # a task fails on every rank or on none
    phase.items = encoder.texts_encoded - before_texts
    phase.tokens = encoder.tokens_encoded - before_tokens
    faults.point("evaluate")
    overlap = adapter.overlap.result() if adapter.overlap is not None else None
    sink.score(
        name,
        loaded.version(how.limit),
        task.metadata.type,
        main_metric,
        main_score,
        details,
        whole,
        items,
        dim=dim or 0,
        contamination=overlap,
    )
    cost = {"threads": torch.get_num_threads()} if backbone.device.type == "cpu" else {}
    if search is not None:
        cost["search"] = search
    if info.enabled:
        cost.update(
            world_size=info.world_size, texts_per_rank=[a - b for a, b in zip(encoder.texts_per_rank, before_ranks)]
        )
    hits = (cache.hits - before_hits) if cache is not None else 0
    cost["cache"] = cache_state if cache is None or cache.usable else "off (failed during the run)"
    if cache is not None and cache.corrupt > before_corrupt:
        cost["cache_damaged"] = cache.corrupt - before_corrupt  # entries that failed their check, recomputed
    sink.timing(phase, details={**cost, **encoding_cost(phase, adapter.requested - before_asked, hits)})
    if cache is not None and (warning := cache.take_warning()):
        console.print(f"  {warning}", highlight=False, soft_wrap=True)
    spec = loaded.spec
    left = f"; {spec.left_out} question(s) left out by the {spec.protocol!r} protocol" if spec.left_out else ""
    seen = (
        f"; {100 * overlap['any']:.1f}% of its texts are in the training texts" if overlap and overlap["any"] else ""
    )
    console.print(
        f"  {shown}: {main_metric} = {100 * main_score:.2f}  ({phase.seconds:.1f} s{left}{seen})", highlight=False
    )
