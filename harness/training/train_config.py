"""House training options every trained method shares, and what the loop reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.method import MethodConfig
from harness.options import not_empty, option

ALL_LINEAR = "all-linear"  # peft's: every linear layer of the transformer blocks, never the LM head
LORA_TARGETS = [ALL_LINEAR]
LORA_TARGETS_HELP = (
    "module names that get LoRA adapters, as peft matches them (a name or a dotted suffix, each must "
    "match); all-linear (peft's) = every linear layer of the blocks, never the LM head: q/k/v/o_proj and "
    "gate/up/down_proj on Llama, Mistral, Qwen 2/3 and Gemma 3, qkv_proj, o_proj, gate_up_proj and down_proj on Phi-3"
)


@dataclass
class TrainConfig(MethodConfig):
    """House training options shared by every trained method (override per method)."""

    steps: int = option(0, "optimizer steps per stage; 0 = derive from epochs", minimum=0)
    epochs: float = option(1.0, "passes over the stage's data when steps is 0", minimum=0)
    batch_size: int = option(
        8, "training examples per device per micro-batch (encoding for evaluation: --eval-batch-size)", minimum=1
    )
    grad_accum: int = option(1, "micro-batches per optimizer step", minimum=1)
    lr: float = option(2e-4, "peak learning rate (AdamW)", above=0)
    warmup_ratio: float = option(
        0.05, "fraction of steps of linear warm-up, then linear decay to 0", minimum=0, maximum=1
    )
    weight_decay: float = option(0.0, "AdamW weight decay", minimum=0)
    max_grad_norm: float = option(1.0, "gradient clipping norm; 0 = off", minimum=0)
    finetune: Literal["lora", "full", "frozen"] = option(
        "lora", "train LoRA adapters (peft), all weights, or none (frozen: only the method's own parameters)"
    )
    lora_r: int = option(16, "LoRA rank", minimum=1)
    lora_alpha: int = option(32, "LoRA alpha", above=0)
    lora_dropout: float = option(0.05, "LoRA dropout", minimum=0, below=1)
    dropout: float = option(
        0.0,
        "attention dropout while training (SimCSE's two views of a text); 0 = the backbone's own (none)",
        minimum=0,
        below=1,
    )
    hidden_dropout: float = option(
        0.0,
        "dropout of every attention and MLP sublayer's output while training (BERT's hidden dropout); 0 = none",
        minimum=0,
        below=1,
    )
    lora_targets: list[str] = option(LORA_TARGETS, LORA_TARGETS_HELP, check=not_empty, rule="not empty")
    gradient_checkpointing: bool = option(False, "recompute activations in backward to save memory")
    bf16: Literal["auto", "on", "off"] = option("auto", "bf16 autocast; auto = on GPUs that support it")
    checkpoint_every: int = option(0, "save a checkpoint every N steps (0 = only at stage ends)", minimum=0)
    checkpoint_minutes: float = option(
        10.0, "also save one when this many minutes passed since the last (0 = off)", minimum=0
    )
    max_length: int = option(
        128,
        "tokens per training text, template included (encoding for evaluation: the top-level max_length)",
        minimum=8,
    )
    pack: bool = option(
        False,
        "run each pass's rows as one packed sequence (no padding; pays with variable-length attention kernels); false = pad to the longest",
    )
    max_examples: int = option(0, "use at most this many examples per stage (seeded choice); 0 = all", minimum=0)
    sharding: Literal["auto", "none", "fsdp", "deepspeed"] = option(
        "auto", "shard a full fine-tune with FSDP2 or DeepSpeed; auto = as accelerate launch says, else none"
    )
    sharding_config: str = option("", "FSDP (JSON/YAML, accelerate or Trainer keys) or DeepSpeed (JSON) config file")
    eval_every: int | None = option(
        None,
        "evaluate the run's --dev-tasks every N optimizer steps and at each stage's end (None = off; needs --dev-tasks)",
        minimum=1,
    )
    keep_best: bool = option(
        False,
        "the checkpoint with the best mean dev score (the earliest of equals) becomes the run's encoder (needs eval_every)",
    )

    def inconsistency(self, prefix: str) -> str | None:
        """Options that are wrong only together (see ``harness.options.check_values``)."""
        if self.steps == 0 and self.epochs == 0:
            return f"{prefix}steps=0 and {prefix}epochs=0 leave nothing to train; set one of them"
        if self.keep_best and self.eval_every is None:
            return f"{prefix}keep_best=true needs {prefix}eval_every=N (and --dev-tasks): the best of which dev evaluations?"
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
    dev_seconds: float = 0.0  # spent evaluating dev tasks, left out of ``seconds``

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

    def dev_evaluation(self, stage: str, step: int) -> None:
        """Evaluate the run's dev tasks on the model as it is after ``step`` of ``stage`` (called
        on every rank, in eval mode, every ``eval_every`` steps and at the stage's end)."""
