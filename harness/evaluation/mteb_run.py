"""One mteb task scored through the task's own ``evaluate``, split by split, into mteb's ``TaskResult``.

``mteb.evaluate`` adds, for a model like ours (an encoder with its ``mteb_model_meta``, no result
cache, no CO2 tracker), one thing: a check of whether the model is a sentence-transformers one,
which imports sentence-transformers and transformers' modelling code (about 2 s, most of what a
fully warm command spends beyond mteb itself). The steps below are the ones it takes for a single
task: load the task's data unless loaded, evaluate each split's subsets (a bitext-mining task's
together, any other's one at a time), build the ``TaskResult``, unload what it loaded. An
aggregate task (a mean over other tasks) still goes through ``mteb.evaluate``, which combines them.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask
    from mteb.results import TaskResult


def score_task(model: Any, task: AbsTask, *, batch_size: int, prediction_folder: Path | None) -> TaskResult:
    """``task`` evaluated with ``model`` on every split and subset it declares; errors propagate."""
    from mteb.abstasks.aggregated_task import AbsTaskAggregate
    from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining
    from mteb.results import TaskResult

    encode_kwargs = {"batch_size": batch_size}
    if isinstance(task, AbsTaskAggregate):
        import mteb

        result = mteb.evaluate(
            model,
            task,
            cache=None,
            encode_kwargs=encode_kwargs,
            show_progress_bar=False,
            prediction_folder=prediction_folder,
        )
        if result.exceptions:
            raise HarnessError(f"task {task.metadata.name} failed in mteb: {result.exceptions[0]}")
        return result.task_results[0]
    started = time.monotonic()
    preloaded = task.data_loaded
    if not preloaded:
        task.load_data()
    scores: dict[str, dict] = {}
    for split in task.eval_splits:
        subsets = task.hf_subsets
        batches = [subsets] if isinstance(task, AbsTaskBitextMining) else [[subset] for subset in subsets]
        scores[split] = {}
        for batch in batches:
            scores[split].update(
                task.evaluate(
                    model,
                    split,
                    subsets_to_run=batch,
                    encode_kwargs=encode_kwargs,
                    prediction_folder=prediction_folder,
                )
            )
    result = TaskResult.from_task_results(
        task, scores, evaluation_time=time.monotonic() - started, date=datetime.datetime.now(tz=datetime.UTC)
    )
    if not preloaded:
        task.unload_data()
    return result
