"""A task's per-item results, read from the predictions mteb saves (``prediction_folder``) and the
task's own data, in the form :mod:`leaderboard.intervals` stores and resamples.

Items are kept only where their statistic reproduces the main score mteb gave each subset (within
1e-5: mteb rounds retrieval metrics to 5 decimals): anything else is recorded as unavailable, with why, never as items that would give another
score.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from leaderboard import intervals

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

TOLERANCE = 1e-5
SIMILARITIES = ("cosine_scores", "similarity_scores", "dot_scores")  # higher: more alike
DISTANCES = ("euclidean_distances", "manhattan_distances")  # lower: more alike
STS_METRIC = re.compile(r"(cosine|manhattan|euclidean|similarity|dot)_(spearman|pearson)")
RETRIEVAL_METRIC = re.compile(r"(ndcg|map|recall|precision)_at_(\d+)")
TREC_NAMES = {"ndcg": "ndcg_cut_{}", "map": "map_cut_{}", "recall": "recall_{}", "precision": "P_{}"}


class NoItems(Exception):
    """This task's items cannot be kept (the reason is recorded instead)."""


def _column(data: Any, name: str) -> list:
    values = data[name]
    if len(values) == 1 and isinstance(values[0], list):  # mteb v1's layout: one row holding lists
        values = values[0]
    return list(values)


def _data(task: AbsTask, split: str, subset: str) -> Any:
    dataset = task.dataset
    if subset not in dataset and subset == "default":
        return dataset[split]
    return dataset[subset][split]


def _sts(task: AbsTask, main: str, data: Any, predicted: dict) -> tuple[str, str, dict]:
    match = STS_METRIC.fullmatch(main)
    if not match:
        raise NoItems(f"main metric {main} has no per-pair form")
    function, kind = match.groups()
    key = f"{function}_scores" if function in ("cosine", "similarity", "dot") else f"{function}_distances"
    gold = np.asarray(_column(data, "score"), dtype=float)
    return kind, intervals.digest(gold), {"gold": gold, "pred": np.asarray(predicted[key], dtype=float)}


def _pairs(task: AbsTask, main: str, data: Any, predicted: dict) -> tuple[str, str, dict]:
    if main not in ("max_ap", "cosine_ap"):
        raise NoItems(f"main metric {main} has no per-pair form")
    labels = np.asarray(_column(data, task.label_column_name), dtype=float)
    names = [n for n in (*SIMILARITIES, *DISTANCES) if predicted.get(n) is not None]
    if main == "cosine_ap":
        names = ["cosine_scores"]
    arrays = {
        f"s{i}": np.asarray(predicted[n], dtype=float) * (-1 if n in DISTANCES else 1) for i, n in enumerate(names)
    }
    return "max_ap", intervals.digest(labels), {"labels": labels, **arrays}


def _retrieval(task: AbsTask, main: str, data: Any, predicted: dict) -> tuple[str, str, dict]:
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores

    match = RETRIEVAL_METRIC.fullmatch(main)
    if not match:
        raise NoItems(f"main metric {main} has no per-query form")
    name = TREC_NAMES[match.group(1)].format(match.group(2))
    results = {qid: dict(docs) for qid, docs in predicted.items()}
    if task.ignore_identical_ids:
        for qid, docs in results.items():
            docs.pop(qid, None)
    scored = calculate_retrieval_scores(
        results, data["relevant_docs"], list(task.k_values), task.skip_first_result
    ).all_scores
    queries = sorted(scored)
    return "mean", intervals.digest(queries), {"values": np.array([scored[q][name] for q in queries], dtype=float)}


def _classification(task: AbsTask, main: str, data: Any, predicted: list) -> tuple[str, str, dict]:
    if main != "accuracy":
        raise NoItems(f"main metric {main} is not a mean over test items")
    gold = np.asarray(_column(data, task.label_column_name))
    correct = np.mean([np.asarray(run) == gold for run in predicted], axis=0)
    return "mean", intervals.digest(np.asarray([str(g) for g in gold])), {"values": correct}


def _clustering(scores: dict) -> tuple[str, str, dict]:
    by_level = scores.get("v_measures")
    if not isinstance(by_level, dict):
        raise NoItems("no per-experiment V-measures recorded")
    values = np.array([v for level in by_level.values() for v in level], dtype=float)
    return "mean", intervals.digest(len(values)), {"values": values}


def _subset_items(task: AbsTask, main: str, split: str, subset: str, predicted: Any, scores: dict) -> dict:
    kind = task.metadata.type
    data = _data(task, split, subset)
    if kind == "STS":
        statistic, ids, arrays = _sts(task, main, data, predicted)
    elif kind == "PairClassification":
        statistic, ids, arrays = _pairs(task, main, data, predicted)
    elif kind in ("Retrieval", "Reranking"):
        statistic, ids, arrays = _retrieval(task, main, data, predicted)
    elif kind == "Classification":
        statistic, ids, arrays = _classification(task, main, data, predicted)
    elif kind == "Clustering":
        statistic, ids, arrays = _clustering(scores)
    else:
        raise NoItems(f"{kind} tasks keep no per-item results yet")
    entry = intervals.subset(split, subset, statistic, ids, **arrays)
    recomputed, recorded = intervals.full_statistic(entry), float(scores["main_score"])
    if not abs(recomputed - recorded) <= TOLERANCE:
        raise NoItems(f"{split}/{subset}: the items give {recomputed:.6f}, mteb's main score is {recorded:.6f}")
    return entry


def task_items(task: AbsTask, folder: Path, scores: dict) -> dict[str, Any]:
    """The per-item results of ``task`` evaluated with predictions saved under ``folder``; its
    recorded ``scores`` (split -> one dict per subset, as mteb's TaskResult has them). Where they
    cannot be kept, a record saying why."""
    try:
        path = folder / task.prediction_file_name
        if not path.is_file():
            raise NoItems("mteb saved no predictions for this task")
        predictions = json.loads(path.read_text(encoding="utf-8"))
        subsets = [
            _subset_items(
                task,
                task.metadata.main_score,
                split,
                entry["hf_subset"],
                predictions[entry["hf_subset"]][split],
                entry,
            )
            for split, entries in scores.items()
            for entry in entries
        ]
    except NoItems as exc:
        return {"format": intervals.FORMAT, "unavailable": str(exc)}
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return {"format": intervals.FORMAT, "unavailable": f"predictions not understood ({type(exc).__name__}: {exc})"}
    return {"format": intervals.FORMAT, "subsets": subsets}
