"""The one training loop every method's stages run on.

LoRA through peft by default (or full fine-tuning), bf16 autocast where the GPU has it, gradient
checkpointing, gradient accumulation, AdamW with linear warmup and linear decay, a data order fixed
by the seed, gradients averaged across ranks (see :mod:`harness.distributed`), checkpoints every
N steps and at the end of each stage, and resume from the latest checkpoint. Only rank 0 writes
(DeepSpeed's optimizer partitions excepted). How the model is run, reduced and stepped (replicated,
FSDP2 or DeepSpeed) is the engine's business: :mod:`harness.engines`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness import distributed
from harness.errors import HarnessError, RunFailed, is_out_of_memory
from harness.method import MethodConfig, Stage
from harness.options import not_empty, option
from harness import faults

if TYPE_CHECKING:
    import torch

    from harness.backbones import Backbone

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainConfig(MethodConfig):
    """House training options shared by every trained method (override per method)."""

    steps: int = option(0, "optimizer steps per stage; 0 = derive from epochs", minimum=0)
    epochs: float = option(1.0, "passes over the stage's data when steps is 0", minimum=0)
    batch_size: int = option(8, "examples per device per micro-batch", minimum=1)
    grad_accum: int = option(1, "micro-batches per optimizer step", minimum=1)
    lr: float = option(2e-4, "peak learning rate (AdamW)", above=0)
    warmup_ratio: float = option(0.05, "fraction of steps of linear warm-up, then linear decay to 0", minimum=0, maximum=1)
    weight_decay: float = option(0.0, "AdamW weight decay", minimum=0)
    max_grad_norm: float = option(1.0, "gradient clipping norm; 0 = off", minimum=0)
    finetune: Literal["lora", "full", "frozen"] = option(
        "lora", "train LoRA adapters (peft), all weights, or none (frozen: only the method's own parameters)"
    )
    lora_r: int = option(16, "LoRA rank", minimum=1)
    lora_alpha: int = option(32, "LoRA alpha", above=0)
    lora_dropout: float = option(0.05, "LoRA dropout", minimum=0, below=1)
    lora_targets: list[str] = option(LORA_TARGETS, "module names that get LoRA adapters (each must match a module of the backbone)", check=not_empty, rule="not empty")
    gradient_checkpointing: bool = option(False, "recompute activations in backward to save memory")
    bf16: Literal["auto", "on", "off"] = option("auto", "bf16 autocast; auto = on GPUs that support it")
    checkpoint_every: int = option(0, "save a checkpoint every N steps (0 = only at stage ends)", minimum=0)
    checkpoint_minutes: float = option(10.0, "also save one when this many minutes passed since the last (0 = off)", minimum=0)
    max_length: int = option(128, "tokens per training text, template included", minimum=8)
    pack: bool = option(False, "run each pass's rows as one packed sequence (no padding; pays with variable-length attention kernels); false = pad to the longest")
    max_examples: int = option(0, "use at most this many examples per stage (seeded choice); 0 = all", minimum=0)
    sharding: Literal["auto", "none", "fsdp", "deepspeed"] = option(
        "auto", "shard a full fine-tune with FSDP2 or DeepSpeed; auto = as accelerate launch says, else none"
    )
    sharding_config: str = option("", "FSDP (JSON/YAML, accelerate or Trainer keys) or DeepSpeed (JSON) config file")

    def inconsistency(self, prefix: str) -> str | None:
        """Options that are wrong only together (see ``harness.options.check_values``)."""
        if self.steps == 0 and self.epochs == 0:
            return f"{prefix}steps=0 and {prefix}epochs=0 leave nothing to train; set one of them"
        return None


@dataclass
class StepLog:
    stage: str
    step: int
    loss: float
    lr: float
    seconds: float


@dataclass
class StageReport:
    """What a finished stage cost (rank 0's view; samples and tokens summed over ranks)."""

    stage: str
    steps: int
    seconds: float
    samples: int
    tokens: int
    peak_memory_bytes: int
    world_size: int
    per_device_batch: int
    effective_batch: int
    engine: str = "none"
    model_flops: float | None = None  # summed over ranks; None when the stage's passes report none
    peak_flops_per_s: float | None = None  # the matmul peak, summed over ranks

    @property
    def mfu(self) -> float | None:
        """Model FLOP utilisation: model FLOPs per second over the matmul peak."""
        if not self.model_flops or not self.peak_flops_per_s or self.seconds <= 0:
            return None
        return self.model_flops / self.seconds / self.peak_flops_per_s


class Hooks:
    """Where the loop reports; the runner records these in the leaderboard (rank 0 only)."""

    def steps(self, stage: str, logs: list[StepLog]) -> None: ...

    def checkpoint(self, path: Path) -> None: ...

    def note(self, message: str) -> None:
        """A line for the user (e.g. where a resume starts, or a diagnostic's warning)."""

    def diagnostics(self, stage: str, values: dict[str, float]) -> None:
        """Numbers a stage measured on held-out data when it ended (see ``DiagnosedStage``)."""


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


def lora_targets(backbone: Backbone, config: TrainConfig) -> list[str]:
    """The configured LoRA targets that name modules of the backbone; none is an error."""
    names = [name for name, _ in backbone.model.named_modules()]
    targets = [t for t in config.lora_targets if any(n.endswith(t) for n in names)]
    if not targets:
        raise HarnessError(f"method_args.lora_targets {config.lora_targets} match no module of {backbone.spec.name}.")
    return targets


def prepare_model(backbone: Backbone, config: TrainConfig) -> None:
    """Attach LoRA adapters, unfreeze everything (full) or freeze everything (frozen: a method
    trains only parameters it adds in ``prepare``), and switch to training mode, in place."""
    model = backbone.model
    if config.finetune == "lora":
        from peft import LoraConfig, get_peft_model

        targets = lora_targets(backbone, config)
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets)
        model = get_peft_model(model, lora)
    else:
        for parameter in model.parameters():
            parameter.requires_grad_(config.finetune == "full")
    if config.gradient_checkpointing:
        enable_checkpointing(model, lora=config.finetune != "full")
    model.train()
    backbone.model = model


