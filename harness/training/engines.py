"""How the training loop's model is run, reduced and stepped across processes.

* :class:`Replicated` (default): every rank holds the whole model; gradients are averaged by
  :func:`harness.training.distributed.average_gradients`. LoRA and small full fine-tunes.
* :class:`FSDP`: PyTorch FSDP2 (``fully_shard``) on every transformer layer and on the root;
  parameters, gradients and optimizer state are sharded across ranks.
* :class:`DeepSpeed`: ``deepspeed.initialize`` with the user's JSON config (ZeRO 0-3, offload).

Methods compute losses by calling parts of the model (``get_decoder()``, the embedding table,
the LM head), not its ``forward``. Sharding engines only gather parameters inside a wrapped
module's forward, so every computation goes through one root module, :class:`Root`, whose forward
runs the stage's function on the model: ``engine(lambda model: stage.loss(model, ...))``.

Every engine reduces gradients to the mean over ranks (the convention of
:mod:`harness.training.distributed`), so the same stage code gives the same update on every engine.
Checkpoints hold full (gathered) trainable weights in ``trainable.pt`` whatever the engine, so a
run can be evaluated, or resumed, without knowing how it was sharded; optimizer state is saved in
the engine's own format.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

from harness.errors import HarnessError
from harness.training import distributed
from harness.training.checkpoints import copy_trainable
from harness.training.parameters import bf16_wanted, trainable_parameters
from harness.training.sharding import Sharding, deepspeed_config

if TYPE_CHECKING:
    from harness.training.train_config import TrainConfig


def adamw(params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of every stage, on every engine (DeepSpeed's own when its config names one)."""
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


