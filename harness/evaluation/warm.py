"""Warm evaluation: a model whose vectors are all in the embedding cache is never loaded.

The cache keys vectors by the encoder's fingerprint, which hashes the loaded model's tensors
(:mod:`harness.evaluation.fingerprint`): it needs the model in memory. The **load key**
(:mod:`harness.runs.load_key`) says the
same before anything is loaded: the digests of every file the backbone is read from (kept per
file by :mod:`harness.model.file_digests`, so a warm run reads no weight), a trained run's
checkpoint files, and what turns them into an encoder (the method and its options, the seed, the
code, the torch and transformers versions, device type, dtype and ``max_length``). A run that
loads the model records under its load key the fingerprint it computed (with the embedding's
width and the model's parameter count); a later run with the same load key opens the cache
under that fingerprint and scores its tasks from it, and loads the model only when a text is
missing (:class:`DeferredEncoder`), checking then that the model it loaded has that fingerprint
(a mismatch drops the record and fails the run: its scores would otherwise rest on vectors of
another model).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.evaluation.embedding_cache import CacheUnavailable, EmbeddingCache
from harness.telemetry.phases import measure

if TYPE_CHECKING:
    import torch

    from harness.encoder import Encoder, EncodeSettings
    from harness.evaluation.embedding_cache import CacheSettings
    from harness.method import Method
    from harness.model.backbones import Backbone
    from harness.telemetry.phases import Phase


@dataclass(frozen=True)
class Known:
    """What a run that loaded the model learnt under its load key."""

    fingerprint: str
    embed_dim: int
    n_parameters: int


def _alias(key: str) -> bytes:
    return hashlib.sha256(f"load-key\x00{key}".encode()).digest()


def _check(key: bytes, body: bytes) -> bytes:
    return hashlib.blake2b(key + body, digest_size=16).digest()


def recall(store: Any, key: str) -> Known | None:
    """What the cache ``store`` (a diskcache) holds under the load key ``key``; None where it holds
    nothing whole."""
    name = _alias(key)
    value = store.get(name)
    if not isinstance(value, bytes) or len(value) <= 16 or _check(name, value[:-16]) != value[-16:]:
        return None
    try:
        return Known(**json.loads(value[:-16]))
    except (ValueError, TypeError):
        return None


def remember(store: Any, key: str, known: Known) -> None:
    name = _alias(key)
    body = json.dumps(dataclasses.asdict(known), sort_keys=True).encode()
    store.set(name, body + _check(name, body))


def forget(store: Any, key: str) -> None:
    store.delete(_alias(key))


def recall_in(settings: CacheSettings, key: str | None) -> Known | None:
    """What the embedding cache of ``settings`` holds under ``key``; None where it holds nothing,
    is off or cannot be read."""

    if key is None or not settings.enabled:
        return None
    try:
        cache = EmbeddingCache.open(settings, "", 0)
    except CacheUnavailable:
        return None
    try:
        return recall(cache.store, key)
    except Exception:  # a damaged or locked cache: the model is loaded the usual way
        return None
    finally:
        cache.close()


@dataclass
class DeferredBackbone:
    """A backbone not loaded: what an earlier run learnt under its load key, and how to load it
    (``load``: the backbone ready to encode, as the run's method prepares it)."""

    key: str
    known: Known
    device: torch.device
    load: Callable[[], Backbone]

    @property
    def n_parameters(self) -> int:
        return self.known.n_parameters


class DeferredEncoder:
    """An encoder that loads its model on the first text it must compute, then checks the loaded
    encoder's fingerprint against the one the cache was opened under."""

    distributed = False

    def __init__(self, backbone: DeferredBackbone, method: Method, method_name: str, settings: EncodeSettings) -> None:
        self.backbone, self.method, self.method_name, self.settings = backbone, method, method_name, settings
        self.embed_dim = backbone.known.embed_dim
        self.progress: Callable[[int], None] | None = None
        self.real: Encoder | None = None
        self.load_phase: Phase | None = None  # the load, once it happened, until the caller records it

    @property
    def texts_encoded(self) -> int:
        return self.real.texts_encoded if self.real is not None else 0

    @property
    def tokens_encoded(self) -> int:
        return self.real.tokens_encoded if self.real is not None else 0

    def encode(self, texts: list[str], prompt_type: str | None = None) -> Any:
        if self.real is None:
            self.real = self._load()
        self.real.progress = self.progress
        return self.real.encode(texts, prompt_type=prompt_type)

    def _load(self) -> Encoder:
        from harness.evaluation.fingerprint import fingerprint

        with measure("load") as self.load_phase:
            backbone = self.backbone.load()
        self.load_phase.items = 1
        encoder = self.method.build_encoder(backbone, self.settings)
        found = fingerprint(encoder, self.method, self.method_name)
        if found != self.backbone.known.fingerprint:
            raise StaleLoadKey(self.backbone.key, found)
        return encoder


class StaleLoadKey(HarnessError):
    """The model loaded under a load key does not have the fingerprint recorded under it."""

    def __init__(self, key: str, found: str | None) -> None:
        self.key = key
        super().__init__(
            f"the embedding cache's record for this model (load key {key[:16]}) names another fingerprint than the "
            f"loaded model's ({(found or 'none')[:16]}); the record is dropped, and scores computed from it are not "
            "trusted. Run the command again: it loads the model and computes every vector."
        )
