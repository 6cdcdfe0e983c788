"""A run's load key: what decides its encoder's vectors, known before the model is loaded
(see :mod:`harness.evaluation.warm`, which answers from the cache under it)."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import encoder, ranks
from harness.encoder import ENCODING_VERSION
from harness.evaluation.fingerprint import code_digest
from harness.evaluation.warm import DeferredBackbone, recall_in
from harness.model import attention, backbones, packing
from harness.model.backbones import pick_device
from harness.model.file_digests import FileDigests
from harness.runs import restore
from harness.training import checkpoints, parameters

if TYPE_CHECKING:
    from harness.evaluation.embedding_cache import CacheSettings
    from harness.model.backbones import Backbone
    from harness.runs.plan import RunPlan

KEY_FORMAT = 1


def load_key(plan: RunPlan, cache: CacheSettings, checkpoint: Path | None = None) -> str | None:
    """The plan's load key (see the module docstring), or None where the backbone's files are not
    on disk yet (a hub model to download, a GGUF copy to make) or the cache is off."""
    import torch

    if not cache.enabled or (plan.trains and checkpoint is None):  # a trained run without its weights: no key
        return None
    folder = backbones.local_folder(plan.backbone)
    if folder is None or not folder.is_dir():
        return None
    config = plan.config
    device = backbones.pick_device(config.device)
    digests = FileDigests(cache.folder)
    try:
        facts = {
            "format": KEY_FORMAT,
            "encoding_version": ENCODING_VERSION,
            "torch": torch.__version__,
            "transformers": importlib.metadata.version("transformers"),  # not imported: a warm run never needs it
            "method": config.method,
            "options": dataclasses.asdict(plan.method.config),
            "attention": plan.method.attention,
            "code": code_digest(plan.method, *_loading_code(), attention, backbones, packing),
            "backbone": [plan.backbone.name, plan.backbone.source, plan.backbone.kind],
            "files": digests.folder(folder),
            "checkpoint": digests.folder(checkpoint) if checkpoint is not None else None,
            "device": device.type,
            "dtype": str(backbones.pick_dtype(config.dtype, device)),
            "max_length": config.max_length,
            "seed": config.seed,
        }
    finally:
        digests.close()
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def _loading_code() -> tuple[Any, ...]:
    """The core's modules between the files and the encoder: encoders, loading, adapters, checkpoints."""

    return encoder, restore, checkpoints, parameters


def evaluation_backbone(
    plan: RunPlan, settings: CacheSettings, load: Callable[[], Backbone], *, checkpoint: Path | None = None
) -> tuple[Backbone | DeferredBackbone, str | None]:
    """The backbone to evaluate with and its load key: deferred where the cache knows the key (one
    process; ``load`` is called if a text is missing), else ``load()`` now."""

    try:
        key = load_key(plan, settings, checkpoint) if not ranks.world().enabled else None
    except Exception:  # files or code that cannot be read: no shortcut, the model is loaded the usual way
        key = None
    known = recall_in(settings, key)
    if key is not None and known is not None:
        return DeferredBackbone(key, known, pick_device(plan.config.device), load), key
    return load(), key