def enable_checkpointing(model: Any, *, lora: bool) -> None:
    """Recompute each layer's activations in backward (non-reentrant, so sharding engines work)."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:  # transformers >= 5.x name
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora:
        model.enable_input_require_grads()


def trainable_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def _schedule(total: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = int(round(total * warmup_ratio))

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def batch_indices(n: int, *, seed: int, step: int, micro: int, config: TrainConfig, world: distributed.DistInfo) -> list[int]:
    """The examples of one rank's micro-batch: a seeded permutation per epoch, cut in global batches.

    The global batch of a step holds ``grad_accum x world x batch_size`` examples; micro-batch m
    takes the m-th slice of ``world x batch_size``, and rank r the r-th part of that slice. So
    1 process x 2B and 2 processes x B see the same examples in the same order.
    """
    import torch

    per_step = config.batch_size * config.grad_accum * world.world_size
    steps_per_epoch = n // per_step
    epoch, within = divmod(step, steps_per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    start = within * per_step + (micro * world.world_size + world.rank) * config.batch_size
    return order[start : start + config.batch_size]


def total_steps(n: int, config: TrainConfig, world_size: int) -> int:
    per_step = config.batch_size * config.grad_accum * world_size
    if n < per_step:
        raise HarnessError(
            f"the training data has {n} examples, fewer than one optimizer step needs "
            f"({config.batch_size} x {config.grad_accum} accumulation x {world_size} processes)."
        )
    return config.steps or max(1, math.floor(config.epochs * (n // per_step)))


# -- checkpoints ----------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, engine: Any, state: dict[str, Any]) -> Path:
    """Write atomically: a reader (or a resume after a kill) sees a whole checkpoint or none.

    Every rank enters (sharded weights are gathered); rank 0 writes, except DeepSpeed's own
    optimizer partitions, which each rank writes into the staging folder.
    """
    import torch

    main = distributed.world().is_main
    staging = folder.with_name(f".{folder.name}.tmp")
    if main:
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    distributed.barrier()
    trainable = engine.full_trainable()
    engine.save_optimizer(staging)
    if main:
        torch.save(trainable, staging / "trainable.pt")
        torch.save(_rng_state(), staging / "rng.pt")
        (staging / "state.json").write_text(json.dumps({**state, "engine": engine.name}))
    distributed.barrier()
    if main:
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    distributed.barrier()
    return folder


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint (by stage index, then step)."""
    folder = output_dir / "checkpoints"
    if not folder.is_dir():
        return None
    found = []
    for candidate in folder.iterdir():
        state_file = candidate / "state.json"
        if not candidate.name.startswith(".") and state_file.exists():
            state = read_state(candidate)
            found.append((state["stage_index"], state["step"], candidate))
    return max(found)[2] if found else None


