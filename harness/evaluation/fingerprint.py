"""The fingerprint of an encoder: one digest of everything that decides the vector of a text.

It hashes the harness's :data:`~harness.encoder.ENCODING_VERSION`, the torch and transformers
versions, the method's name and options, the encoder's own facts (its class, the three templates,
``max_length``, pooling, dtype, device type, the model's config and any PEFT adapter config), the
tokenizer (its whole serialised form), and the bytes of every tensor the encoder reads (the
backbone's weights with whatever training changed: LoRA adapters, fine-tuned weights, slots).

An encoder is fingerprinted only when the class that says how a batch becomes vectors
(``embed_batch``) is the class that names the tensors it reads (``cache_tensors``): a subclass that
changes the computation without naming its tensors gets no fingerprint, so it is never cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from harness.encoder import ENCODING_VERSION, TokenEncoder

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
    return names is not TokenEncoder and _owner(cls, "embed_batch") is names and _owner(cls, "encode") in (TokenEncoder, names)


def tokenizer_digest(tokenizer: Any) -> str:
    """A digest of the whole tokenizer: its serialised form (fast tokenizers) or its vocabulary,
    with its class and special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    head = json.dumps([type(tokenizer).__name__, tokenizer.special_tokens_map, tokenizer.pad_token_id], default=str)
    return hashlib.blake2b((head + body).encode(), digest_size=16).hexdigest()


def tensors_digest(tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """A digest of named tensors: each name, dtype, shape and bytes, in the order given."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in tensors:
        flat = tensor.detach().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).cpu().numpy().tobytes())
    return digest.hexdigest()


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
        "encoder": encoder.encoding_facts(),
        "tokenizer": tokenizer_digest(encoder.tokenizer),
        "tensors": tensors_digest(encoder.cache_tensors()),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
