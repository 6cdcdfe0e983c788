"""Hard negatives mined by an encoder (``harness mine``), with the false-negative margins of
sentence-transformers' ``mine_hard_negatives`` (after NV-Retriever's positive-aware mining).

For each positive pair (query, positive), every other text of the pairs is a candidate, except
the texts paired with the query either way; candidates are ranked by cosine similarity to the
query, and the first one that is not too close to the query's positive score is its negative:

* ``absolute_margin``: a candidate scoring more than ``positive - absolute_margin`` is skipped;
* ``relative_margin``: a candidate scoring more than ``positive - |positive| * relative_margin``
  is skipped;

where ``positive`` is the highest score of the query's positives (the texts it is paired with as
query, as sentence-transformers takes the anchor's). A pair left with no candidate is dropped (and
counted). Ties go to the text that comes first.

The encoder that ranks them (``harness mine --miner``): an untrained method on a backbone, or a
recorded run's encoder, rebuilt as that run encoded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import paths, registry
from harness.data.train_data import Triplet, distinct_pairs, partners_of
from harness.errors import HarnessError
from harness.model.attention_check import attend
from harness.model.backbones import backbone_spec, load_backbone
from harness.runs.plan import method_options
from harness.runs.restore import restore_model

if TYPE_CHECKING:
    from rich.console import Console

    from harness.encoder import Encoder, EncodeSettings


@dataclass(frozen=True)
class Margins:
    absolute: float | None = None
    relative: float | None = None

    def threshold(self, positive: float) -> float:
        """The highest score a negative may have, for a query whose positive scores ``positive``."""
        limit = np.inf
        if self.absolute is not None:
            limit = min(limit, positive - self.absolute)
        if self.relative is not None:
            limit = min(limit, positive - abs(positive) * self.relative)
        return float(limit)


QUERY_BLOCK = 512  # queries scored against every text at once


@dataclass
class Mined:
    triplets: list[Triplet]
    dropped: list[tuple[str, str]] = field(default_factory=list)  # pairs left with no candidate
    skipped: int = 0  # candidates the margins removed, summed over the queries


def mine_negatives(
    pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray], margins: Margins = Margins()
) -> Mined:
    """Triplets from ``pairs`` (duplicates dropped), each negative the best-ranked candidate that
    the margins allow; ``embed`` maps texts to vectors (normalised here)."""
    pairs = distinct_pairs(pairs, "mined")
    texts = list(dict.fromkeys(t for pair in pairs for t in pair))
    index = {t: i for i, t in enumerate(texts)}
    vectors = np.asarray(embed(texts), dtype=np.float64)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    positives: dict[int, list[int]] = {}
    for a, b in pairs:
        positives.setdefault(index[a], []).append(index[b])
    partners = {index[t]: [index[p] for p in ps] for t, ps in partners_of(pairs).items()}
    queries = list(positives)
    negative: dict[int, int | None] = {}
    mined = Mined([])
    for start in range(0, len(queries), QUERY_BLOCK):
        block = queries[start : start + QUERY_BLOCK]
        for query, scores in zip(block, vectors[block] @ vectors.T):
            candidate = np.ones(len(texts), dtype=bool)
            candidate[partners[query]] = False
            limit = margins.threshold(float(scores[positives[query]].max()))
            allowed = candidate & (scores <= limit)
            mined.skipped += int((candidate & ~allowed).sum())
            # argmax returns the first of equal maxima: ties go to the text that comes first
            negative[query] = int(np.argmax(np.where(allowed, scores, -np.inf))) if allowed.any() else None
    for a, b in pairs:
        chosen = negative[index[a]]
        if chosen is None:
            mined.dropped.append((a, b))
        else:
            mined.triplets.append(Triplet(a, b, texts[chosen]))
    if not mined.triplets:
        raise HarnessError(f"no pair kept a negative under the margins ({margins}); lower them.")
    return mined


def write_mined(mined: Mined, output: Path, provenance: dict[str, Any]) -> str:
    """Write the triplets as JSON lines to ``output`` and ``provenance`` (how they were mined, with
    the file's sha256) beside it as ``OUTPUT.provenance.json``; each appears whole or not at all,
    neither replaces a file, and the triplets never stay without their provenance. Returns the
    sha256."""
    lines = "".join(
        json.dumps({"query": t.query, "pos": t.pos, "neg": t.neg}, ensure_ascii=False) + "\n" for t in mined.triplets
    )
    digest = hashlib.sha256(lines.encode("utf-8")).hexdigest()
    record = {
        **provenance,
        "triplets": len(mined.triplets),
        "dropped_pairs": len(mined.dropped),
        "skipped_candidates": mined.skipped,
        "sha256": digest,
    }
    _create(output, lines)
    try:
        _create(provenance_path(output), json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    return digest


def provenance_path(output: Path) -> Path:
    return output.with_name(output.name + ".provenance.json")


def _create(path: Path, text: str) -> None:
    try:
        paths.create_text(path, text)
    except FileExistsError:
        raise HarnessError(
            f"{path} appeared while the negatives were mined; mined negatives never replace a file."
        ) from None


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