def read_state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's ``state.json``; an unreadable one is one message naming it."""
    state_file = checkpoint / "state.json"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("stage_index"), int) or not isinstance(state.get("step"), int):
            raise ValueError("no stage_index and step")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HarnessError(f"checkpoint {state_file} is unreadable ({exc}); the run cannot resume from it.") from None
    return state


def check_resumable(output_dir: Path) -> None:
    """Raise ``HarnessError`` unless the latest checkpoint (if any) can be read whole."""
    import torch

    latest = latest_checkpoint(output_dir)
    if latest is None:
        return
    for path in sorted({latest / "trainable.pt", latest / "rng.pt", *latest.glob("*.pt")}):
        try:
            torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except Exception as exc:  # torch raises many kinds for a missing, truncated or foreign file
            raise HarnessError(f"checkpoint {path} is unreadable ({type(exc).__name__}); the run cannot resume from it.") from None


def read_trainable(folder: Path, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The checkpoint's trainable tensors; every name in ``names`` must be there."""
    import torch

    saved = torch.load(folder / "trainable.pt", map_location="cpu", weights_only=True)
    missing = set(names) - set(saved)
    if missing:
        raise HarnessError(f"checkpoint {folder} lacks {len(missing)} trainable tensors (e.g. {sorted(missing)[0]}).")
    return saved


def copy_trainable(model: Any, saved: dict[str, torch.Tensor]) -> None:
    """Copy ``saved`` tensors into ``model``'s (unsharded) parameters of the same names."""
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor.to(params[name].device))


def load_trainable(model: Any, folder: Path) -> None:
    """Copy a checkpoint's trainable tensors into an unsharded ``model`` (e.g. to evaluate it)."""
    copy_trainable(model, read_trainable(folder, [name for name, _ in trainable_parameters(model)]))


# -- the loop -------------------------------------------------------------------------------
def bf16_wanted(device: torch.device, config: TrainConfig) -> bool:
    import torch

    return config.bf16 == "on" or (config.bf16 == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())


