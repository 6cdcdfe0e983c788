"""Checkpoints: written whole or not at all, found, checked and read back (for a resume or to evaluate)."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import HarnessError
from harness.training import distributed
from harness.training.parameters import trainable_parameters

if TYPE_CHECKING:
    import torch


# -- checkpoints ----------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
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
        torch.save(rng_state(), staging / "rng.pt")
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
        if (
            not isinstance(state, dict)
            or not isinstance(state.get("stage_index"), int)
            or not isinstance(state.get("step"), int)
        ):
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
            raise HarnessError(
                f"checkpoint {path} is unreadable ({type(exc).__name__}); the run cannot resume from it."
            ) from None


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
