"""Which parameters train: LoRA adapters (peft), all weights, or none; activation checkpointing; bf16."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.training.config import TrainConfig

if TYPE_CHECKING:
    import torch

    from harness.model.backbones import Backbone


def lora_targets(backbone: Backbone, config: TrainConfig) -> list[str]:
    """The configured LoRA targets that name modules of the backbone; none is an error."""
    names = [name for name, _ in backbone.model.named_modules()]
    targets = [t for t in config.lora_targets if any(n.endswith(t) for n in names)]
    if not targets:
        raise HarnessError(f"method_args.lora_targets {config.lora_targets} match no module of {backbone.spec.name}.")
    return targets


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


# -- the loop -------------------------------------------------------------------------------
def bf16_wanted(device: torch.device, config: TrainConfig) -> bool:
    import torch

    return config.bf16 == "on" or (config.bf16 == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
