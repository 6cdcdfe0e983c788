"""One mteb task scored through the task's own ``evaluate``, split by split, into mteb's ``TaskResult``.

``mteb.evaluate`` adds, for a model like ours (an encoder with its ``mteb_model_meta``, no result
cache, no CO2 tracker), one thing: a check of whether the model is a sentence-transformers one,
which imports sentence-transformers and transformers' modelling code (about 2 s, most of what a
fully warm command spends beyond mteb itself). The steps below are the ones it takes for a single
task: refuse inputs other than text (its modality check), warn where the task is superseded, load
the task's data unless loaded, evaluate each split's subsets (a bitext-mining task's together, any
other's one at a time), build the ``TaskResult`` with its timed phases, unload what it loaded. An
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
    from mteb.timing import TimingStack

    encode_kwargs = {"batch_size": batch_size}
    other = sorted(set(task.metadata.modalities) - {"text"})
    if other:  # mteb.evaluate's modality check, for encoders that read text only
        raise HarnessError(
            f"task {task.metadata.name} has {', '.join(other)} inputs; the harness's encoders read text only."
        )
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
    task.check_if_dataset_is_superseded()  # a warning where mteb has a newer version of the task
    started = time.monotonic()
    timer = TimingStack()
    preloaded = task.data_loaded
    if not preloaded:
        before, start = len(timer.phases), time.monotonic()
        task.load_data(timer=timer)
        if len(timer.phases) == before:  # the task timed nothing itself: one phase for it all, as mteb does
            timer.add_phase("Data loading", start, time.monotonic(), split="", subset="")
    scores: dict[str, dict] = {}
    for split in task.eval_splits:
        subsets = task.hf_subsets
        batches = [subsets] if isinstance(task, AbsTaskBitextMining) else [[subset] for subset in subsets]
        scores[split] = {}
        before, start = len(timer.phases), time.monotonic()
        for batch in batches:
            scores[split].update(
                task.evaluate(
                    model,
                    split,
                    subsets_to_run=batch,
                    encode_kwargs=encode_kwargs,
                    prediction_folder=prediction_folder,
                    timer=timer,
                )
            )
        if len(timer.phases) == before:
            timer.add_phase("Evaluation", start, time.monotonic(), split=split, subset="")
    result = TaskResult.from_task_results(
        task,
        scores,
        evaluation_time=time.monotonic() - started,
        date=datetime.datetime.now(tz=datetime.UTC),
        evaluation_phases=timer.phases or None,
    )
    if not preloaded:
        task.unload_data()
    return result
