"""A run's training: its method's stages on the shared loop, with each stage's cost recorded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.runs.dev_scores import DevEvaluator
from harness.telemetry.phases import Phase
from harness.telemetry.progress import training_progress
from harness.training import StageReport, distributed
from harness.training.loop import TrainJob, run_stages
from harness.training.parameters import prepare_model

if TYPE_CHECKING:
    from rich.console import Console

    from harness.evaluation.task_loading import LoadedTask
    from harness.model.backbones import Backbone
    from harness.runs.plan import RunPlan
    from harness.runs.recorder import Recorder


def train(
    plan: RunPlan,
    backbone: Backbone,
    recorder: Recorder,
    console: Console,
    output_dir: Path,
    *,
    resume: bool,
    dev_tasks: Sequence[LoadedTask] = (),
) -> None:
    """Train the plan's method on ``backbone`` in place, checkpointing under ``output_dir``; with
    ``dev_tasks``, evaluate them as it trains (:mod:`harness.runs.dev_scores`)."""

    method = plan.method
    prepare_model(backbone, method.config)
    method.prepare(backbone)
    recorder.model(trainable_parameters=sum(p.numel() for p in backbone.model.parameters() if p.requires_grad))
    job = TrainJob(plan.config.train_data, plan.config.seed, output_dir, resume=resume, sharding=plan.sharding)
    if dev_tasks:
        recorder.dev = DevEvaluator(plan, backbone, list(dev_tasks), recorder, output_dir, console)
    with training_progress(console, enabled=distributed.world().is_main) as progress:
        reports = run_stages(backbone, method.stages(), method.config, job, recorder, progress)
    for report in reports:
        _record_stage(report, recorder, console)
    if recorder.dev is not None:
        recorder.dev.restore_best()


def _record_stage(report: StageReport, recorder: Recorder, console: Console) -> None:
    phase = Phase(f"train:{report.stage}", report.seconds, report.samples, report.tokens, report.peak_memory_bytes)
    recorder.timing(phase, details=_stage_details(report))
    if distributed.world().is_main:
        mfu = "" if report.mfu is None else f", MFU {100 * report.mfu:.1f}%"
        console.print(
            f"  trained {report.stage}: {report.steps} steps in {report.seconds:.1f} s "
            f"({report.tokens / max(report.seconds, 1e-9):.0f} tokens/s{mfu})"
        )


def _stage_details(report: StageReport) -> dict[str, Any]:
    seconds = max(report.seconds, 1e-9)
    return {
        "steps": report.steps,
        "samples_per_s": report.samples / seconds,
        "tokens_per_s": report.tokens / seconds,
        "world_size": report.world_size,
        "per_device_batch": report.per_device_batch,
        "effective_batch": report.effective_batch,
        "engine": report.engine,
        "model_flops": report.model_flops,
        "peak_flops_per_s": report.peak_flops_per_s,
        "mfu": report.mfu,
        **({"dev_eval_seconds": report.dev_seconds} if report.dev_seconds else {}),
    }
