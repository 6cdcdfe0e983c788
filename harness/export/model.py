"""`harness export RUN --model DIR`: a recorded run's encoder as plain files, and the loader that
encodes with them without the training code or the leaderboard.

DIR is a transformers model folder (``AutoModelForCausalLM.from_pretrained(DIR)``): the model that
encodes with its LoRA adapters merged (``merge_and_unload``) and its tokenizer, whose chat template
is the encoder's prompt templates: the one of symmetric tasks, and where they differ from it, the
query and document templates, chosen by the template's ``task`` variable. Beside it:
- a sentence-transformers folder over the same weights (``modules.json``):
  ``SentenceTransformer(DIR).encode(texts)`` gives the harness's vectors, and ``encode_query`` /
  ``encode_document`` read each side's template. Pooled encoders of whole rows under causal
  attention are sentence-transformers' own modules (``Transformer`` through the chat template,
  ``Pooling``), whose ``prompts`` are empty since the chat template wraps each side; any other
  encoder (bidirectional attention, a pooled span, the text repeated, a method's own parts) is one
  :class:`harness.export.sentence_transformers.HarnessModule`, which needs the harness installed;
- ``adapter/`` (LoRA runs): the peft adapter (``PeftModel.from_pretrained(base, DIR/adapter)``);
- whatever the method's encoder needs beside the weights (its ``Method.export_encoder`` hook
  writes it: AutoRegEmbed's ``slots.safetensors``, the k learned compression slots);
- ``harness-encoder.json``: how texts become vectors: the method, the templates (``template`` for
  symmetric tasks, ``query_template`` and ``document_template`` for retrieval), the attention mode,
  the encoder's own settings (the pooling, ``mean`` / ``last``, or the slots), max_length, and
  where the run came from.

Everything is written into a scratch folder beside DIR and renamed to DIR at the end, so a failed
export leaves nothing behind. :func:`~harness.export.loading.load_encoder` (importable from here
too) rebuilds the harness encoder from these files alone, through the method the spec names
(``Method.load_exported``), attending as recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.encoder import TEXT_SLOT, EncodeSettings, plain_template, special_tokens_around
from harness.errors import HarnessError
from harness.export.loading import ENCODER_FILE, load_encoder
from harness.model.attention import attention_mode
from harness.runs.restore import restore_model

__all__ = ["ENCODER_FILE", "chat_template", "export_model", "load_encoder"]

ST_POOLING = {"mean": "mean", "last": "lasttoken"}
HARNESS_MODULE_CONFIG = "harness_module.json"  # harness.export.sentence_transformers.HarnessModule's


def export_model(record: dict[str, Any], folder: Path, console: Any) -> list[str]:
    """Write run ``record``'s encoder under ``folder`` (new or empty); the parts written."""

    if folder.exists() and any(folder.iterdir()):
        raise HarnessError(f"--model {folder}: the folder is not empty; give a new one.")
    method, backbone = restore_model(record, console)
    encoder = method.build_encoder(backbone, EncodeSettings(max_length=record["config"]["max_length"]))
    templates = {
        "template": encoder.tokenize.template,
        "query_template": encoder.tokenize_query.template,
        "document_template": encoder.tokenize_document.template,
    }
    sides = {"query": templates["query_template"], "document": templates["document_template"]}
    rendered = chat_template(backbone.tokenizer, templates["template"], sides)  # checked before anything is written
    made = [parent for parent in reversed(folder.parents) if not parent.exists()]
    try:
        for parent in made:
            parent.mkdir()
        written = _write(record, method, backbone, encoder, templates, rendered, folder)
    except BaseException:
        for parent in reversed(made):  # only the folders this export made, and only while empty
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    return written


