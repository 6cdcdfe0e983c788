"""Scores followed during training: the run's ``--dev-tasks`` evaluated every
``method_args.eval_every`` steps on the encoder as it is then, and ``method_args.keep_best``.

Every rank evaluates (each encodes its share of the texts, as after training); rank 0 records.
The embedding cache is off for these evaluations: the weights change at every step. With
``keep_best``, a CPU copy of the trainable tensors (LoRA, a method's own parameters; never the
frozen backbone) is kept whenever the mean of the dev tasks' main scores improves (the earliest of
equal means stays), also on disk beside the checkpoints so that a resumed run knows it; after
training it is put back into the model and into the final checkpoint, so that the test tasks,
``harness eval`` and ``harness export`` all see that encoder.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from harness import ranks
from harness.evaluation.embedding_cache import CacheSettings
from harness.evaluation.evaluate import evaluate
from harness.evaluation.task_loading import LoadedTask
from harness.telemetry.phases import measure
from harness.training.checkpoints import copy_trainable, latest_checkpoint
from harness.training.parameters import trainable_parameters

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from harness.model.backbones import Backbone
    from harness.runs.plan import RunPlan
    from harness.runs.recorder import Recorder
    from harness.telemetry.phases import Phase

BEST_FILE = "best-dev.pt"  # in the run's folder: the best dev evaluation so far and its tensors


@dataclass
class Best:
    """The dev evaluation whose encoder ``keep_best`` keeps."""

    stage: str
    step: int
    score: float  # the mean of the dev tasks' main scores, 0-1
    state: dict[str, torch.Tensor] = field(repr=False)


class _Collected:
    """A score sink that keeps one dev evaluation's scores and seconds instead of recording them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.seconds: dict[str, float] = {}

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
        self.rows.append({"task": task, "main_metric": main_metric, "score": main_score})

    def timing(self, phase: Phase, details: dict | None = None) -> None:
        self.seconds[phase.phase.removeprefix("evaluate:")] = phase.seconds


class DevEvaluator:
    """What :meth:`harness.training.Hooks.dev_evaluation` does for a run (see the module)."""

    def __init__(
        self,
        plan: RunPlan,
        backbone: Backbone,
        tasks: list[LoadedTask],
        recorder: Recorder,
        folder: Path,
        console: Console,
    ) -> None:
        self.plan, self.backbone, self.tasks, self.recorder = plan, backbone, tasks, recorder
        # piped, the evaluation's plain progress lines; on a terminal its bars would be a second live display
        self.console = Console(file=io.StringIO(), quiet=True) if console.is_terminal else console
        self.keep_best = bool(getattr(plan.method.config, "keep_best", False))
        self.folder, self.best_file = folder, folder / BEST_FILE
        self.best: Best | None = self._saved_best() if self.keep_best else None
        self.how = dataclasses.replace(  # weights change at every step: nothing to cache; dev scores keep no items (nor overlap)
            plan.evaluation(plan.resolved(), CacheSettings(enabled=False)), keep_items=False, dims=(), training=None
        )

    def __call__(self, stage: str, step: int) -> None:
        collected = _Collected()
        evaluate(self.plan.method, self.backbone, self.tasks, self.how, collected, self.console)
        rows = [{**row, "seconds": collected.seconds.get(row["task"], 0.0)} for row in collected.rows]
        self.recorder.dev_scores(stage, step, rows)
        mean = sum(row["score"] for row in rows) / len(rows)
        shown = ", ".join(f"{row['task']} {100 * row['score']:.2f}" for row in rows)
        self.recorder.note(
            f"dev scores at {stage} step {step}: {shown}" + (f" (mean {100 * mean:.2f})" if len(rows) > 1 else "")
        )
        if self.keep_best and (self.best is None or mean > self.best.score):
            self.best = Best(stage, step, mean, self._trainable())
            if ranks.world().is_main:
                _save_atomically(
                    {"stage": stage, "step": step, "score": mean, "state": self.best.state}, self.best_file
                )

    def restore_best(self) -> None:
        """``keep_best``: put the best dev evaluation's tensors back into the model and into the
        final checkpoint (which ``harness eval`` and ``export`` read), and record the choice."""

        if not self.keep_best or self.best is None:
            return
        with measure("keep-best") as phase:
            copy_trainable(self.backbone.model, self.best.state)
            final = latest_checkpoint(self.folder)
            if ranks.world().is_main and final is not None:
                _save_atomically(self.best.state, final / "trainable.pt")
        best = self.best
        self.recorder.timing(phase, details={"stage": best.stage, "step": best.step, "dev_score": best.score})
        self.recorder.note(
            f"keep_best: the encoder of {best.stage} step {best.step} (mean dev score {100 * best.score:.2f}) is the run's"
        )

    def _trainable(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().to("cpu", copy=True) for name, p in trainable_parameters(self.backbone.model)}

    def _saved_best(self) -> Best | None:
        """A resumed run's best dev evaluation before it stopped (None: none yet)."""
        import torch

        if not self.best_file.is_file():
            return None
        saved = torch.load(self.best_file, map_location="cpu", weights_only=True)
        return Best(saved["stage"], saved["step"], saved["score"], saved["state"])


def _save_atomically(value: Any, path: Path) -> None:
    import torch

    staging = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    torch.save(value, staging)
    os.replace(staging, path)
