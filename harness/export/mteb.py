"""Recorded runs written in mteb's own result layout, so that ``mteb.ResultCache(DIR)`` reads them.

Each run becomes ``DIR/results/harness__<method>__<backbone>/<revision>/experiments/<experiment>/``
holding one ``<Task>.json`` per task (mteb's whole ``TaskResult``, as recorded when the run
evaluated it) and ``model_meta.json``. The revision is the run's config hash (12 characters, as at
evaluation); the experiment name serialises the method options that differ from the method's
defaults, and the seed, so ablations and seeds of one method never overwrite each other. Scores of
the vectors' first N dims (``harness run --dims``) are written as mteb writes a model loaded with
``embed_dim=N``: ``embed_dim`` N in the model meta and among the experiment's options.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

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
# training data the harness can name as mteb tasks (their train splits)
TRAINING_TASKS = {"sick": "SICK-R", "stsb": "STSBenchmark", "sts-train": "STSBenchmark"}


def experiment_options(record: dict[str, Any]) -> dict[str, Any]:
    """The run's method options that differ from the method's defaults, and its seed."""
    from dataclasses import asdict

    from harness.registry import get_method

    given = dict(record["config"].get("method_args", {}))
    try:
        defaults = asdict(get_method(record["method"]).Config())
    except HarnessError:  # a plug-in that is not installed here: keep every option
        defaults = {}
    changed = {k: v for k, v in sorted(given.items()) if defaults.get(k, object()) != v}
    return {**changed, "seed": record["seed"]}


def training_datasets(record: dict[str, Any]) -> set[str] | None:
    """mteb task names whose train splits the run trained on, where the source says so."""
    source = str(record["config"].get("train_data") or "").lower()
    if not source or record.get("trainable_parameters") == 0:
        return None
    return {task for key, task in TRAINING_TASKS.items() if key in source} or None


def run_model_meta(record: dict[str, Any], dim: int = 0) -> ModelMeta:
    """The run's mteb ``ModelMeta``; for its scores at ``dim`` dims (0: whole vectors), as mteb
    names a model loaded with ``embed_dim=dim``."""
    from harness.evaluation.mteb_adapter import model_meta, model_name

    facts = BACKBONE_FACTS.get(record["backbone"], {})
    return model_meta(
        name=model_name(record["method"], record["backbone"]),
        revision=record["config_hash"][:12],
        n_parameters=record["n_parameters"],
        embed_dim=dim or record["embed_dim"],
        max_tokens=record["config"].get("max_length"),
        source=record["config"].get("backbone_resolved", {}).get("source", record["backbone"]),
        license=facts.get("license"),
        languages=facts.get("languages"),
        training_datasets=training_datasets(record),
        experiment_kwargs={**experiment_options(record), **({"embed_dim": dim} if dim else {})},
        use_instructions=bool(record["config"].get("instructions")),
    )


def export(store: Any, run_ids: list[int], folder: Path) -> list[Path]:
    """Write the runs' recorded TaskResults under ``folder``; the result files written."""
    from mteb.cache import ResultCache
    from mteb.results import TaskResult

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
            raise HarnessError(f"run #{record['run_id']} is {record['status']}: only finished runs are exported to mteb.")
    cache = ResultCache(folder)
    written = []
    for record in records:
        for dim in store.score_dims(record["run_id"]):
            meta = run_model_meta(record, dim)
            for task, whole in store.task_results(record["run_id"], dim).items():
                result = TaskResult.from_dict(whole)
                cache.save_to_cache(result, meta)
                written.append(cache.get_task_result_path(result.task_name, meta))
    return written
