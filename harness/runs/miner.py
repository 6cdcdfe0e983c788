"""The encoder ``harness mine`` ranks candidates with: an untrained method on a backbone, or a
recorded run's encoder, rebuilt as that run encoded."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from harness import registry
from harness.errors import HarnessError
from harness.model.attention_check import attend
from harness.model.backbones import backbone_spec, load_backbone

if TYPE_CHECKING:
    from rich.console import Console

    from harness.encoder import Encoder, EncodeSettings


def run_id_of(miner: str) -> int | None:
    """The run id of ``--miner run:ID`` (None: the miner names a method)."""
    if not miner.startswith("run:"):
        return None
    value = miner.removeprefix("run:")
    if not value.isdigit():
        raise HarnessError(f"--miner {miner!r}: give a recorded run as run:ID, e.g. run:3.")
    return int(value)


def untrained_miner(
    method: str, backbone: str, device: str, settings: EncodeSettings, console: Console
) -> tuple[Encoder, dict[str, Any]]:
    """``method`` (one without training stages, with its default options) on ``backbone``."""
    from harness.runs.plan import method_options

    method_cls = registry.get_method(method)
    built = method_cls(method_options(method_cls, {}, method))
    if built.stages():
        raise HarnessError(
            f"--miner {method}: this method trains before it encodes; mine with an untrained method (untrained-mean, "
            "untrained-last, ...) on --backbone, or with a recorded run's encoder (--miner run:ID)."
        )
    spec = backbone_spec(backbone)
    with console.status("Loading backbone") as status:
        loaded = load_backbone(spec, device, "auto", status)
    attend(loaded.model, built.attention, f"--backbone {spec.name}")
    built.prepare(loaded)
    described = {
        "miner": method,
        "backbone": spec.name,
        "backbone_source": spec.source,
        "method_args": dataclasses.asdict(built.config),
    }
    return built.build_encoder(loaded, settings), described


def recorded_miner(
    record: dict[str, Any], settings: EncodeSettings, console: Console
) -> tuple[Encoder, dict[str, Any]]:
    """A finished run's encoder, with its trained weights."""
    from harness.runs.restore import restore_model

    if record["status"] != "finished":
        raise HarnessError(
            f"--miner run:{record['run_id']}: the run is {record['status']}; only a finished run's encoder can mine."
        )
    method, backbone = restore_model(record, console)
    described = {
        "miner": f"run:{record['run_id']}",
        "run_uuid": record["uuid"],
        "config_hash": record["config_hash"],
        "method": record["method"],
        "backbone": record["backbone"],
    }
    return method.build_encoder(backbone, settings), described
