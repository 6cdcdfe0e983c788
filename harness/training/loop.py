"""The one training loop every method's stages run on.

LoRA through peft by default (or full fine-tuning), bf16 autocast where the GPU has it, gradient
checkpointing, gradient accumulation, AdamW with linear warmup and linear decay, a data order fixed
by the seed, gradients averaged across ranks (see :mod:`harness.training.distributed`), checkpoints every
N steps and at the end of each stage, and resume from the latest checkpoint. Only rank 0 writes
(DeepSpeed's optimizer partitions excepted). How the model is run, reduced and stepped (replicated,
FSDP2 or DeepSpeed) is the engine's business: :mod:`harness.training.engines`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import faults
from harness.errors import HarnessError, RunFailed, is_out_of_memory
from harness.method import Stage
from harness.telemetry import flops
from harness.telemetry.phases import matmul_peak, measure
from harness.training import distributed
from harness.training.checkpoints import (
    latest_checkpoint,
    read_state,
    read_trainable,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from harness.training.dropout import training_dropout
from harness.training.order import batch_indices, schedule, total_steps
from harness.training.parameters import bf16_wanted, enable_checkpointing, trainable_parameters
from harness.training.sharding import for_training
from harness.training.train_config import Hooks, StageReport, StepLog, TrainConfig

if TYPE_CHECKING:
    import torch

    from harness.model.backbones import Backbone
    from harness.training.sharding import Sharding

STEP_LOGS_PER_WRITE = 50  # step logs are written in batches of this many (and at every checkpoint)


@dataclass
class TrainJob:
    """What training needs besides the model, its stages and their options."""

    train_data: str
    seed: int
    output_dir: Path | None
    resume: bool = False
    #: resolved once by the run's plan; None resolves it here from the options
    sharding: Sharding | None = None


@dataclass
class _Session:
    """What every stage of one training shares."""

    engine: Any
    backbone: Backbone
    job: TrainJob
    hooks: Hooks
    progress: Any
    world: distributed.DistInfo


@dataclass
class _StageRun:
    """One stage as the loop runs it: its options (with the stage's overrides) and its examples."""

    stage: Stage
    config: TrainConfig
    index: int
    examples: Sequence[Any]
    start_step: int
    steps: int
    dev_seconds: float = 0.0  # spent in dev evaluations: not training's time


class NonFiniteLoss(RunFailed):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def out_of_memory(stage: str, step: int, config: TrainConfig) -> RunFailed:
    return RunFailed(
        f"out of memory in stage {stage} at step {step} (batch_size={config.batch_size}, "
        f"max_length={config.max_length}, grad_accum={config.grad_accum}, gradient_checkpointing="
        f"{config.gradient_checkpointing}). Lower method_args.batch_size (raise method_args.grad_accum "
        "to keep the effective batch), lower method_args.max_length, or set "
        "method_args.gradient_checkpointing=true; the last good checkpoint is kept."
    )


def stage_config(config: TrainConfig, stage: Stage) -> TrainConfig:
    """The options one stage trains with: the method's, with the stage's ``overrides`` on top."""
    return dataclasses.replace(config, **getattr(stage, "overrides", {}))


def run_stages(
    backbone: Backbone, stages: Sequence[Stage], config: TrainConfig, job: TrainJob, hooks: Hooks, progress: Any = None
) -> list[StageReport]:
    """Train ``stages`` in order on ``backbone`` (call :func:`prepare_model` first). With
    ``job.resume``, continue from the latest checkpoint in ``job.output_dir``; without it, a
    checkpoint already there is refused (a fresh run never reads one).

    With a sharding engine (``config.sharding``) the model is sharded in place and cannot encode
    afterwards: reload the backbone and the final checkpoint (the runner does).
    """
    from harness.training import engines

    sharding = job.sharding or for_training(config)
    if sharding.fsdp.activation_checkpointing and not config.gradient_checkpointing:
        enable_checkpointing(backbone.model, lora=config.finetune != "full")
    session = _Session(engines.build(backbone.model, sharding), backbone, job, hooks, progress, distributed.world())
    found = _resume_point(session, stages)
    resume_state = read_state(found) if found else None
    reports = []
    for index, stage in enumerate(stages):
        start_step = _start_step(resume_state, index)
        if start_step is not None:
            reports.append(_train_stage(session, stage, stage_config(config, stage), index, start_step, found))
    session.engine.train(False)
    return reports


def _resume_point(session: _Session, stages: Sequence[Stage]) -> Path | None:
    """The checkpoint a resume continues from, its weights loaded into the engine (None: none)."""
    job, engine = session.job, session.engine
    found = latest_checkpoint(job.output_dir) if job.output_dir is not None else None
    if found is not None and not job.resume:
        raise HarnessError(f"{found} holds a checkpoint already; a fresh run never reads one (resume it instead).")
    state = read_state(found) if found else None
    if job.resume:
        session.hooks.note(_resume_note(state, stages))
    if found is not None:
        if state.get("engine", "none") != engine.name:
            raise HarnessError(
                f"checkpoint {found} was written by the {state.get('engine', 'none')} engine; "
                f"resume with the same method_args.sharding (now {engine.name})."
            )
        engine.load_trainable(
            read_trainable(found, [name for name, _ in trainable_parameters(session.backbone.model)])
        )
    return found


def _start_step(state: dict[str, Any] | None, index: int) -> int | None:
    """Where stage ``index`` starts (None: it finished before the checkpoint resumed from)."""
    if state is None or index > state["stage_index"]:
        return 0
    if index < state["stage_index"] or state["done"]:
        return None
    return state["step"]


def _train_stage(
    session: _Session, stage: Stage, config: TrainConfig, index: int, start_step: int, found: Path | None
) -> StageReport:
    import torch

    engine, world, device = session.engine, session.world, session.backbone.device
    examples = _stage_examples(session, stage, index, config, resumed=bool(start_step))
    steps = total_steps(len(examples), config, world.world_size)
    engine.start_stage(config, steps, schedule(steps, config.warmup_ratio))
    if start_step:
        engine.load_optimizer(found)
        restore_rng_state(torch.load(found / "rng.pt", weights_only=False))
    run = _StageRun(stage, config, index, examples, start_step, steps)
    with (
        measure(f"train:{stage.name}", device) as phase,
        flops.meter() as counted,
        training_dropout(session.backbone.model, config.dropout, config.hidden_dropout),
    ):
        samples, tokens = _loop(session, run)
    phase.seconds -= run.dev_seconds
    peak = matmul_peak(device, torch.bfloat16 if bf16_wanted(device, config) else torch.float32)
    model_flops, peak = (v * world.world_size for v in distributed.means_across_ranks(counted[0], peak))
    _diagnose(session, stage, config)
    return StageReport(
        stage=stage.name,
        steps=steps - start_step,
        seconds=phase.seconds,
        samples=samples,
        tokens=tokens,
        peak_memory_bytes=phase.peak_memory_bytes or 0,
        world_size=world.world_size,
        per_device_batch=config.batch_size,
        effective_batch=config.batch_size * config.grad_accum * world.world_size,
        engine=engine.name,
        model_flops=model_flops or None,
        peak_flops_per_s=peak,
        dev_seconds=run.dev_seconds,
    )


def _resume_note(state: dict[str, Any] | None, stages: Sequence[Stage]) -> str:
    if state is None:
        return (
            f"no checkpoint was saved before the interruption: training starts again at stage {stages[0].name}, step 0"
        )
    if state["done"]:
        later = [s.name for s in stages[state["stage_index"] + 1 :]]
        then = f"; resuming stage {later[0]} at step 0" if later else "; training is complete"
        return f"stage {state['stage']} finished{then}"
    return f"resuming stage {state['stage']} at step {state['step']}"


def _diagnose(session: _Session, stage: Stage, config: TrainConfig) -> None:
    """A :class:`~harness.method.DiagnosedStage` measures itself on held-out data as it ends (every
    rank runs it, so sharded parameters are gathered alike; rank 0 reports)."""
    import torch

    diagnose = getattr(stage, "diagnose", None)
    if diagnose is None:
        return
    engine, tokenizer = session.engine, session.backbone.tokenizer
    engine.train(False)
    with torch.no_grad():
        values, notes = engine(lambda model: diagnose(model, tokenizer, config))
    engine.train(True)
    if session.world.is_main and values:
        session.hooks.diagnostics(stage.name, values)
        for note in notes:
            session.hooks.note(note)


def _stage_examples(
    session: _Session, stage: Stage, index: int, config: TrainConfig, *, resumed: bool
) -> Sequence[Any]:
    """The stage's examples; for a :class:`PreparedStage`, prepared once from the model as it is at
    the stage's start and kept beside the checkpoints for a resume."""
    import torch

    job, engine = session.job, session.engine
    saved = job.output_dir / "checkpoints" / f"{index}-{stage.name}.examples.pt" if job.output_dir else None
    if resumed and saved is not None and saved.exists():
        return torch.load(saved, weights_only=False)
    examples = list(stage.examples(job.train_data, job.seed))
    if config.max_examples and len(examples) > config.max_examples:
        chosen = sorted(random.Random(job.seed).sample(range(len(examples)), config.max_examples))
        examples = [examples[i] for i in chosen]
    begin = getattr(stage, "begin", None)
    if begin is not None:
        engine.train(False)
        examples = list(engine(lambda model: begin(model, session.backbone.tokenizer, examples, config)))
        engine.train(True)
        if saved is not None and session.world.is_main:
            saved.parent.mkdir(parents=True, exist_ok=True)
            torch.save(examples, saved.with_suffix(".tmp"))
            os.replace(saved.with_suffix(".tmp"), saved)
    return examples


def _autocast(engine: Any, device: torch.device, config: TrainConfig) -> Callable[[], Any]:
    """A factory of the micro-batch's autocast context, decided once per stage."""
    import torch

    if not engine.autocast or not bf16_wanted(device, config):
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _loop(session: _Session, run: _StageRun) -> tuple[int, int]:
    """Steps ``run.start_step`` to ``run.steps``: (samples, tokens) trained on, over all ranks."""
    engine, world, hooks, config, name = session.engine, session.world, session.hooks, run.config, run.stage.name
    autocast = _autocast(engine, session.backbone.device, config)
    began = last_save = time.perf_counter()
    logs: list[StepLog] = []
    samples = tokens = 0
    try:
        for step in range(run.start_step, run.steps):
            total, step_samples, step_tokens = _accumulate(session, run, step, autocast)
            samples += step_samples
            # rank 0's clock decides when a timed checkpoint is due; it rides on the step's one
            # all-reduce, so every rank saves at the same step
            due = bool(config.checkpoint_minutes) and time.perf_counter() - last_save >= 60 * config.checkpoint_minutes
            global_loss, mean_tokens, due_votes = distributed.means_across_ranks(
                total, step_tokens, float(due and world.is_main)
            )
            tokens += round(mean_tokens * world.world_size)
            if not math.isfinite(global_loss):
                raise NonFiniteLoss(
                    f"stage {name}: the loss became {global_loss} at step {step + 1}; the last good "
                    "checkpoint is kept. Lower lr, or turn bf16 off."
                )
            lr = engine.lr()
            engine.step()
            logs.append(StepLog(name, step + 1, global_loss, lr, time.perf_counter() - began))
            faults.point("train-step")
            if session.progress is not None:
                session.progress(
                    name, step + 1, run.steps, global_loss, lr, tokens / max(1e-9, time.perf_counter() - began)
                )
            done = step + 1 == run.steps
            save = done or (config.checkpoint_every and (step + 1) % config.checkpoint_every == 0) or due_votes > 0
            if save or len(logs) >= STEP_LOGS_PER_WRITE:
                if world.is_main:
                    hooks.steps(name, logs)
                logs = []
            if config.eval_every and (done or (step + 1) % config.eval_every == 0):
                run.dev_seconds += _dev_evaluation(
                    session, name, step + 1
                )  # before the checkpoint: a resume from it has it
            if save and session.job.output_dir is not None:
                _save(session, run, step + 1, done)
                last_save = time.perf_counter()
    except BaseException:  # interrupted or failed: the steps done so far are recorded all the same
        if logs and world.is_main:
            with contextlib.suppress(Exception):  # the error in flight is the one to report
                hooks.steps(name, logs)
        raise
    return samples, tokens


def _dev_evaluation(session: _Session, stage: str, step: int) -> float:
    """The hooks' dev evaluation on the model as it is after ``step``: in eval mode, with training's
    random state and FLOP count left exactly as they were, so that training goes on as without it;
    returns its seconds."""

    state, began = rng_state(), time.perf_counter()
    session.engine.train(False)
    try:
        with flops.meter():  # the evaluation's passes are not training's
            session.hooks.dev_evaluation(stage, step)
    finally:
        session.engine.train(True)
        restore_rng_state(state)
    return time.perf_counter() - began


def _accumulate(session: _Session, run: _StageRun, step: int, autocast: Callable[[], Any]) -> tuple[float, int, int]:
    """One optimizer step's micro-batches on this rank: (mean loss, samples over ranks, tokens)."""
    engine, world, config, stage = session.engine, session.world, run.config, run.stage
    tokenizer = session.backbone.tokenizer
    total, samples, tokens = 0.0, 0, 0
    for micro in range(config.grad_accum):
        picked = batch_indices(
            len(run.examples), seed=session.job.seed, step=step, micro=micro, config=config, world=world
        )
        batch = [run.examples[i] for i in picked]
        try:
            with autocast():
                loss, batch_tokens = engine(lambda model, batch=batch: stage.loss(model, tokenizer, batch, config))
            engine.backward(loss, accum=config.grad_accum, last=micro + 1 == config.grad_accum)
        except (RuntimeError, MemoryError) as exc:
            if isinstance(exc, MemoryError) or is_out_of_memory(exc):
                raise out_of_memory(stage.name, step + 1, config) from None
            raise
        total += float(loss.detach()) / config.grad_accum
        samples += len(batch) * world.world_size
        tokens += batch_tokens
    return total, samples, tokens


def _save(session: _Session, run: _StageRun, step: int, done: bool) -> None:
    state = {"stage_index": run.index, "stage": run.stage.name, "step": step, "done": done}
    folder = save_checkpoint(
        session.job.output_dir / "checkpoints" / f"{run.index}-{run.stage.name}", session.engine, state
    )
    if session.world.is_main:
        session.hooks.checkpoint(folder)
