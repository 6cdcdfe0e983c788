"""Per-item results and the paired bootstrap over them (numpy and scipy only: no model code).

A score's ``items`` (``scores.items``) hold, per evaluated split and subset, what its main metric
is computed from, item by item, so any comparison can be recomputed without the model:

- ``spearman`` / ``pearson``: ``gold`` and ``pred`` per pair (STS);
- ``max_ap``: ``labels`` and one ``s0``, ``s1``, ... per scoring function, higher meaning more
  alike (pair classification: the best average precision over them);
- ``mean``: one ``values`` per unit, the metric its mean (a query's nDCG@10 or AP, a test item's
  accuracy over mteb's classifier runs, a clustering experiment's V-measure).

A task's statistic is the mean over its subsets, as mteb's main score is. The bootstrap draws, for
each subset in order, ``default_rng(seed).integers(0, n, size=(resamples, n))`` from one generator
per task, and recomputes every run's statistic on the same draws: the differences are paired.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT = 1
SEED = 20250
RESAMPLES = 1000
LEVEL = 0.95
STATISTICS = ("spearman", "pearson", "max_ap", "mean")


def pack(values: Any) -> str:
    """An array as compact text: float64 bytes, zlib-compressed, base64."""
    raw = np.ascontiguousarray(np.asarray(values, dtype=np.float64)).tobytes()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


@functools.lru_cache(maxsize=512)
def unpack(text: str) -> np.ndarray:
    """The array ``pack`` wrote (read-only; decoded once, though checked and resampled apart)."""
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.float64)


def digest(*parts: Any) -> str:
    """A short identity of a subset's items (their ids, labels or gold scores), so two runs are
    paired only over the same items in the same order."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(repr(part).encode() if not isinstance(part, np.ndarray) else part.tobytes())
        hasher.update(b"\0")
    return hasher.hexdigest()[:16]


