"""The fingerprint of an encoder: one digest of everything that decides the vector of a text.

It hashes the harness's :data:`~harness.encoder.ENCODING_VERSION`, the torch and transformers
versions, the source code that computes the vectors (:func:`code_digest`), the method's name and
options, the encoder's own facts (its class, the three templates, ``max_length``, pooling, dtype,
device type, the model's config, whether it is in training mode, any PEFT adapter config and each
adapter layer's state: active, disabled, merged, scaling), the tokenizer (its serialised form and
settings), and the bytes of every parameter and buffer the encoder reads (the backbone's weights
with whatever training changed: LoRA adapters, fine-tuned weights, slots).

An encoder is fingerprinted only when the class that says how a batch becomes vectors
(``embed_rows``, or ``embed_batch`` under the base class's ``embed_rows``) is the class that names
the tensors it reads (``cache_tensors``), and when no forward hook is set on its modules (or
globally) but the attention mode's own: otherwise its vectors are never cached.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
import sys
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.encoder import ENCODING_VERSION, TokenEncoder, named_tensors
from harness.model import attention, packing
from harness.model.attention import is_attention_hook
from harness.model.packing import token_head

if TYPE_CHECKING:
    import torch

    from harness.method import Method


def _owner(cls: type, name: str) -> type | None:
    return next((klass for klass in cls.__mro__ if name in vars(klass)), None)


def fingerprintable(encoder: Any) -> bool:
    """Whether ``encoder``'s vectors are decided by what :func:`fingerprint` can see."""
    if not isinstance(encoder, TokenEncoder):
        return False
    cls = type(encoder)
    names = _owner(cls, "cache_tensors")
    rows = _owner(cls, "embed_rows")
    computes = _owner(cls, "embed_batch") if rows is TokenEncoder else rows
    if names is TokenEncoder or computes is not names or _owner(cls, "encode") not in (TokenEncoder, names):
        return False
    return not _hooked(encoder)


def _hooked(encoder: Any) -> bool:
    """Whether a forward hook could change what the encoder's modules compute (the attention
    mode's own hook aside: the mode is one of the encoder's facts)."""
    import torch

    module_hooks = torch.nn.modules.module
    if module_hooks._global_forward_hooks or module_hooks._global_forward_pre_hooks:
        return True
    models = [value for value in vars(encoder).values() if isinstance(value, torch.nn.Module)]
    return any(
        m._forward_hooks or any(not is_attention_hook(hook) for hook in m._forward_pre_hooks.values())
        for model in models
        for m in model.modules()
    )


def _imports(path: Path) -> Iterator[str]:
    """Modules a source file imports, at its top or inside functions (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _source(name: str) -> Path | None:
    top = sys.modules.get(name.split(".")[0])
    if top is None or not getattr(top, "__file__", None):
        return None
    parts = name.split(".")[1:]
    if not parts:
        return Path(top.__file__)  # a package's __init__ or a single-file module
    base = Path(top.__file__).parent
    return next(
        (c for c in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")) if c.is_file()),
        None,
    )


@functools.cache
def _code_files(seeds: tuple[str, ...]) -> tuple[Path, ...]:
    files: dict[str, Path] = {}
    todo = list(seeds)
    while todo:
        name = todo.pop()
        path = _source(name)
        if name in files or path is None or path in files.values():
            continue
        files[name] = path
        package = name.rpartition(".")[0]
        if (
            package
        ):  # its own package's modules (a top-level module, a one-file plug-in, has none: never all of its imports)
            todo += [other for other in _imports(path) if other.rpartition(".")[0] == package]
    return tuple(sorted(files.values()))


def code_digest(*objects: Any) -> str:
    """A digest of the source that computes the vectors: each module among ``objects`` and the
    module of every class in the MRO of each other object (encoder, its prompt tokenizers, method),
    with the modules of the same package those modules import (at their top or inside functions).
    Any edit there, a plug-in's included, is another key."""
    seeds = {obj.__name__ for obj in objects if isinstance(obj, types.ModuleType)}
    seeds |= {
        klass.__module__
        for obj in objects
        if not isinstance(obj, types.ModuleType)
        for klass in type(obj).__mro__
        if klass.__module__ not in ("builtins", "abc")
    }
    digest = hashlib.blake2b(digest_size=16)
    for path in _code_files(tuple(sorted(seeds))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def tokenizer_digest(tokenizer: Any) -> str:
    """A digest of the whole tokenizer: its serialised form (fast tokenizers; else its vocabulary
    and any sentencepiece model), its class, special tokens and settings (``init_kwargs``,
    ``clean_up_tokenization_spaces``: truncation decodes and encodes again)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    settings = {
        key: value
        for key, value in getattr(tokenizer, "init_kwargs", {}).items()
        if not key.endswith("file") and key != "name_or_path"
    }
    head = json.dumps(
        [
            type(tokenizer).__name__,
            tokenizer.special_tokens_map,
            tokenizer.pad_token_id,
            settings,
            getattr(tokenizer, "clean_up_tokenization_spaces", None),
            getattr(tokenizer, "split_special_tokens", None),
        ],
        default=str,
        sort_keys=True,
    )
    digest = hashlib.blake2b((head + body).encode(), digest_size=16)
    sentencepiece = getattr(tokenizer, "sp_model", None)
    if sentencepiece is not None and hasattr(sentencepiece, "serialized_model_proto"):
        digest.update(sentencepiece.serialized_model_proto())
    return digest.hexdigest()


def tensors_digest(tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """A digest of named tensors: each name, dtype, shape and bytes, in the order given."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in tensors:
        flat = tensor.detach().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).cpu().numpy())  # the buffer itself, not a copy
    return digest.hexdigest()


def _shared_code() -> tuple[types.ModuleType, ...]:
    """The core's modules every token encoder computes through: the pass, pooling and masks."""

    return attention, packing


def _token_head(encoder: Any) -> dict[str, str]:
    """The token head every :func:`harness.model.packing.embed_rows` pass goes through, whatever
    the encoder names: its layout (heads and widths are not all in its tensors) and tensors."""

    model = getattr(encoder, "model", None)
    head = token_head(model) if model is not None else None
    return (
        {} if head is None else {"token_head": repr(head), "token_head_tensors": tensors_digest(named_tensors(head))}
    )


def fingerprint(encoder: Any, method: Method, method_name: str) -> str | None:
    """The encoder's fingerprint (hex), or None where it cannot be told (see the module docstring)."""
    if not fingerprintable(encoder):
        return None
    import torch
    import transformers

    facts = {
        "encoding_version": ENCODING_VERSION,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "method": method_name,
        "options": dataclasses.asdict(method.config),
        "code": code_digest(
            encoder, encoder.tokenize, encoder.tokenize_query, encoder.tokenize_document, method, *_shared_code()
        ),
        "encoder": encoder.encoding_facts(),
        "tokenizer": tokenizer_digest(encoder.tokenizer),
        "tensors": tensors_digest(encoder.cache_tensors()),
        **_token_head(encoder),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
