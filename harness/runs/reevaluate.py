"""``harness eval``: a finished run's encoder evaluated on more tasks, without retraining; not
loaded at all where the embedding cache holds every vector (:mod:`harness.evaluation.warm`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import ranks
from harness.evaluation.evaluate import evaluate
from harness.evaluation.task_loading import load_tasks
from harness.evaluation.warm import DeferredBackbone
from harness.model.backbones import pick_device
from harness.runs import folders
from harness.runs.load_key import evaluation_backbone
from harness.runs.plan import RunPlan, refuse_known_tasks
from harness.runs.process import quiet_libraries, seed_everything
from harness.runs.recorder import Recorder
from harness.runs.restore import encoding_backbone
from harness.telemetry.phases import measure
from harness.training.checkpoints import latest_checkpoint

if TYPE_CHECKING:
    from rich.console import Console

    from harness.evaluation.embedding_cache import CacheSettings
    from harness.model.backbones import Backbone
    from leaderboard.store import RunStore


def reevaluate(
    plan: RunPlan,
    store: RunStore,
    record: dict[str, Any],
    console: Console,
    *,
    force: bool = False,
    cache: CacheSettings | None = None,
) -> None:
    """Evaluate a finished run's encoder on ``plan.tasks`` without retraining; scores join its row.
    Under ``torchrun`` or ``accelerate launch`` every rank evaluates and rank 0 alone records.

    A task the run has a score for already is refused (before the model is loaded) unless
    ``force``: the same version would only be computed again, and another version under the same
    name (another file with the same stem) would replace a score the run's comparisons rest on.
    """

    quiet_libraries()
    info = ranks.init(pick_device(plan.config.device).type)
    with console.status("Loading task data"):
        tasks = load_tasks(plan.tasks, plan.config.limit)
    if not force:
        refuse_known_tasks(record, [(loaded.spec.name, loaded.version(plan.config.limit)) for loaded in tasks])
    recorder = Recorder(store if info.is_main else None, record["run_id"])
    how = plan.evaluation(record["config"], cache)
    checkpoint = _final_checkpoint(plan, record)
    seed_everything(plan.config.seed)
    with measure("load") as phase:  # not loaded at all where the cache holds every vector (harness.evaluation.warm)
        backbone, key = evaluation_backbone(
            plan,
            how.cache,
            lambda: _seeded(plan, lambda: encoding_backbone(plan, record, console, purpose="evaluate")),
            checkpoint=checkpoint,
        )
    phase.items = 0 if isinstance(backbone, DeferredBackbone) else 1
    recorder.timing(phase)
    evaluate(plan.method, backbone, tasks, dataclasses.replace(how, load_key=key), recorder, console)


def _final_checkpoint(plan: RunPlan, record: dict[str, Any]) -> Path | None:
    """The checkpoint a trained run encodes from (None for untrained runs)."""

    folder = folders.own_folder(record, None, purpose="evaluate") if plan.trains else None
    return latest_checkpoint(folder) if folder is not None else None


def _seeded(plan: RunPlan, load: Callable[[], Backbone]) -> Backbone:
    seed_everything(plan.config.seed)
    return load()