def subset(split: str, hf_subset: str, statistic: str, ids: str, **arrays: Any) -> dict[str, Any]:
    """One split and subset's items, ready to store."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic}")
    lengths = {len(np.asarray(a)) for a in arrays.values()}
    if len(lengths) != 1:
        raise ValueError(f"arrays of different lengths: {lengths}")
    return {
        "split": split,
        "subset": hf_subset,
        "statistic": statistic,
        "n": lengths.pop(),
        "ids": ids,
        "arrays": {name: pack(values) for name, values in arrays.items()},
    }


# -- statistics on resamples: rows of indices into a subset's items ------------------------------
def _ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)  # ties share their average rank, as scipy's spearmanr


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=-1) / np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of ranking by ``scores`` (higher first), ties as one threshold (as
    scikit-learn's ``average_precision_score``)."""
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # the last item of each tied run
    hits = np.cumsum(labels)[last]
    positives = hits[-1]
    if positives == 0:
        return float("nan")
    precision = hits / (last + 1)
    recall = hits / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _arrays(entry: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {name: unpack(text) for name, text in entry["arrays"].items()}


def on_rows(entry: Mapping[str, Any], rows: np.ndarray, arrays: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The subset's statistic on each row of item indices (shape ``(resamples, n)``)."""
    arrays = arrays if arrays is not None else _arrays(entry)
    kind = entry["statistic"]
    if kind == "mean":
        return arrays["values"][rows].mean(axis=-1)
    if kind in ("spearman", "pearson"):
        gold, pred = arrays["gold"][rows], arrays["pred"][rows]
        if kind == "spearman":
            gold, pred = _ranks(gold), _ranks(pred)
        return _pearson_rows(gold, pred)
    labels = arrays["labels"]
    functions = [arrays[name] for name in sorted(arrays) if name != "labels"]
    return np.array([max(average_precision(labels[row], s[row]) for s in functions) for row in rows])


def full_statistic(entry: Mapping[str, Any]) -> float:
    """The subset's statistic on all its items (it equals the recorded main score)."""
    return float(on_rows(entry, np.arange(entry["n"])[None, :])[0])


def _intact(entry: Any) -> bool:
    """A stored subset whose arrays decode to its ``n`` items, for a statistic this release knows."""
    try:
        arrays = _arrays(entry)
        return (
            entry["statistic"] in STATISTICS
            and isinstance(entry["n"], int)
            and entry["n"] > 0
            and all(len(a) == entry["n"] for a in arrays.values())
        )
    except Exception:  # anything unreadable in a stored record: not usable, never a traceback
        return False


def usable(items: Any) -> bool:
    return (
        isinstance(items, dict)
        and items.get("format") == FORMAT
        and isinstance(items.get("subsets"), list)
        and bool(items["subsets"])
        and all(_intact(e) for e in items["subsets"])
    )


def why_missing(items: Any) -> str:
    if items is None:
        return "recorded before per-item results were kept"
    if not isinstance(items, dict) or items.get("format") != FORMAT:
        return "per-item results in a form this release does not know"
    if items.get("unavailable"):
        return str(items["unavailable"])
    return "per-item results damaged"


def summary(items: Any) -> dict[str, Any]:
    """What a score's per-item results hold, without their arrays (``harness show``)."""
    if not usable(items):
        return {"unavailable": why_missing(items)}
    return {"kept": [{k: entry[k] for k in ("split", "subset", "statistic", "n")} for entry in items["subsets"]]}


def _key(entry: Mapping[str, Any]) -> tuple:
    return entry["split"], entry["subset"], entry["statistic"], entry["n"], entry["ids"]


def pairable(first: Mapping[str, Any] | None, other: Mapping[str, Any] | None) -> str | None:
    """None when two scores' items can be paired, else why not."""
    for items in (first, other):
        if not usable(items):
            return why_missing(items)
    if [_key(e) for e in first["subsets"]] != [_key(e) for e in other["subsets"]]:
        return "the two runs' items differ (other items or splits)"
    return None


def resampled(items: Mapping[str, Any], resamples: int, seed: int = SEED) -> np.ndarray:
    """The task's statistic (mean over its subsets) on ``resamples`` bootstrap draws."""
    rng = np.random.default_rng(seed)
    per_subset = []
    for entry in items["subsets"]:
        rows = rng.integers(0, entry["n"], size=(resamples, entry["n"]))
        per_subset.append(on_rows(entry, rows))
    return np.mean(per_subset, axis=0)


@dataclass(frozen=True)
class Interval:
    """A paired bootstrap interval of ``other - first``."""

    difference: float
    low: float
    high: float
    resamples: int

    @property
    def separable(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
            "resamples": self.resamples,
            "level": LEVEL,
            "separable": self.separable,
        }


def interval(differences: np.ndarray, point: float) -> Interval:
    """The percentile interval of resampled differences (``LEVEL``), beside the observed one."""
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(differences, [tail, 100 - tail])
    return Interval(point, float(low), float(high), len(differences))


def paired_intervals(
    runs: Sequence[Mapping[str, Mapping[str, Any] | None]],
    scores: Sequence[Mapping[str, float]],
    tasks: Sequence[str],
    mean_over: Sequence[str],
    resamples: int = RESAMPLES,
    keys: Sequence[int] = (),
    memo: dict | None = None,
) -> tuple[list[dict[str, Interval | str]], list[Interval | str | None]]:
    """Per run after the first: per task of ``tasks`` both runs have, the interval of its
    difference to the first run (or why there is none); and the interval of the difference of
    their means over ``mean_over`` (None for the first run; a reason where a task cannot be
    paired). ``runs`` are each run's items by task; ``memo`` keeps each run's resampled
    statistics (by its ``keys``, e.g. run ids) across calls."""
    cache: dict[tuple[int, str], np.ndarray] = {} if memo is None else memo

    def draws(index: int, task: str) -> np.ndarray:
        key = (keys[index] if keys else index, task)
        if key not in cache:
            cache[key] = resampled(runs[index][task], resamples)
        return cache[key]

    per_task: list[dict[str, Interval | str]] = [{}]
    means: list[Interval | str | None] = [None]
    for index in range(1, len(runs)):
        found: dict[str, Interval | str] = {}
        for task in (t for t in tasks if t in scores[0] and t in scores[index]):
            reason = pairable(runs[0].get(task), runs[index].get(task))
            if reason is None:
                point = scores[index][task] - scores[0][task]
                found[task] = interval(draws(index, task) - draws(0, task), point)
            else:
                found[task] = reason
        per_task.append(found)
        unpaired = [task for task in mean_over if isinstance(found[task], str)]
        if not mean_over:
            means.append("no shared tasks")
        elif unpaired:
            means.append(f"{len(unpaired)} task(s) without paired items ({', '.join(unpaired)})")
        else:
            difference = np.mean([draws(index, t) - draws(0, t) for t in mean_over], axis=0)
            point = float(np.mean([scores[index][t] - scores[0][t] for t in mean_over]))
            means.append(interval(difference, point))
    return per_task, means


def seed_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The t interval (``LEVEL``) of the mean of scores over seeds; None for fewer than two."""
    if len(values) < 2:
        return None
    from scipy.stats import t

    mean, spread = float(np.mean(values)), float(np.std(values, ddof=1)) / np.sqrt(len(values))
    half = float(t.ppf(1 - (1 - LEVEL) / 2, len(values) - 1)) * spread
    return mean - half, mean + half
