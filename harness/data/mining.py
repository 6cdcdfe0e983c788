"""Hard negatives mined by an encoder (``harness mine``), with the false-negative margins of
sentence-transformers' ``mine_hard_negatives`` (after NV-Retriever's positive-aware mining).

For each positive pair (query, positive), every other text of the pairs is a candidate, the
query's own positives excepted; candidates are ranked by cosine similarity to the query, and the
first one that is not too close to the query's positive score is its negative:

* ``absolute_margin``: a candidate scoring more than ``positive - absolute_margin`` is skipped;
* ``relative_margin``: a candidate scoring more than ``positive - |positive| * relative_margin``
  is skipped;

where ``positive`` is the highest score of the query's positives. A pair left with no candidate is
dropped (and counted). Ties go to the text that comes first.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.train_data import Triplet, distinct_pairs
from harness.errors import HarnessError


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


@dataclass
class Mined:
    triplets: list[Triplet]
    dropped: list[tuple[str, str]] = field(default_factory=list)  # pairs left with no candidate
    skipped: int = 0  # candidates the margins removed, summed over the queries


def mine_negatives(
    pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray], margins: Margins = Margins(),
) -> Mined:
    """Triplets from ``pairs`` (duplicates dropped), each negative the best-ranked candidate that
    the margins allow; ``embed`` maps texts to vectors (normalised here)."""
    pairs = distinct_pairs(pairs, "mined")
    texts = list(dict.fromkeys(t for pair in pairs for t in pair))
    index = {t: i for i, t in enumerate(texts)}
    vectors = np.asarray(embed(texts), dtype=np.float64)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    partners: dict[int, set[int]] = {}
    for a, b in pairs:
        partners.setdefault(index[a], {index[a]}).add(index[b])
        partners.setdefault(index[b], {index[b]}).add(index[a])
    mined = Mined([])
    for a, b in pairs:
        query = index[a]
        scores = vectors @ vectors[query]
        own = sorted(partners[query] - {query})
        limit = margins.threshold(float(scores[own].max()))
        order = np.argsort(-scores, kind="stable")
        candidates = [j for j in order if j not in partners[query]]
        allowed = [j for j in candidates if scores[j] <= limit]
        mined.skipped += len(candidates) - len(allowed)
        if allowed:
            mined.triplets.append(Triplet(a, b, texts[allowed[0]]))
        else:
            mined.dropped.append((a, b))
    if not mined.triplets:
        raise HarnessError(f"no pair kept a negative under the margins ({margins}); lower them.")
    return mined


def write_mined(mined: Mined, output: Path, provenance: dict[str, Any]) -> str:
    """Write the triplets as JSON lines to ``output`` and ``provenance`` (how they were mined, with
    the file's sha256) beside it as ``OUTPUT.provenance.json``, each atomically; returns the sha256."""
    lines = "".join(json.dumps({"query": t.query, "pos": t.pos, "neg": t.neg}, ensure_ascii=False) + "\n" for t in mined.triplets)
    data = lines.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    record = {**provenance, "triplets": len(mined.triplets), "dropped_pairs": len(mined.dropped),
              "skipped_candidates": mined.skipped, "sha256": digest}
    _atomic_write(output, data)
    _atomic_write(provenance_path(output), (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return digest


def provenance_path(output: Path) -> Path:
    return output.with_name(output.name + ".provenance.json")


def _atomic_write(path: Path, data: bytes) -> None:
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        scratch.write_bytes(data)
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
