"""Paired bootstrap intervals in ``harness compare`` and shared ranks in ``harness leaderboard``,
checked against a bootstrap written here in numpy over hand-made runs (the same draws: the
documented protocol, a generator seeded 20250 per task)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from leaderboard import intervals
from leaderboard.store import open_store

runner = CliRunner()
RESAMPLES = 1000


def _record(db, runs: list[dict[str, tuple[float, dict | None]]]) -> None:
    """Finished runs with these (main score, items) per task."""
    store = open_store(db)
    for seed, tasks in enumerate(runs):
        run = store.start_run(
            method="m",
            backbone=f"b{seed}",
            task_spec="t",
            task_names=list(tasks),
            config={"seed": seed},
            config_hash=str(seed),
            seed=seed,
            environment={},
        )
        for task, (score, items) in tasks.items():
            store.record_score(
                run, task=task, main_metric="x", main_score=score, details={}, task_version="v1", items=items
            )
        store.finish_run(run)
    store.close()


def _items(statistic: str, **arrays) -> dict:
    return {"format": 1, "subsets": [intervals.subset("test", "default", statistic, "ids", **arrays)]}


# -- the metrics, written again here ------------------------------------------------------------
def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):  # ties share the mean of their ranks
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _spearman(gold, pred) -> float:
    return float(np.corrcoef(_average_ranks(gold), _average_ranks(pred))[0, 1])


def _ap(labels, scores) -> float:
    """Average precision with tied scores taken as one threshold: sum over thresholds of
    (recall gained) x precision at it."""
    total, found, previous_recall = 0.0, 0, 0.0
    positives = labels.sum()
    for threshold in sorted(set(scores), reverse=True):
        chosen = scores >= threshold
        found = labels[chosen].sum()
        recall = found / positives
        total += (recall - previous_recall) * found / chosen.sum()
        previous_recall = recall
    return total


def _statistic(kind: str, arrays: dict, rows: np.ndarray) -> np.ndarray:
    out = []
    for row in rows:
        if kind == "spearman":
            out.append(_spearman(arrays["gold"][row], arrays["pred"][row]))
        elif kind == "mean":
            out.append(arrays["values"][row].mean())
        else:
            out.append(max(_ap(arrays["labels"][row], arrays[name][row]) for name in arrays if name != "labels"))
    return np.array(out)


def _expected(kind: str, first: dict, other: dict, n: int) -> np.ndarray:
    rows = np.random.default_rng(20250).integers(0, n, size=(RESAMPLES, n))
    return _statistic(kind, other, rows) - _statistic(kind, first, rows)


def test_intervals_equal_an_independent_bootstrap(tmp_path):
    rng = np.random.default_rng(7)
    gold = np.round(rng.uniform(0, 5, 30), 1)  # rounded: tied gold scores, as in STS data
    labels = (rng.uniform(size=25) < 0.4).astype(float)
    made = []
    for noise in (1.0, 0.6):
        sts = {"gold": gold, "pred": gold + rng.normal(0, noise, 30)}
        queries = {"values": np.clip(rng.uniform(0.2, 0.8, 20) + (0.6 - noise) / 4, 0, 1)}
        pairs = {"labels": labels, "s0": labels + rng.normal(0, noise, 25), "s1": -np.abs(rng.normal(0, 1, 25))}
        made.append({"sts": sts, "ret": queries, "pair": pairs})
    kinds = {"sts": "spearman", "ret": "mean", "pair": "max_ap"}
    full = lambda kind, arrays, n: float(_statistic(kind, arrays, np.arange(n)[None, :])[0])  # noqa: E731
    sizes = {"sts": 30, "ret": 20, "pair": 25}
    runs = [
        {t: (full(kinds[t], arrays, sizes[t]), _items(kinds[t], **arrays)) for t, arrays in run.items()}
        for run in made
    ]
    db = tmp_path / "h.db"
    _record(db, runs)
    result = runner.invoke(app, ["compare", "1", "2", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.stdout)
    assert "intervals" not in first
    differences = {}
    for task, kind in kinds.items():
        differences[task] = _expected(kind, made[0][task], made[1][task], sizes[task])
        low, high = np.percentile(differences[task], [2.5, 97.5])
        got = second["intervals"][task]
        assert (got["low"], got["high"]) == pytest.approx((low, high), abs=1e-12)
        assert got["difference"] == pytest.approx(runs[1][task][0] - runs[0][task][0], abs=1e-12)
        assert got["resamples"] == RESAMPLES and got["separable"] == (low > 0 or high < 0)
    low, high = np.percentile(np.mean(list(differences.values()), axis=0), [2.5, 97.5])
    assert (second["mean_interval"]["low"], second["mean_interval"]["high"]) == pytest.approx((low, high), abs=1e-12)


def test_identical_vectors_give_an_interval_of_exactly_zero(tmp_path):
    rng = np.random.default_rng(1)
    gold = rng.uniform(0, 5, 200)
    items = _items("spearman", gold=gold, pred=gold + rng.normal(0, 1, 200))
    score = intervals.full_statistic(items["subsets"][0])
    db = tmp_path / "h.db"
    _record(db, [{"sts": (score, items)}, {"sts": (score, items)}])
    second = json.loads(runner.invoke(app, ["compare", "1", "2", "--json", "--db", str(db)]).stdout)[1]
    assert second["intervals"]["sts"] == {
        "difference": 0.0,
        "low": 0.0,
        "high": 0.0,
        "resamples": RESAMPLES,
        "level": 0.95,
        "separable": False,
    }
    table = runner.invoke(app, ["compare", "1", "2", "--db", str(db)], terminal_width=120).output
    assert "[+0.00, +0.00]" in table and "] !" not in table
    ranked = json.loads(runner.invoke(app, ["leaderboard", "--json", "--db", str(db)]).stdout)
    assert [r["rank"] for r in ranked] == [1, 1] and [r["separable_from_above"] for r in ranked] == [None, False]
    assert "=1" in runner.invoke(app, ["leaderboard", "--db", str(db)], terminal_width=120).output


def test_a_known_shift_on_a_large_task_is_separable(tmp_path):
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, 5000)  # per-query nDCG@10 of run 1; run 2 is 0.02 better, give or take
    noise = rng.normal(0, 0.05, 5000)
    shifted = base + 0.02 + noise - noise.mean()  # the observed difference is the shift exactly
    db = tmp_path / "h.db"
    _record(
        db,
        [
            {"ret": (base.mean(), _items("mean", values=base))},
            {"ret": (shifted.mean(), _items("mean", values=shifted))},
        ],
    )
    got = json.loads(runner.invoke(app, ["compare", "1", "2", "--json", "--db", str(db)]).stdout)[1]["intervals"][
        "ret"
    ]
    assert got["separable"] and 0 < got["low"] < 0.02 < got["high"] and got["high"] - got["low"] < 0.01
    assert "] !" in runner.invoke(app, ["compare", "1", "2", "--db", str(db)], terminal_width=120).output
    ranked = json.loads(runner.invoke(app, ["leaderboard", "--json", "--db", str(db)]).stdout)
    assert [(r["run_id"], r["rank"]) for r in ranked] == [(2, 1), (1, 2)] and ranked[1]["separable_from_above"] is True


@pytest.mark.parametrize(
    "items, reason",
    [
        (None, "recorded before per-item results were kept"),
        (
            {"format": 1, "unavailable": "Summarization tasks keep no per-item results yet"},
            "Summarization tasks keep no per-item results yet",
        ),
        ({"format": 9, "subsets": []}, "a form this release does not know"),
        (
            {
                "format": 1,
                "subsets": [
                    {
                        "split": "test",
                        "subset": "default",
                        "statistic": "mean",
                        "n": 3,
                        "ids": "i",
                        "arrays": {"values": "not base64!"},
                    }
                ],
            },
            "damaged",
        ),
        (
            {
                "format": 1,
                "subsets": [{**intervals.subset("test", "default", "mean", "i", values=[1.0, 2.0]), "n": 5}],
            },
            "damaged",
        ),
        (
            {
                "format": 1,
                "subsets": [
                    {**intervals.subset("test", "default", "mean", "i", values=[1.0, 2.0]), "statistic": "median"}
                ],
            },
            "damaged",
        ),
        (["not", "a", "record"], "a form this release does not know"),
    ],
)
def test_scores_without_usable_items_say_why_and_never_fail(tmp_path, items, reason):
    good = _items("mean", values=[0.1, 0.5, 0.9])
    db = tmp_path / "h.db"
    _record(db, [{"T": (0.5, good)}, {"T": (0.4, items)}])
    result = runner.invoke(app, ["compare", "1", "2", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)[1]
    assert (
        reason in second["intervals"]["T"]["unavailable"]
        and "without paired items" in second["mean_interval"]["unavailable"]
    )
    table = runner.invoke(app, ["compare", "1", "2", "--db", str(db)], terminal_width=160).output
    assert "[n/a]" in table and reason in " ".join(table.split())
    board = runner.invoke(app, ["leaderboard", "--db", str(db)], terminal_width=160)
    assert board.exit_code == 0 and "2?" in board.output


def test_runs_over_different_items_are_not_paired(tmp_path):
    db = tmp_path / "h.db"
    one = {"format": 1, "subsets": [intervals.subset("test", "default", "mean", "a", values=[0.1, 0.5, 0.9])]}
    other = {"format": 1, "subsets": [intervals.subset("test", "default", "mean", "b", values=[0.1, 0.5, 0.9])]}
    _record(db, [{"T": (0.5, one)}, {"T": (0.5, other)}])
    second = json.loads(runner.invoke(app, ["compare", "1", "2", "--json", "--db", str(db)]).stdout)[1]
    assert second["intervals"]["T"] == {"unavailable": "the two runs' items differ (other items or splits)"}


def test_fewer_than_a_thousand_resamples_are_refused(tmp_path):
    db = tmp_path / "h.db"
    _record(db, [{"T": (0.5, _items("mean", values=[0.1, 0.9]))}, {"T": (0.4, _items("mean", values=[0.2, 0.6]))}])
    result = runner.invoke(app, ["compare", "1", "2", "--resamples", "999", "--db", str(db)])
    assert result.exit_code == 2 and "--resamples" in result.output
    wider = json.loads(
        runner.invoke(app, ["compare", "1", "2", "--resamples", "2000", "--json", "--db", str(db)]).stdout
    )[1]
    assert wider["intervals"]["T"]["resamples"] == 2000
