"""The encoder of a folder that `harness export --model` wrote, rebuilt from its files alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.encoder import EncodeSettings
from harness.model.attention_check import attend
from harness.registry import get_method

ENCODER_FILE = "harness-encoder.json"


def load_encoder(folder: str | Path, *, device: str = "cpu", batch_size: int = 32) -> Any:
    """The exported encoder: ``load_encoder(DIR).encode(texts)`` gives the harness's vectors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    spec = json.loads((folder / ENCODER_FILE).read_text())
    method_cls = get_method(spec["method"])
    model = (
        AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa").to(device).eval()
    )
    attend(model, spec.get("attention", "causal"), f"the exported model in {folder}")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    settings = EncodeSettings(batch_size=batch_size, max_length=spec["max_length"])
    return method_cls.load_exported(model, tokenizer, spec, folder, settings)