def _autocast(engine: Any, device: torch.device, config: TrainConfig) -> Callable[[], Any]:
    """A factory of the micro-batch's autocast context, decided once per stage."""
    import contextlib

    import torch

    if not engine.autocast or not bf16_wanted(device, config):
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def run_stages(
    backbone: Backbone,
    stages: Sequence[Stage],
    config: TrainConfig,
    *,
    train_data: str,
    seed: int,
    output_dir: Path | None,
    hooks: Hooks,
    progress: Any = None,
    resume: bool = False,
) -> list[StageReport]:
    """Train ``stages`` in order on ``backbone`` (call :func:`prepare_model` first). With
    ``resume``, continue from the latest checkpoint in ``output_dir``; without it, a checkpoint
    already there is refused (a fresh run never reads one).

    With a sharding engine (``config.sharding``) the model is sharded in place and cannot encode
    afterwards: reload the backbone and the final checkpoint (the runner does).
    """
    import torch

    from harness import engines, flops
    from harness.sharding_config import for_training
    from harness.telemetry import matmul_peak, measure

    sharding = for_training(config)
    if sharding.fsdp.activation_checkpointing and not config.gradient_checkpointing:
        enable_checkpointing(backbone.model, lora=config.finetune != "full")
    device = backbone.device
    engine = engines.build(backbone.model, sharding)
    world = distributed.world()
    found = latest_checkpoint(output_dir) if output_dir is not None else None
    if found is not None and not resume:
        raise HarnessError(f"{found} holds a checkpoint already; a fresh run never reads one (resume it instead).")
    resume_state = read_state(found) if found else None
    if resume:
        hooks.note(_resume_note(resume_state, stages))
    if found is not None:
        if resume_state.get("engine", "none") != engine.name:
            raise HarnessError(
                f"checkpoint {found} was written by the {resume_state.get('engine', 'none')} engine; "
                f"resume with the same method_args.sharding (now {engine.name})."
            )
        engine.load_trainable(read_trainable(found, [name for name, _ in trainable_parameters(backbone.model)]))
    reports = []
    base_config = config
    for index, stage in enumerate(stages):
        config = dataclasses.replace(base_config, **getattr(stage, "overrides", {}))
        start_step = 0
        if resume_state is not None:
            if index < resume_state["stage_index"] or (index == resume_state["stage_index"] and resume_state["done"]):
                continue
            if index == resume_state["stage_index"]:
                start_step = resume_state["step"]
        examples = _stage_examples(stage, index, engine, backbone, config, train_data, seed, output_dir, resumed=bool(start_step))
        steps = total_steps(len(examples), config, world.world_size)
        engine.start_stage(config, steps, _schedule(steps, config.warmup_ratio))
        if start_step:
            engine.load_optimizer(found)
            _set_rng_state(torch.load(found / "rng.pt", weights_only=False))
        with measure(f"train:{stage.name}", device) as phase, flops.meter() as counted:
            samples, tokens = _loop(
                engine, backbone, stage, examples, config, index=index, start_step=start_step, steps=steps,
                seed=seed, world=world, device=device, output_dir=output_dir, hooks=hooks, progress=progress,
            )
        peak = matmul_peak(device, torch.bfloat16 if bf16_wanted(device, config) else torch.float32)
        model_flops, peak = (v * world.world_size for v in distributed.means_across_ranks(counted[0], peak))
        _diagnose(engine, backbone, stage, config, world, hooks)
        reports.append(
            StageReport(
                stage=stage.name, steps=steps - start_step, seconds=phase.seconds, samples=samples,
                tokens=tokens, peak_memory_bytes=phase.peak_memory_bytes or 0, world_size=world.world_size,
                per_device_batch=config.batch_size,
                effective_batch=config.batch_size * config.grad_accum * world.world_size, engine=engine.name,
                model_flops=model_flops or None, peak_flops_per_s=peak,
            )
        )
    engine.train(False)
    return reports


def _resume_note(state: dict[str, Any] | None, stages: Sequence[Stage]) -> str:
    if state is None:
        return f"no checkpoint was saved before the interruption: training starts again at stage {stages[0].name}, step 0"
    if state["done"]:
        later = [s.name for s in stages[state["stage_index"] + 1 :]]
        then = f"; resuming stage {later[0]} at step 0" if later else "; training is complete"
        return f"stage {state['stage']} finished{then}"
    return f"resuming stage {state['stage']} at step {state['step']}"


def _diagnose(engine: Any, backbone: Backbone, stage: Stage, config: TrainConfig, world: distributed.DistInfo, hooks: Hooks) -> None:
    """A :class:`~harness.method.DiagnosedStage` measures itself on held-out data as it ends (every
    rank runs it, so sharded parameters are gathered alike; rank 0 reports)."""
    import torch

    diagnose = getattr(stage, "diagnose", None)
    if diagnose is None:
        return
    engine.train(False)
    with torch.no_grad():
        values, notes = engine(lambda model: diagnose(model, backbone.tokenizer, config))
    engine.train(True)
    if world.is_main and values:
        hooks.diagnostics(stage.name, values)
        for note in notes:
            hooks.note(note)


