"""Run configuration: defaults < ``--config FILE`` (TOML) < command-line options < ``--set``.

Values from files and ``--set`` are parsed as TOML literals and type-checked against the
dataclasses; nothing a user writes is ever evaluated as code.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError
from harness.options import check_values, distinct_dims, not_empty, option
from harness.paths import readable_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_METHOD = "autoregembed"
DEFAULT_BACKBONE = "smollm2-135m"
DEFAULT_TASKS = ("offline",)


SEED_MAX = 2**32 - 1  # numpy's seeds stop here
DEVICE = re.compile(r"auto|cpu|(cuda|mps|xpu|npu|hpu)(:\d{1,4})?")


def _device_name(value: Any) -> str | None:
    if isinstance(value, str) and DEVICE.fullmatch(value):
        return None
    return "must be auto, cpu, or an accelerator such as cuda, cuda:N, mps or xpu"


@dataclass
class RunConfig:
    """Everything ``harness run`` needs. Field helps double as the config-file reference."""

    method: str = option(DEFAULT_METHOD, "registered method name (harness methods)")
    backbone: str = option(DEFAULT_BACKBONE, "alias, hub id or local path (harness backbones)")
    tasks: list[str] = option(
        list(DEFAULT_TASKS), "presets, mteb task names or task files", check=not_empty, rule="not empty"
    )
    seed: int = option(0, "seeds python, numpy and torch", minimum=0, maximum=SEED_MAX)
    device: str = option("auto", "auto | cpu | cuda | cuda:N | mps", check=_device_name, rule="a device name")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = option("auto", "auto = bf16 on GPUs that have it")
    eval_batch_size: int = option(
        32,
        "texts per forward pass when encoding for evaluation (training's: method_args.batch_size)",
        minimum=1,
        maximum=65536,
    )
    max_length: int = option(
        512,
        "tokens per text when encoding, template included; the text is cut, never the template (training: method_args.max_length)",
        minimum=8,
        maximum=1048576,
    )
    limit: int | None = option(
        None, "evaluate on the first N items of each task split: a quick check, never ranked with full runs", minimum=1
    )
    instructions: bool = option(
        False,
        "e5 style: each task's mteb instruction before its queries and symmetric texts ('Instruct: ...\\nQuery: TEXT', then the template); documents stay bare",
    )
    dims: list[int] = option(
        [],
        "also score each task on the vectors' first N dims, for each N (Matryoshka evaluation; one encoding serves all; recorded, not hashed)",
        minimum=1,
        check=distinct_dims,
        rule="distinct",
    )
    rerank_protocol: Literal["answered", "clean", "all"] = option(
        "answered",
        "reranking files: score the questions with a relevant candidate (answered: the answer-selection literature's), "
        "also with an irrelevant one (clean), or every question (all: mteb's, an unanswered one scores 0); hub tasks keep mteb's",
    )
    repeats: int | None = option(
        None, "the run this one repeats (harness run --like N); recorded, not hashed", minimum=1
    )
    dev_tasks: list[str] = option(
        [],
        "tasks evaluated during training, every method_args.eval_every steps (items as in tasks); recorded as dev scores, never as test scores",
    )
    train_data: str = option("offline", "triplet/NLI file, a hub set (all-nli, simcse-nli) or offline")
    method_args: dict[str, Any] = option({}, "the method's own options (harness methods)")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint``; convert the few safe cases (int->float, x->[x])."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise HarnessError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}.")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option, where)
            except HarnessError as exc:
                errors.append(str(exc))
        raise HarnessError(errors[0])
    if origin is list:
        items = value if isinstance(value, list) else [value]
        return [coerce(item, args[0] if args else Any, where) for item in items]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise HarnessError(f"{where}: expected a table of options, got {value!r}.")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise HarnessError(
                f"{where}: the number {str(value)[:20]}... ({len(str(value))} digits) is too large."
            ) from None
    if hint is int and isinstance(value, bool):
        raise HarnessError(f"{where}: expected an integer, got {value!r}.")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise HarnessError(f"{where}: expected {_type_name(hint)}, got {value!r}.")
    return value


def build_dataclass(cls: type, values: Mapping[str, Any], where: str, prefix: str = "") -> Any:
    """Instantiate dataclass ``cls`` from ``values``, naming ``where`` on any bad key or type."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        hints = [
            f"{name!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(name, known, n=1))
            else repr(name)
            for name in unknown
        ]
        raise HarnessError(f"{where}: unknown option(s) {', '.join(hints)}. Known: {', '.join(sorted(known))}.")
    checked = {key: coerce(value, hints[key], f"{where} {prefix}{key}") for key, value in values.items()}
    return cls(**checked)


def parse_literal(text: str) -> Any:
    """A ``--set`` value as a TOML literal (``3``, ``0.1``, ``true``, ``["a"]``), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set(item: str) -> tuple[list[str], Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise HarnessError(f"--set {item!r}: expected KEY=VALUE, e.g. --set eval_batch_size=16.")
    path = key.strip().split(".")
    if any(not part for part in path):
        raise HarnessError(f"--set {item!r}: {key!r} is not a valid dotted key.")
    return path, parse_literal(value.strip())


def read_config_file(path: Path) -> dict[str, Any]:
    raw = readable_file(path, "--config").read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HarnessError(f"--config {path}: not UTF-8 text (byte {exc.start}).") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"--config {path}: invalid TOML: {exc}.") from None


def load_run_config(
    config_file: Path | None = None,
    options: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    base: RunConfig | None = None,
) -> RunConfig:
    """Merge the layers into one checked :class:`RunConfig`: ``base`` (a recorded run's, for
    ``--like``) or the defaults and the config file, then the command's options, then ``--set``."""
    values: dict[str, Any] = dataclasses.asdict(base) if base is not None else {}
    where = "config"
    if config_file is not None:
        values.update(read_config_file(config_file))
        where = f"--config {config_file}"
    config = build_dataclass(RunConfig, values, where)
    check_values(config, where)
    for key, value in (options or {}).items():
        if value is not None:
            setattr(config, key, coerce(value, typing.get_type_hints(RunConfig)[key], f"--{key}"))
    for item in sets:
        path, value = parse_set(item)
        if path[0] == "method_args":
            if len(path) != 2:
                raise HarnessError(f"--set {item!r}: method options are method_args.NAME=VALUE.")
            config.method_args[path[1]] = value
        elif len(path) == 1:
            config = build_dataclass(RunConfig, {**dataclasses.asdict(config), path[0]: value}, f"--set {item!r}")
        else:
            raise HarnessError(f"--set {item!r}: {'.'.join(path)} is not a config key.")
    check_values(config, "config")
    return config


#: the format of a recorded config: 2 records (and hashes) every option; the leaderboard's schema
#: revision 0010 rewrote version-1 configs, which left options out while they held their defaults
CONFIG_VERSION = 2

#: recorded but not hashed: the seed (one setting, many seeds), ``dims`` (extra scores at cut
#: dims beside the whole vector's, which they do not change) and the run a run repeats
UNHASHED = ("seed", "dims", "repeats")


def config_hash(resolved: Mapping[str, Any]) -> str:
    """sha256 of the resolved config without the seed and the extra dims: one setting, many seeds, one hash."""
    material = {k: v for k, v in resolved.items() if k not in UNHASHED}
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
