"""Which engine shards a full fine-tune, and with what options: read from ``method_args.sharding``
and ``method_args.sharding_config``, or from the environment ``accelerate launch`` sets up.

Configs are passed through as users already have them:

* FSDP: a JSON or YAML file with the keys of accelerate's ``fsdp_config`` section or the
  transformers Trainer's ``--fsdp_config`` (with or without the ``fsdp_`` prefix); a whole
  ``accelerate config`` YAML works too (its ``fsdp_config`` section is read). Under
  ``accelerate launch --use_fsdp`` the ``FSDP_*`` variables it exports are read instead.
* DeepSpeed: the DeepSpeed JSON config, "auto" values allowed (filled from the harness options);
  under ``accelerate launch --use_deepspeed`` the file named by ``--deepspeed_config_file``, or the
  ZeRO stage and offload flags it exports.

No torch import here: this module only decides and validates.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.paths import readable_file

ENGINES = ("none", "fsdp", "deepspeed")

#: FSDP keys that make sense for FSDP1 but not for the per-layer FSDP2 sharding used here:
#: accepted so that existing configs load, and ignored (docs/pitfalls.md says why).
FSDP_IGNORED = {
    "auto_wrap_policy",
    "backward_prefetch",
    "forward_prefetch",
    "cpu_ram_efficient_loading",
    "state_dict_type",
    "sync_module_states",
    "use_orig_params",
    "min_num_params",
    "limit_all_gathers",
}
FSDP_KEYS = {
    "version",
    "reshard_after_forward",
    "sharding_strategy",
    "offload_params",
    "transformer_layer_cls_to_wrap",
    "activation_checkpointing",
    "mixed_precision",
} | FSDP_IGNORED


@dataclass(frozen=True)
class FSDPOptions:
    reshard_after_forward: bool = True
    offload_params: bool = False
    layer_classes: tuple[str, ...] = ()  # empty: the model's own _no_split_modules
    activation_checkpointing: bool = False
    param_dtype: str = ""  # "", "bf16", "fp16", "fp32"


@dataclass(frozen=True)
class Sharding:
    """The resolved choice: engine name, FSDP options or a DeepSpeed config dict, and its origin."""

    engine: str = "none"
    fsdp: FSDPOptions = field(default_factory=FSDPOptions)
    deepspeed: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def sharded(self) -> bool:
        return self.engine != "none"


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _read_file(path: Path) -> dict[str, Any]:
    path = readable_file(path, "method_args.sharding_config")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise HarnessError(f"{path}: not UTF-8 text (byte {exc.start}).") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}).") from None
    except Exception as exc:  # yaml.YAMLError carries its own line/column text
        raise HarnessError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: the top level must be a table of options.")
    return data


def fsdp_options(raw: dict[str, Any], where: str) -> FSDPOptions:
    """FSDPOptions from accelerate / Trainer style keys (``fsdp_`` prefix optional)."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise HarnessError(f"{where}: option names must be text, not {key!r}.")
        name = key[5:] if key.startswith("fsdp_") else key
        if name == "transformer_cls_to_wrap":  # accelerate's environment spelling
            name = "transformer_layer_cls_to_wrap"
        if name not in FSDP_KEYS:
            raise HarnessError(f"{where}: unknown FSDP option {key!r} (known: {', '.join(sorted(FSDP_KEYS))}).")
        values[name] = value
    if str(values.get("version", 2)) != "2":
        raise HarnessError(
            f"{where}: fsdp_version {values['version']}: the harness shards with FSDP2 (fully_shard); set fsdp_version: 2."
        )
    reshard = _truthy(values.get("reshard_after_forward", True))
    strategy = str(values.get("sharding_strategy", "")).upper()
    if strategy in ("SHARD_GRAD_OP", "2"):
        reshard = False
    elif strategy in ("NO_SHARD", "3", "HYBRID_SHARD", "4", "HYBRID_SHARD_ZERO2", "5"):
        raise HarnessError(f"{where}: sharding_strategy {strategy} is not supported; use FULL_SHARD or SHARD_GRAD_OP.")
    classes = values.get("transformer_layer_cls_to_wrap") or ()
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise HarnessError(
            f"{where}: transformer_layer_cls_to_wrap must be a class name or a list of them, not {classes!r}."
        )
    dtype = str(values.get("mixed_precision", "") or "").lower()
    if dtype in ("no", "none"):
        dtype = ""
    if dtype not in ("", "bf16", "fp16", "fp32"):
        raise HarnessError(f"{where}: mixed_precision {dtype!r}: choose bf16, fp16, fp32 or no.")
    return FSDPOptions(
        reshard_after_forward=reshard,
        offload_params=_truthy(values.get("offload_params", False)),
        layer_classes=tuple(classes),
        activation_checkpointing=_truthy(values.get("activation_checkpointing", False)),
        param_dtype=dtype,
    )


