"""`harness export RUN --model DIR`: a recorded run's encoder as plain files, and the loader that
encodes with them without the training code or the leaderboard.

DIR is a transformers model folder (``AutoModelForCausalLM.from_pretrained(DIR)``): the model that
encodes with its LoRA adapters merged (``merge_and_unload``) and its tokenizer, whose chat template
is the encoder's prompt templates: the one of symmetric tasks, and where they differ from it, the
query and document templates, chosen by the template's ``task`` variable. Beside it:
- pooling methods: a sentence-transformers folder over the same weights (``modules.json``,
  ``1_Pooling/``...): ``SentenceTransformer(DIR).encode(texts)`` applies the template (through the
  chat template) and the pooling, and ``encode_query`` / ``encode_document`` render with
  ``task`` = ``query`` / ``document``, so each side reads its own template. Its ``prompts`` (query,
  document) are empty: a sentence-transformers prompt is a prefix, and the chat template already
  wraps each side;
- ``adapter/`` (LoRA runs): the peft adapter (``PeftModel.from_pretrained(base, DIR/adapter)``);
- whatever the method's encoder needs beside the weights (its ``Method.export_encoder`` hook
  writes it: AutoRegEmbed's ``slots.safetensors``, the k learned compression slots);
- ``harness-encoder.json``: how texts become vectors: the method, the templates (``template`` for
  symmetric tasks, ``query_template`` and ``document_template`` for retrieval), the encoder's own
  settings (the pooling, ``mean`` / ``last``, or the slots), max_length, and where the run came from.

:func:`load_encoder` rebuilds the harness encoder from these files alone, through the method the
spec names (``Method.load_exported``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.encoder import TEXT_SLOT
from harness.errors import HarnessError

ENCODER_FILE = "harness-encoder.json"
ST_POOLING = {"mean": "mean", "last": "lasttoken"}


def export_model(record: dict[str, Any], folder: Path, console: Any) -> list[str]:
    """Write run ``record``'s encoder under ``folder`` (new or empty); the parts written."""
    from harness.encoder import EncodeSettings
    from harness.runs.restore import restore_model

    if folder.exists() and any(folder.iterdir()):
        raise HarnessError(f"--model {folder}: the folder is not empty; give a new one.")
    method, backbone = restore_model(record, console)
    config = method.config
    max_length = record["config"]["max_length"]
    encoder = method.build_encoder(backbone, EncodeSettings(max_length=max_length))
    template = encoder.tokenize.template
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    model = backbone.model
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(folder / "adapter")
        written.append("adapter/")
        model = model.merge_and_unload()
    before = set(os.listdir(folder))
    encoding = method.export_encoder(encoder, model, folder)
    written += sorted(set(os.listdir(folder)) - before)
    model.save_pretrained(folder)
    tokenizer = backbone.tokenizer
    sides = {"query": encoder.tokenize_query.template, "document": encoder.tokenize_document.template}
    tokenizer.chat_template = chat_template(tokenizer, template, sides)
    tokenizer.padding_side = "right"  # positions 0..n-1 for every row, as the harness encodes
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(folder)
    written.append("model (merged) + tokenizer")
    if encoding["kind"] == "pooled":
        _write_sentence_transformers(folder, encoding["pooling"])
        written.append("sentence-transformers modules")
    spec = {
        **encoding, "template": template, "document_template": encoder.tokenize_document.template,
        "query_template": encoder.tokenize_query.template, "max_length": max_length,
        "method": record["method"], "backbone": record["backbone"], "run_id": record["run_id"],
        "run_uuid": record["uuid"], "config_hash": record["config_hash"], "finetune": getattr(config, "finetune", None),
    }
    (folder / ENCODER_FILE).write_text(json.dumps(spec, indent=2) + "\n")
    written.append(ENCODER_FILE)
    return written


def chat_template(tokenizer: Any, template: str, sides: dict[str, str] | None = None) -> str:
    """A Jinja chat template that renders one message as the harness renders a text: the
    tokenizer's own special tokens (``add_special_tokens=True``) around the filled template, since
    chat templates are tokenised without them. ``sides`` (``task`` value -> template) branch on the
    ``task`` variable sentence-transformers sets in ``encode_query`` / ``encode_document``; without
    it, ``template``."""
    from harness.encoder import special_tokens_around

    before_ids, after_ids = special_tokens_around(tokenizer)
    before = "".join(tokenizer.convert_ids_to_tokens(before_ids))
    after = "".join(tokenizer.convert_ids_to_tokens(after_ids))
    def render(side_template: str) -> str:
        head, tail = side_template.split(TEXT_SLOT)
        # json.dumps gives a string literal Jinja reads back exactly (\n, \", \uXXXX escapes)
        return f"{{{{ {json.dumps(before + head)} }}}}{{{{ messages[0]['content'] }}}}{{{{ {json.dumps(tail + after)} }}}}"

    branches = [(task, side) for task, side in (sides or {}).items() if side != template]
    if not branches:
        return render(template)
    tests = "".join(f"{{% {'el' * (i > 0)}if task == {json.dumps(task)} %}}{render(side)}" for i, (task, side) in enumerate(branches))
    return f"{tests}{{% else %}}{render(template)}{{% endif %}}"


def _write_sentence_transformers(folder: Path, pooling: str) -> None:
    """The sentence-transformers modules over the weights already in ``folder``: written by
    sentence-transformers itself into a scratch folder, then only its module files kept."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    body = Transformer(str(folder))
    pool = Pooling(body.get_embedding_dimension(), pooling_mode=ST_POOLING[pooling])
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        SentenceTransformer(modules=[body, pool], device="cpu").save(scratch, create_model_card=False)
        for name in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"):
            shutil.copy2(Path(scratch) / name, folder / name)
        modules = json.loads((folder / "modules.json").read_text())
        for module in modules[1:]:
            shutil.copytree(Path(scratch) / module["path"], folder / module["path"])


def load_encoder(folder: str | Path, *, device: str = "cpu", batch_size: int = 32) -> Any:
    """The exported encoder: ``load_encoder(DIR).encode(texts)`` gives the harness's vectors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.encoder import EncodeSettings
    from harness.registry import get_method

    folder = Path(folder)
    spec = json.loads((folder / ENCODER_FILE).read_text())
    method_cls = get_method(spec["method"])
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa").to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    settings = EncodeSettings(batch_size=batch_size, max_length=spec["max_length"])
    return method_cls.load_exported(model, tokenizer, spec, folder, settings)