def _stage_examples(
    stage: Stage, index: int, engine: Any, backbone: Backbone, config: TrainConfig, train_data: str,
    seed: int, output_dir: Path | None, *, resumed: bool,
) -> Sequence[Any]:
    """The stage's examples; for a :class:`PreparedStage`, prepared once from the model as it is at
    the stage's start and kept beside the checkpoints for a resume."""
    import torch

    saved = output_dir / "checkpoints" / f"{index}-{stage.name}.examples.pt" if output_dir else None
    if resumed and saved is not None and saved.exists():
        return torch.load(saved, weights_only=False)
    examples = list(stage.examples(train_data, seed))
    if config.max_examples and len(examples) > config.max_examples:
        chosen = sorted(random.Random(seed).sample(range(len(examples)), config.max_examples))
        examples = [examples[i] for i in chosen]
    begin = getattr(stage, "begin", None)
    if begin is not None:
        engine.train(False)
        examples = list(engine(lambda model: begin(model, backbone.tokenizer, examples, config)))
        engine.train(True)
        if saved is not None and distributed.world().is_main:
            saved.parent.mkdir(parents=True, exist_ok=True)
            torch.save(examples, saved.with_suffix(".tmp"))
            os.replace(saved.with_suffix(".tmp"), saved)
    return examples


def _loop(
    engine: Any, backbone: Backbone, stage: Stage, examples: Sequence[Any], config: TrainConfig, *,
    index: int, start_step: int, steps: int, seed: int, world: distributed.DistInfo, device: torch.device,
    output_dir: Path | None, hooks: Hooks, progress: Any,
) -> tuple[int, int]:
    autocast = _autocast(engine, device, config)
    began = last_save = time.perf_counter()
    logs: list[StepLog] = []
    samples = tokens = 0
    try:
        for step in range(start_step, steps):
            total = 0.0
            step_tokens = 0
            for micro in range(config.grad_accum):
                batch = [examples[i] for i in batch_indices(len(examples), seed=seed, step=step, micro=micro, config=config, world=world)]
                try:
                    with autocast():
                        loss, batch_tokens = engine(lambda model: stage.loss(model, backbone.tokenizer, batch, config))
                    engine.backward(loss, accum=config.grad_accum, last=micro + 1 == config.grad_accum)
                except (RuntimeError, MemoryError) as exc:
                    if isinstance(exc, MemoryError) or is_out_of_memory(exc):
                        raise out_of_memory(stage.name, step + 1, config) from None
                    raise
                total += float(loss.detach()) / config.grad_accum
                samples += len(batch) * world.world_size
                step_tokens += batch_tokens
            # rank 0's clock decides when a timed checkpoint is due; it rides on the step's one
            # all-reduce, so every rank saves at the same step
            due = bool(config.checkpoint_minutes) and time.perf_counter() - last_save >= 60 * config.checkpoint_minutes
            global_loss, mean_tokens, due_votes = distributed.means_across_ranks(total, step_tokens, float(due and world.is_main))
            tokens += round(mean_tokens * world.world_size)
            if not math.isfinite(global_loss):
                raise NonFiniteLoss(
                    f"stage {stage.name}: the loss became {global_loss} at step {step + 1}; the last good "
                    "checkpoint is kept. Lower lr, or turn bf16 off."
                )
            lr = engine.lr()
            engine.step()
            logs.append(StepLog(stage.name, step + 1, global_loss, lr, time.perf_counter() - began))
            faults.point("train-step")
            if progress is not None:
                progress(stage.name, step + 1, steps, global_loss, lr, tokens / max(1e-9, time.perf_counter() - began))
            done = step + 1 == steps
            every = config.checkpoint_every and (step + 1) % config.checkpoint_every == 0
            save = done or every or due_votes > 0
            if save or len(logs) >= 50:
                if world.is_main:
                    hooks.steps(stage.name, logs)
                logs = []
            if save and output_dir is not None:
                state = {"stage_index": index, "stage": stage.name, "step": step + 1, "done": done}
                folder = save_checkpoint(output_dir / "checkpoints" / f"{index}-{stage.name}", engine, state)
                last_save = time.perf_counter()
                if world.is_main:
                    hooks.checkpoint(folder)
    except BaseException:  # interrupted or failed: the steps done so far are recorded all the same
        if logs and world.is_main:
            with contextlib.suppress(Exception):  # the error in flight is the one to report
                hooks.steps(stage.name, logs)
        raise
    return samples, tokens