def _from_accelerate_environment() -> Sharding | None:
    env = os.environ
    if _truthy(env.get("ACCELERATE_USE_FSDP", "")):
        raw = {k[5:].lower(): v for k, v in env.items() if k.startswith("FSDP_")}
        raw = {k: v for k, v in raw.items() if k in FSDP_KEYS or k == "transformer_cls_to_wrap"}
        precision = env.get("ACCELERATE_MIXED_PRECISION", "")
        if precision:
            raw["mixed_precision"] = precision
        return Sharding("fsdp", fsdp=fsdp_options(raw, "accelerate launch --use_fsdp"), source="accelerate launch")
    if _truthy(env.get("ACCELERATE_USE_DEEPSPEED", "")):
        file = env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "")
        if file and file.lower() != "none":
            return Sharding("deepspeed", deepspeed=_read_file(Path(file)), source=file)
        zero: dict[str, Any] = {"stage": int(env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", 2))}
        for kind in ("optimizer", "param"):
            device = env.get(f"ACCELERATE_DEEPSPEED_OFFLOAD_{kind.upper()}_DEVICE", "none")
            if device != "none":
                zero[f"offload_{kind}"] = {"device": device}
        return Sharding("deepspeed", deepspeed={"zero_optimization": zero}, source="accelerate launch")
    return None


def choose_engine(engine: str, config_file: str) -> Sharding:
    """The engine for ``method_args.sharding`` (``auto``: the accelerate launch environment, else
    none) and ``method_args.sharding_config``."""
    if engine not in ENGINES + ("auto",):
        raise HarnessError(f"method_args.sharding={engine!r}: choose auto, {', '.join(ENGINES)}.")
    if engine == "auto":
        if config_file:
            raise HarnessError("method_args.sharding_config needs method_args.sharding=fsdp or deepspeed.")
        return _from_accelerate_environment() or Sharding()
    if engine == "none":
        return Sharding()
    if engine == "fsdp":
        if not config_file:
            return Sharding("fsdp", source="defaults")
        raw = _read_file(Path(config_file))
        section = raw.get("fsdp_config", raw)
        if not isinstance(section, dict):
            raise HarnessError(f"{config_file}: fsdp_config must be a table of options.")
        return Sharding("fsdp", fsdp=fsdp_options(section, config_file), source=config_file)
    if not config_file:
        return Sharding("deepspeed", deepspeed={"zero_optimization": {"stage": 2}}, source="defaults")
    return Sharding("deepspeed", deepspeed=_read_file(Path(config_file)), source=config_file)


def for_training(config: Any) -> Sharding:
    """The engine for a :class:`~harness.training.TrainConfig`, checked before anything is recorded:
    sharding engines are for full fine-tunes, and a DeepSpeed config must fit the options."""
    sharding = choose_engine(config.sharding, config.sharding_config)
    if sharding.sharded and config.finetune != "full":
        raise HarnessError(
            f"method_args.sharding={sharding.engine} shards full fine-tunes; set method_args.finetune=full "
            "(LoRA adapters are small and train replicated)."
        )
    if sharding.engine == "deepspeed":
        world = int(os.environ.get("WORLD_SIZE", 1))
        deepspeed_config(sharding.deepspeed, config, world, hidden_size=1, bf16=False)
    return sharding


def _fill(ds: dict[str, Any], key: str, value: Any) -> None:
    given = ds.get(key, "auto")
    if given == "auto":
        ds[key] = value
    elif given != value:
        raise HarnessError(f'DeepSpeed config {key}={given} but the harness uses {value}; set it to "auto".')


def _table(ds: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    value = ds.setdefault(key, {})
    if not isinstance(value, dict):
        raise HarnessError(f"DeepSpeed config {where}{key} must be a table, not {value!r}.")
    return value


def deepspeed_config(
    user: dict[str, Any], config: Any, world_size: int, hidden_size: int, bf16: bool
) -> dict[str, Any]:
    """The user's DeepSpeed config with every ``"auto"`` filled from the harness options (``config``
    is a TrainConfig); values that contradict them (batch sizes) are refused, and so is a
    ``scheduler`` section with values of its own (one of only ``"auto"`` values is dropped): every
    engine uses the same warm-up and decay, so that comparisons stay comparisons of methods."""
    ds = copy.deepcopy(user)
    scheduler = ds.pop("scheduler", None)
    params = scheduler.get("params", {}) if isinstance(scheduler, dict) else None
    if scheduler is not None and (not isinstance(params, dict) or any(v != "auto" for v in params.values())):
        raise HarnessError(
            "DeepSpeed config: the 'scheduler' section may only hold \"auto\" values (the harness's warm-up "
            "and linear decay fill them); set method_args.warmup_ratio instead."
        )
    _fill(ds, "train_micro_batch_size_per_gpu", config.batch_size)
    _fill(ds, "gradient_accumulation_steps", config.grad_accum)
    _fill(ds, "train_batch_size", config.batch_size * config.grad_accum * world_size)
    if ds.get("gradient_clipping", "auto") == "auto":
        ds["gradient_clipping"] = config.max_grad_norm
    for key, value in (("bf16", bf16), ("fp16", False)):
        section = _table(ds, key)
        if section.get("enabled", "auto") == "auto":
            section["enabled"] = value
    if "optimizer" in ds:
        optimizer = _table(_table(ds, "optimizer"), "params", "optimizer.")
        for key, value in (
            ("lr", config.lr),
            ("weight_decay", config.weight_decay),
            ("betas", [0.9, 0.999]),
            ("eps", 1e-8),
        ):
            if optimizer.get(key) == "auto":
                optimizer[key] = value
    zero = _table(ds, "zero_optimization")
    for key, value in (
        ("reduce_bucket_size", hidden_size * hidden_size),
        ("stage3_prefetch_bucket_size", math.floor(0.9 * hidden_size * hidden_size)),
        ("stage3_param_persistence_threshold", 10 * hidden_size),
    ):
        if zero.get(key) == "auto":
            zero[key] = value
    left = _auto_paths(ds)
    if left:
        raise HarnessError(f'DeepSpeed config: the harness cannot fill "auto" for {", ".join(left)}; give values.')
    return ds


def _auto_paths(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _auto_paths(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if node == "auto" else []
