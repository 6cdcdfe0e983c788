"""A recorded run's encoder rebuilt as it encoded: for ``harness eval`` (new tasks, no
retraining) and ``harness export``. Trained runs reload the weights of their final checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.model.attention_check import attend
from harness.model.backbones import load_backbone
from harness.runs import folders
from harness.runs.plan import RunPlan, plan_restore
from harness.runs.process import quiet_libraries
from harness.training.checkpoints import latest_checkpoint, load_trainable
from harness.training.parameters import prepare_model

if TYPE_CHECKING:
    from rich.console import Console

    from harness.method import Method
    from harness.model.backbones import Backbone


def loaded_backbone(plan: RunPlan, console: Console) -> Backbone:
    """The plan's backbone, loaded under a status line, attending as its method declares (checked
    on the model: a mode that did not take effect is refused before anything is recorded)."""

    with console.status("Loading backbone") as status:
        backbone = load_backbone(plan.backbone, plan.config.device, plan.config.dtype, status)
    attend(
        backbone.model,
        plan.method.attention,
        f"backbone {plan.backbone.name!r}",
        packed=bool(getattr(plan.method.config, "pack", False)),
    )
    return backbone


def trained_backbone(plan: RunPlan, output_dir: Path, console: Console) -> Backbone:
    """A fresh, unsharded backbone with the latest checkpoint's trained weights, ready to encode."""

    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is None:
        raise HarnessError(f"no checkpoint to evaluate in {output_dir}.")
    backbone = loaded_backbone(plan, console)
    prepare_model(backbone, dataclasses.replace(plan.method.config, gradient_checkpointing=False))
    plan.method.prepare(backbone)
    load_trainable(backbone.model, checkpoint)
    backbone.model.eval()
    return backbone


def encoding_backbone(plan: RunPlan, record: dict[str, Any], console: Console, *, purpose: str) -> Backbone:
    """The backbone reloaded as the recorded run encoded: with the trained weights of the run's
    final checkpoint (trained methods), else as ``prepare`` leaves it."""
    if plan.trains:
        folder = folders.own_folder(record, None, purpose=purpose)
        if folder is None:
            raise HarnessError(f"run {record['run_id']} has no output folder with checkpoints to {purpose}.")
        return trained_backbone(plan, folder, console)
    backbone = loaded_backbone(plan, console)
    plan.method.prepare(backbone)
    return backbone


def restore_model(record: dict[str, Any], console: Console) -> tuple[Method, Backbone]:
    """A finished run's method and backbone as they encoded (for export); task and training files
    need not exist any more."""
    if record["status"] != "finished":
        raise HarnessError(f"run {record['run_id']} is {record['status']}; only finished runs can be exported.")
    quiet_libraries()
    plan = plan_restore(record)
    return plan.method, encoding_backbone(plan, record, console, purpose="export")
