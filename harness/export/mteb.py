"""Recorded runs written in mteb's own result layout, so that ``mteb.ResultCache(DIR)`` reads them,
laid out as the MTEB results repository takes a new submission.

A model is ``harness/<method>__<backbone>`` and its revision the run's config hash (12 characters,
as at evaluation). The first run given of each model and revision is its submission: one
``<Task>.json`` per task (mteb's whole ``TaskResult``, as recorded when the run evaluated it) and
``model_meta.json`` in ``DIR/results/harness__<method>__<backbone>/<revision>/``. Every other run
of that revision (another seed) goes under ``experiments/<experiment>/``, the experiment named
after the method options that differ from the method's defaults and the seed, so ablations and
seeds never overwrite each other; scores of the vectors' first N dims (``harness run --dims``)
too, as mteb writes a model loaded with ``embed_dim=N`` (``embed_dim`` N in the model meta and
among the experiment's options). :func:`model_meta_source` writes the same metadata as a Python
module whose loader reads an exported encoder folder (``harness export RUN --mteb DIR --model
ENC``), the shape of a model implementation in mteb.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.evaluation.mteb_adapter import model_meta, model_name
from harness.registry import get_method

if TYPE_CHECKING:
    from mteb.models.model_meta import ModelMeta

# what is known of the aliased backbones (SPDX licences; mteb language codes)
BACKBONE_FACTS: dict[str, dict[str, Any]] = {
    "smollm2-135m": {"license": "apache-2.0", "languages": ["eng-Latn"]},
    "smollm2-360m": {"license": "apache-2.0", "languages": ["eng-Latn"]},
    "llama2-7b": {"license": "https://ai.meta.com/llama/license/", "languages": ["eng-Latn"]},
    "mistral-7b": {"license": "apache-2.0", "languages": ["eng-Latn"]},
    "qwen2.5-0.5b": {"license": "apache-2.0", "languages": None},
    "tinyllama-1.1b": {"license": "apache-2.0", "languages": ["eng-Latn"]},
}


def experiment_options(record: dict[str, Any]) -> dict[str, Any]:
    """The run's method options that differ from the method's defaults, and its seed."""

    given = dict(record["config"].get("method_args", {}))
    try:
        defaults = asdict(get_method(record["method"]).Config())
    except HarnessError:  # a plug-in that is not installed here: keep every option
        defaults = {}
    changed = {k: v for k, v in sorted(given.items()) if defaults.get(k, object()) != v}
    return {**changed, "seed": record["seed"]}


def training_datasets(record: dict[str, Any]) -> set[str] | None:
    """The evaluated tasks some of whose texts are in the run's training texts, as measured with
    each score (:mod:`harness.evaluation.contamination`): an empty set where none are (zero-shot
    on every task); None for an untrained run, or where a score was never measured (unknown)."""
    if not record["config"].get("train_data") or record.get("trainable_parameters") == 0:
        return None
    whole = [score for score in record.get("score_details", []) if not score.get("dim")]
    if not whole or any(score.get("contamination") is None for score in whole):
        return None
    return {score["task"] for score in whole if score["contamination"]["any"]}


def run_model_meta(record: dict[str, Any], dim: int = 0, *, experiment: bool = True) -> ModelMeta:
    """The run's mteb ``ModelMeta``: an experiment (its options and seed, and ``embed_dim`` for its
    scores at ``dim`` dims, as mteb names a model loaded with ``embed_dim=dim``), or with
    ``experiment`` false the model itself, as a submission names it."""

    return model_meta(
        name=model_name(record["method"], record["backbone"]),
        revision=record["config_hash"][:12],
        embed_dim=dim or record["embed_dim"],
        experiment_kwargs={**experiment_options(record), **({"embed_dim": dim} if dim else {})}
        if experiment
        else None,
        **meta_facts(record),
    )


def meta_facts(record: dict[str, Any]) -> dict[str, Any]:
    """What the run's record tells of the model for mteb: its size, length, licence, languages,
    training data, source and release date (the day the run ended)."""

    facts = BACKBONE_FACTS.get(record["backbone"], {})
    ended = record.get("ended_at")
    return {
        "n_parameters": record["n_parameters"],
        "max_tokens": record["config"].get("max_length"),
        "source": record["config"].get("backbone_resolved", {}).get("source", record["backbone"]),
        "license": facts.get("license"),
        "languages": facts.get("languages"),
        "training_datasets": training_datasets(record),
        "use_instructions": bool(record["config"].get("instructions")),
        "release_date": datetime.datetime.fromtimestamp(ended, datetime.timezone.utc).date().isoformat()
        if ended
        else None,
    }


PROVENANCE = (
    ".harness-run"  # in each folder written: the run whose results it holds (JSON; not a *.json, which mteb reads)
)


def check_exportable(store: Any, run_ids: list[int]) -> list[dict[str, Any]]:
    """The runs' records, each finished, with mteb's TaskResults kept, and not a quick check."""
    records = [store.get_run(run_id) for run_id in run_ids]
    for record in records:
        missing = [task for task, result in store.task_results(record["run_id"]).items() if result is None]
        if missing:
            raise HarnessError(
                f"run #{record['run_id']} was recorded before the harness kept mteb's TaskResults (schema v5), "
                f"so {', '.join(missing)} cannot be written in mteb's layout; `harness eval {record['run_id']} "
                "--tasks ...` evaluates it again and records them."
            )
        if record["status"] != "finished":
            raise HarnessError(
                f"run #{record['run_id']} is {record['status']}: only finished runs are exported to mteb."
            )
        if record["config"].get("limit") is not None:
            raise HarnessError(
                f"run #{record['run_id']} is a quick check (--limit {record['config']['limit']}): its scores are of each task's first "
                "items, not the task; mteb results come from full runs."
            )
    return records


def export(store: Any, run_ids: list[int], folder: Path) -> list[Path]:
    """Write the runs' recorded TaskResults under ``folder``; the result files written. Every
    target folder is planned first: two runs never share one, and a folder already holding another
    run's (or anyone's) results is refused, so no file is overwritten and no folder mixes runs."""

    from mteb.cache import ResultCache
    from mteb.results import TaskResult

    records = check_exportable(store, run_ids)
    cache = ResultCache(folder)
    planned: list[tuple[dict[str, Any], Any, list[Any]]] = []
    owners: dict[Path, dict[str, Any]] = {}
    submitted: set[tuple[str, str, str]] = set()  # (method, backbone, revision) whose first run is its submission
    for record in records:
        for dim in store.score_dims(record["run_id"]):
            model = (record["method"], record["backbone"], record["config_hash"][:12])
            first = dim == 0 and model not in submitted
            submitted.add(model)
            meta = run_model_meta(record, dim, experiment=not first)
            results = [TaskResult.from_dict(whole) for whole in store.task_results(record["run_id"], dim).values()]
            target = cache.get_task_result_path(results[0].task_name, meta).parent if results else None
            if target is None:
                continue
            other = owners.get(target)
            if other is not None and other["run_id"] != record["run_id"]:
                raise HarnessError(
                    f"runs #{other['run_id']} and #{record['run_id']} would both write {target} (the same config and seed); "
                    "export them in two commands, into two folders."
                )
            owners[target] = record
            _refuse_foreign(target, record)
            planned.append((record, meta, results))
    written = []
    for record, meta, results in planned:
        for result in results:
            cache.save_to_cache(result, meta)
            path = cache.get_task_result_path(result.task_name, meta)
            (path.parent / PROVENANCE).write_text(
                json.dumps({"run_id": record["run_id"], "run_uuid": record["uuid"], "seed": record["seed"]}) + "\n"
            )
            written.append(path)
    return written


def _refuse_foreign(target: Path, record: dict[str, Any]) -> None:
    """A folder that holds results written for another run, or by anyone else, is not written into."""

    if not target.is_dir() or not any(target.glob("*.json")):
        return
    owner = json.loads((target / PROVENANCE).read_text()) if (target / PROVENANCE).is_file() else None
    if owner is None or owner.get("run_uuid") != record["uuid"]:
        whose = f"run #{owner['run_id']}'s results" if owner else "results not written for this run"
        raise HarnessError(f"--mteb: {target} holds {whose}; export run #{record['run_id']} into another folder.")


LOADER = '''

MODEL_PATH = str(Path(__file__).resolve().parent)  # the exported encoder folder; a hub id once it is uploaded


def load(model_name: str, revision: str | None = None, device: str | None = None, **kwargs: Any) -> Any:
    """The exported encoder through sentence-transformers (its folder's modules: plain pooling, or
    the harness's module where the encoder needs the harness installed), wrapped for mteb."""
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    return SentenceTransformerEncoderWrapper(SentenceTransformer(MODEL_PATH, device=device, trust_remote_code=True), revision=revision)
'''


def model_meta_source(record: dict[str, Any]) -> str:
    """A Python module holding the run's ``ModelMeta`` with a loader of the encoder folder it is
    written into: mteb validates it on import, and ``meta.load_model()`` encodes as the run did."""
    meta = run_model_meta(record, experiment=False)
    fields = {
        "name": meta.name,
        "revision": meta.revision,
        "release_date": meta.release_date,
        "languages": meta.languages,
        "n_parameters": meta.n_parameters,
        "memory_usage_mb": None,
        "max_tokens": meta.max_tokens,
        "embed_dim": meta.embed_dim,
        "license": meta.license,
        "open_weights": True,
        "public_training_code": None,
        "public_training_data": None,
        "framework": ["PyTorch", "Sentence Transformers"],
        "reference": None,
        "similarity_fn_name": "cosine",
        "use_instructions": meta.use_instructions,
        "training_datasets": sorted(meta.training_datasets) if meta.training_datasets else None,
        "adapted_from": meta.adapted_from,
    }
    arguments = "".join(f"    {key}={value!r},\n" for key, value in fields.items())
    if meta.training_datasets:
        arguments = arguments.replace(
            f"training_datasets={fields['training_datasets']!r}",
            f"training_datasets=set({fields['training_datasets']!r})",
        )
    header = (
        f'"""mteb model implementation of harness run #{record["run_id"]}, written by `harness export --mteb --model`.\n\n'
        "The encoder is the folder this file is in. For a pull request to mteb, upload the folder to the hub and set\n"
        'MODEL_PATH to its id.\n"""\n\n'
        "from __future__ import annotations\n\nfrom pathlib import Path\nfrom typing import Any\n\nfrom mteb.models.model_meta import ModelMeta\n"
    )
    return header + LOADER + f"\n\nmodel_meta = ModelMeta(\n    loader=load,\n{arguments})\n"