def _write(
    record: dict[str, Any],
    method: Any,
    backbone: Any,
    encoder: Any,
    templates: dict[str, str],
    rendered: str,
    folder: Path,
) -> list[str]:
    """Every file of the export, written into a scratch folder beside ``folder`` and renamed to it."""

    tokenizer = backbone.tokenizer
    max_length = record["config"]["max_length"]
    with tempfile.TemporaryDirectory(prefix=f".{folder.name}.partial-", dir=folder.parent) as scratch_dir:
        scratch = Path(scratch_dir)
        written = []
        model = backbone.model
        mode = attention_mode(model)
        if hasattr(model, "merge_and_unload"):
            model.save_pretrained(scratch / "adapter")
            written.append("adapter/")
            model = model.merge_and_unload()
        try:
            encoding = method.export_encoder(encoder, model, scratch)
        except HarnessError:
            raise
        except Exception as exc:  # a plug-in's hook: one message; the scratch folder goes with it
            raise HarnessError(
                f"method {record['method']!r} could not export its encoder: {type(exc).__name__}: {exc}"
            ) from None
        written += sorted(set(os.listdir(scratch)) - {"adapter"})
        model.save_pretrained(scratch)
        tokenizer.chat_template = rendered
        tokenizer.padding_side = "right"  # positions 0..n-1 for every row, as the harness encodes
        tokenizer.model_max_length = max_length
        tokenizer.save_pretrained(scratch)
        written.append("model (merged) + tokenizer")
        spec = {
            **encoding,
            **templates,
            "attention": mode,
            "max_length": max_length,
            "method": record["method"],
            "backbone": record["backbone"],
            "run_id": record["run_id"],
            "run_uuid": record["uuid"],
            "config_hash": record["config_hash"],
            "finetune": getattr(method.config, "finetune", None),
        }
        (scratch / ENCODER_FILE).write_text(json.dumps(spec, indent=2) + "\n")
        written.append(ENCODER_FILE)
        _write_sentence_transformers(scratch, spec, encoder.embed_dim)
        written.append("sentence-transformers modules")
        _publish(scratch, folder)
    return written


def _publish(scratch: Path, folder: Path) -> None:
    """Rename the finished ``scratch`` folder to ``folder`` (absent, or an empty folder), with the
    permissions a new folder gets (the scratch folder is private to its writer)."""
    if folder.exists():
        folder.rmdir()  # empty: checked before, and nothing else writes there
    umask = os.umask(0)
    os.umask(umask)
    scratch.chmod(0o777 & ~umask)
    scratch.rename(folder)
    scratch.mkdir()  # for TemporaryDirectory's clean-up


def plain_sentence_transformers(spec: dict[str, Any]) -> bool:
    """Whether sentence-transformers' own modules reproduce the encoder: pooled whole rows of one
    text under causal attention."""
    templates = [spec["template"], spec["query_template"], spec["document_template"]]
    return (
        spec["kind"] == "pooled"
        and spec.get("attention", "causal") == "causal"
        and all(template == plain_template(template) and template.count(TEXT_SLOT) == 1 for template in templates)
    )


def chat_template(tokenizer: Any, template: str, sides: dict[str, str] | None = None) -> str:
    """A Jinja chat template that renders one message as the harness renders a text: the
    tokenizer's own special tokens (``add_special_tokens=True``) around the filled template, since
    chat templates are tokenised without them. ``sides`` (``task`` value -> template) branch on the
    ``task`` variable sentence-transformers sets in ``encode_query`` / ``encode_document``; without
    it, ``template``."""

    before_ids, after_ids = special_tokens_around(tokenizer)
    before = "".join(tokenizer.convert_ids_to_tokens(before_ids))
    after = "".join(tokenizer.convert_ids_to_tokens(after_ids))

    def render(side_template: str) -> str:
        parts = plain_template(side_template).split(TEXT_SLOT)
        parts[0], parts[-1] = before + parts[0], parts[-1] + after
        # json.dumps gives a string literal Jinja reads back exactly (\n, \", \uXXXX escapes)
        return "{{ messages[0]['content'] }}".join(f"{{{{ {json.dumps(part)} }}}}" for part in parts)

    branches = [(task, side) for task, side in (sides or {}).items() if side != template]
    if not branches:
        return render(template)
    tests = "".join(
        f"{{% {'el' * (i > 0)}if task == {json.dumps(task)} %}}{render(side)}"
        for i, (task, side) in enumerate(branches)
    )
    return f"{tests}{{% else %}}{render(template)}{{% endif %}}"


def _write_sentence_transformers(folder: Path, spec: dict[str, Any], embed_dim: int) -> None:
    """The sentence-transformers modules over the weights already in ``folder``: written by
    sentence-transformers itself into a scratch folder, then only its module files kept."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    if not plain_sentence_transformers(spec):
        from harness.export.sentence_transformers import HarnessModule

        modules = [HarnessModule(str(folder), embed_dim)]
    else:
        body = Transformer(str(folder))
        modules = [body, Pooling(body.get_embedding_dimension(), pooling_mode=ST_POOLING[spec["pooling"]])]
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        SentenceTransformer(modules=modules, device="cpu").save(scratch, create_model_card=False)
        for name in (
            "modules.json",
            "config_sentence_transformers.json",
            "sentence_bert_config.json",
            HARNESS_MODULE_CONFIG,
        ):
            if (Path(scratch) / name).exists():
                shutil.copy2(Path(scratch) / name, folder / name)
        modules = json.loads((folder / "modules.json").read_text())
        for module in modules[1:]:
            shutil.copytree(Path(scratch) / module["path"], folder / module["path"])
