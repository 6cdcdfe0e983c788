"""`harness export RUN --model DIR`: a recorded run's encoder as plain files, and the loader that
encodes with them without the training code or the leaderboard.

DIR holds:
- ``model/``: the model that encodes, with LoRA adapters merged (``merge_and_unload``), and its
  tokenizer: a plain transformers folder (``AutoModelForCausalLM.from_pretrained``);
- ``adapter/`` (LoRA runs): the peft adapter (``PeftModel.from_pretrained(base, DIR/adapter)``);
- ``slots.safetensors`` (AutoRegEmbed): the k learned compression slots, tensor ``slots``;
- ``harness-encoder.json``: how texts become vectors: the template, the pooling (``mean`` /
  ``last``) or ``slots``, max_length, and where the run came from.

:func:`load_encoder` rebuilds the harness encoder from these files alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

ENCODER_FILE = "harness-encoder.json"
SLOTS_FILE = "slots.safetensors"


def export_model(record: dict[str, Any], folder: Path, console: Any) -> list[str]:
    """Write run ``record``'s encoder under ``folder`` (new or empty); the parts written."""
    from safetensors.torch import save_file

    from harness.encoder import EncodeSettings, PooledEncoder
    from harness.runner import restore_model
    from methods.autoregembed import SLOTS_PARAMETER, SlotEncoder

    if folder.exists() and any(folder.iterdir()):
        raise HarnessError(f"--model {folder}: the folder is not empty; give a new one.")
    method, backbone = restore_model(record, console)
    config = method.config
    encoder = method.build_encoder(backbone, EncodeSettings(max_length=record["config"]["max_length"]))
    if isinstance(encoder, SlotEncoder):
        encoding = {"kind": "slots", "slots": int(encoder.slots.shape[0])}
    elif isinstance(encoder, PooledEncoder):
        encoding = {"kind": "pooled", "pooling": encoder.pooling}
    else:
        raise HarnessError(f"method {record['method']!r} encodes with {type(encoder).__name__}, which has no export format.")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    model = backbone.model
    if encoding["kind"] == "slots":
        save_file({"slots": encoder.slots.detach().float().contiguous().cpu()}, str(folder / SLOTS_FILE))
        written.append(SLOTS_FILE)
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(folder / "adapter")
        written.append("adapter/")
        model = model.merge_and_unload()
    if hasattr(model, SLOTS_PARAMETER):
        delattr(model, SLOTS_PARAMETER)  # kept in slots.safetensors; not a weight of the LM
    model.save_pretrained(folder / "model")
    backbone.tokenizer.save_pretrained(folder / "model")
    written.append("model/")
    spec = {
        **encoding, "template": encoder.tokenize.template, "max_length": encoder.max_length,
        "method": record["method"], "backbone": record["backbone"], "run_id": record["run_id"],
        "run_uuid": record["uuid"], "config_hash": record["config_hash"], "finetune": getattr(config, "finetune", None),
    }
    (folder / ENCODER_FILE).write_text(json.dumps(spec, indent=2) + "\n")
    written.append(ENCODER_FILE)
    return written


def load_encoder(folder: str | Path, *, device: str = "cpu", batch_size: int = 32) -> Any:
    """The exported encoder: ``load_encoder(DIR).encode(texts)`` gives the harness's vectors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backbones import Backbone, BackboneSpec
    from harness.encoder import EncodeSettings, PooledEncoder

    folder = Path(folder)
    spec = json.loads((folder / ENCODER_FILE).read_text())
    model = AutoModelForCausalLM.from_pretrained(folder / "model", dtype=torch.float32, attn_implementation="sdpa").to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder / "model")
    settings = EncodeSettings(batch_size=batch_size, max_length=spec["max_length"])
    if spec["kind"] == "pooled":
        return PooledEncoder(model, tokenizer, pooling=spec["pooling"], settings=settings, template=spec["template"])
    from safetensors.torch import load_file

    from methods.autoregembed import SlotEncoder

    slots = load_file(str(folder / SLOTS_FILE))["slots"].to(device)
    backbone = Backbone(BackboneSpec(str(folder), str(folder), "local"), model, tokenizer)
    return SlotEncoder(backbone, slots, settings, spec["template"])