class Root(torch.nn.Module):
    """The module a sharding engine wraps: ``root(fn)`` is ``fn(model)`` inside its forward."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, fn: Callable[[torch.nn.Module], Any]) -> Any:  # type: ignore[override]
        return fn(self.model)


class Replicated:
    """The whole model on every rank; gradients all-reduced by the harness."""

    name = "none"
    sharded = False
    autocast = True  # the loop's bf16 autocast applies (DeepSpeed casts the model itself)

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.optimizer: Any = None
        self.scheduler: Any = None

    def __call__(self, fn: Callable[[torch.nn.Module], Any]) -> Any:
        return fn(self.model)

    def train(self, mode: bool = True) -> None:
        self.model.train(mode)

    def params(self) -> list[torch.nn.Parameter]:
        return [p for _, p in trainable_parameters(self.model)]

    def start_stage(self, config: TrainConfig, steps: int, schedule: Callable[[int], float]) -> None:
        self.trainable = self.params()  # fixed for the stage: no list rebuilt every step
        self.optimizer = adamw(self.trainable, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.max_grad_norm = config.max_grad_norm

    def backward(self, loss: torch.Tensor, *, accum: int, last: bool) -> None:
        (loss / accum).backward()

    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def step(self) -> None:
        distributed.average_gradients(self.trainable)
        self._clip()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _clip(self) -> None:
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.max_grad_norm)

    # -- checkpoints (collective calls: every rank enters them) --
    def full_trainable(self) -> dict[str, torch.Tensor]:
        """All trainable tensors, whole, on the CPU (rank 0; other ranks may get an empty dict)."""
        return {n: p.detach().cpu() for n, p in trainable_parameters(self.model)}

    def load_trainable(self, saved: dict[str, torch.Tensor]) -> None:
        copy_trainable(self.model, saved)

    def save_optimizer(self, folder: Path) -> None:
        if distributed.world().is_main:
            torch.save(self.optimizer.state_dict(), folder / "optimizer.pt")
            torch.save(self.scheduler.state_dict(), folder / "scheduler.pt")

    def load_optimizer(self, folder: Path) -> None:
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=False))
        self.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=False))


class FSDP(Replicated):
    """FSDP2: each transformer layer is one sharded unit; the rest (embeddings, final norm, LM
    head, method parameters such as AutoRegEmbed's slots) belongs to the root unit."""

    name = "fsdp"
    sharded = True

    def __init__(self, model: torch.nn.Module, sharding: Sharding) -> None:
        options = sharding.fsdp
        device = next(model.parameters()).device
        mesh = init_device_mesh(device.type, (distributed.world().world_size,))
        kwargs: dict[str, Any] = {"mesh": mesh, "reshard_after_forward": options.reshard_after_forward}
        if options.param_dtype and options.param_dtype != "fp32":
            dtype = torch.bfloat16 if options.param_dtype == "bf16" else torch.float16
            kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
        if options.offload_params:
            kwargs["offload_policy"] = CPUOffloadPolicy()
        classes = set(options.layer_classes or getattr(model, "_no_split_modules", None) or ())
        layers = [m for m in model.modules() if type(m).__name__ in classes]
        if not layers:
            raise HarnessError(
                f"FSDP: no module of class {sorted(classes) or '(none named)'} in the model; set "
                "fsdp_transformer_layer_cls_to_wrap in method_args.sharding_config."
            )
        for layer in layers:
            fully_shard(layer, **kwargs)
        self.root = Root(model)
        fully_shard(self.root, **kwargs)
        super().__init__(model)
        self.prefix = "model."

    def __call__(self, fn: Callable[[torch.nn.Module], Any]) -> Any:
        return self.root(fn)

    def backward(self, loss: torch.Tensor, *, accum: int, last: bool) -> None:
        self.root.set_requires_gradient_sync(last)  # reduce-scatter once per optimizer step
        (loss / accum).backward()

    def step(self) -> None:  # FSDP already averaged the gradients in backward
        self._clip()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _options(self, **kwargs: Any) -> Any:
        return StateDictOptions(full_state_dict=True, **kwargs)

    def full_trainable(self) -> dict[str, torch.Tensor]:
        wanted = {name for name, _ in trainable_parameters(self.model)}
        state = get_model_state_dict(self.root, options=self._options(cpu_offload=True))
        cut = len(self.prefix)
        return {k[cut:]: v for k, v in state.items() if k[cut:] in wanted}

    def load_trainable(self, saved: dict[str, torch.Tensor]) -> None:
        state = {self.prefix + k: v for k, v in saved.items()}
        set_model_state_dict(self.root, state, options=self._options(strict=False))

    def save_optimizer(self, folder: Path) -> None:
        state = get_optimizer_state_dict(self.root, self.optimizer, options=self._options(cpu_offload=True))
        if distributed.world().is_main:
            torch.save({"optimizer": state, "scheduler": self.scheduler.state_dict()}, folder / "optimizer.pt")

    def load_optimizer(self, folder: Path) -> None:
        saved = torch.load(folder / "optimizer.pt", weights_only=False)
        # strict=False: a parameter the stage never used (e.g. the LM head in InfoNCE) has no state
        set_optimizer_state_dict(self.root, self.optimizer, saved["optimizer"], options=self._options(strict=False))
        self.scheduler.load_state_dict(saved["scheduler"])


class DeepSpeed(Replicated):
    """DeepSpeed with the user's config; one ``deepspeed.initialize`` per stage (each stage has
    its own optimizer and schedule, as on every engine). DeepSpeed reduces, accumulates, clips
    and steps."""

    name = "deepspeed"
    sharded = True
    autocast = False

    def __init__(self, model: torch.nn.Module, sharding: Sharding) -> None:
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            raise HarnessError(
                "method_args.sharding=deepspeed needs DeepSpeed: pip install 'harness[deepspeed]'."
            ) from None
        super().__init__(model)
        self.root = Root(model)
        self.user_config = sharding.deepspeed
        self.engine: Any = None

    def __call__(self, fn: Callable[[torch.nn.Module], Any]) -> Any:
        return (self.engine or self.root)(fn)

    def start_stage(self, config: TrainConfig, steps: int, schedule: Callable[[int], float]) -> None:
        import deepspeed

        hidden = getattr(getattr(self.model, "config", None), "hidden_size", 0)
        bf16 = bf16_wanted(next(self.model.parameters()).device, config)
        ds_config = deepspeed_config(self.user_config, config, distributed.world().world_size, hidden, bf16)
        params = self.params()
        optimizer = None if "optimizer" in ds_config else adamw(params, config)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=self.root,
            model_parameters=params,
            optimizer=optimizer,
            config=ds_config,
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule),
            dist_init_required=False,
        )

    def backward(self, loss: torch.Tensor, *, accum: int, last: bool) -> None:
        self.engine.backward(loss)  # DeepSpeed divides by gradient_accumulation_steps itself
        if not last:
            self.engine.step()  # not a boundary: DeepSpeed only accumulates

    def step(self) -> None:
        self.engine.step()

    def _gathered(self) -> Any:
        import deepspeed

        return deepspeed.zero.GatheredParameters(self.params(), modifier_rank=0)

    def full_trainable(self) -> dict[str, torch.Tensor]:
        with self._gathered():
            return super().full_trainable() if distributed.world().is_main else {}

    def load_trainable(self, saved: dict[str, torch.Tensor]) -> None:
        with self._gathered():  # rank 0 writes; the new values are re-partitioned on exit
            if distributed.world().is_main:
                super().load_trainable(saved)

    def save_optimizer(self, folder: Path) -> None:
        """DeepSpeed's own format: every rank writes its optimizer partition under ``deepspeed/``."""
        self.engine.save_checkpoint(str(folder / "deepspeed"), tag="state")

    def load_optimizer(self, folder: Path) -> None:
        self.engine.load_checkpoint(
            str(folder / "deepspeed"), tag="state", load_optimizer_states=True, load_lr_scheduler_states=True
        )


def build(model: torch.nn.Module, sharding: Sharding) -> Replicated:
    """The engine for ``sharding`` (from :func:`harness.training.sharding.for_training`)."""
    if sharding.sharded:
        distributed.init_single(next(model.parameters()).device.type)
    if sharding.engine == "fsdp":
        return FSDP(model, sharding)
    if sharding.engine == "deepspeed":
        return DeepSpeed(model, sharding)
    return Replicated(model)
