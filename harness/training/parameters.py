"""Which parameters train: LoRA adapters (peft), all weights, or none; activation checkpointing; bf16."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.training.train_config import ALL_LINEAR, TrainConfig

if TYPE_CHECKING:
    import torch

    from harness.model.backbones import Backbone


def lora_targets(backbone: Backbone, config: TrainConfig) -> list[str] | str:
    """The configured LoRA targets as peft takes them: ``all-linear``, or names each matching a
    linear layer of the backbone the way peft matches them (the module's name or a dotted suffix of
    it: ``v_proj`` does not match Phi-3's ``qkv_proj``). A name matching none is an error."""
    import torch
    from transformers.pytorch_utils import Conv1D

    targets = config.lora_targets
    if targets == [ALL_LINEAR]:
        return ALL_LINEAR
    layers = (torch.nn.Linear, Conv1D)  # GPT-2's projections are Conv1D; peft adapts both
    linear = [name for name, module in backbone.model.named_modules() if isinstance(module, layers)]
    missing = [t for t in targets if t == ALL_LINEAR or not any(n == t or n.endswith("." + t) for n in linear)]
    if missing:
        kinds = sorted({name.rsplit(".", 1)[-1] for name in linear})
        raise HarnessError(
            f"method_args.lora_targets: {', '.join(missing)} match no linear layer of {backbone.spec.name}"
            + (" (all-linear stands alone)" if ALL_LINEAR in missing else "")
            + f'; its linear layers are {", ".join(kinds)}, or give ["all-linear"].'
        )
    return list(targets)


def check_trainable(config: TrainConfig, own_parameters: bool) -> None:
    """``finetune=frozen`` trains only a method's own parameters: refuse it for a method without any."""
    if config.finetune == "frozen" and not own_parameters:
        raise HarnessError(
            "method_args.finetune=frozen trains only a method's own parameters, and this method "
            "has none: choose lora or full."
        )


def prepare_model(backbone: Backbone, config: TrainConfig) -> None:
    """Attach LoRA adapters, unfreeze everything (full) or freeze everything (frozen: a method
    trains only parameters it adds in ``prepare``), and switch to training mode, in place."""
    model = backbone.model
    if config.finetune == "lora":
        from peft import LoraConfig, get_peft_model

        targets = lora_targets(backbone, config)
        lora = LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets
        )
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


# -- the loop -------------------------------------------------------------------------------
def bf16_wanted(device: torch.device, config: TrainConfig) -> bool:
    import torch

    return config.bf16 == "on" or (config.bf16 == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
