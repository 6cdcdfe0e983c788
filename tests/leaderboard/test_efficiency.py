"""What evaluating a run's tasks cost: the evaluate timings read in one query, and the sums over
the ranked tasks (none where a task's timing is missing), against arithmetic done here."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from leaderboard.efficiency import RunCost, efficiency, efficiency_cells, parameters_label
from leaderboard.store import open_store

MiB = 2**20
# method -> scores, then its evaluate timings in the order recorded: (task, seconds, items, tokens,
# peak bytes, texts requested, memo hits, cache hits; None: an older row without them, and cache hits
# None: a row from before the embedding cache, which had none), model size and width
RUNS = {
    "fast": (
        {"A": 0.5, "B": 0.7, "C": 0.9},
        [
            ("A", 2.0, 100, 1200, 300 * MiB, 150, 50, None),
            ("B", 6.0, 300, 2400, 500 * MiB, 300, 0, 0),
            ("C", 1.0, 10, 100, 900 * MiB, 10, 0, None),
        ],
        134_515_008,
        576,
    ),
    "resumed": (
        {"A": 0.6, "B": 0.4, "C": 0.1},
        [
            ("A", 99.0, 1, 1, 999 * MiB, 1, 1, 0),
            ("A", 3.0, 150, 1500, 200 * MiB, 150, 0, 0),
            ("B", 1.0, 50, 600, 250 * MiB, 300, 200, 50),
        ],
        22_688,
        32,
    ),
    "old": (
        {"A": 0.3, "B": 0.3, "C": 0.3},
        [("A", 4.0, 40, 400, 100 * MiB, None, None, None), ("B", 4.0, 60, 600, 120 * MiB, None, None, None)],
        None,
        None,
    ),
    "missing": ({"A": 0.8, "B": 0.8, "C": 0.8}, [("A", 5.0, 50, 500, 100 * MiB, 50, 10, None)], 1_000_000, 64),
}
IDS = {method: number for number, method in enumerate(RUNS, start=1)}


def build_board(path: Path) -> Path:
    """A leaderboard with the runs of ``RUNS`` (ids 1 to 4, in that order), each with a load and a
    training timing that no evaluation sum may count."""
    store = open_store(path)
    for method, (scores, timings, n_parameters, embed_dim) in RUNS.items():
        run = store.start_run(
            method=method,
            backbone="b",
            task_spec="t",
            task_names=list(scores),
            config={"method": method},
            config_hash="h" * 64,
            seed=0,
            environment={},
        )
        store.record_timing(run, phase="load", seconds=50.0, items=1, tokens=None, peak_memory_bytes=4000 * MiB)
        store.record_timing(run, phase="train:main", seconds=70.0, items=9, tokens=9000, peak_memory_bytes=5000 * MiB)
        for task, value in scores.items():
            store.record_score(
                run,
                task=task,
                main_metric="cosine_spearman",
                main_score=value,
                details={},
                task_version="r1",
                task_type="STS",
            )
        for task, seconds, items, tokens, peak, requested, hits, cached in timings:
            details = (
                None
                if requested is None
                else {"texts_requested": requested, "memo_hits": hits, "texts_per_s": items / seconds}
            )
            if cached is not None:
                details["cache_hits"] = cached
            store.record_timing(
                run,
                phase=f"evaluate:{task}",
                seconds=seconds,
                items=items,
                tokens=tokens,
                peak_memory_bytes=peak,
                details=details,
            )
        if n_parameters is not None:
            store.record_model(run, n_parameters=n_parameters, trainable_parameters=0, embed_dim=embed_dim)
        store.finish_run(run)
    store.close()
    return path


def expected(method: str, tasks: tuple[str, ...]) -> dict:
    """The efficiency numbers of ``method``'s run over ``tasks``, by hand: each task's last timing."""
    _, timings, n_parameters, embed_dim = RUNS[method]
    last = {row[0]: row for row in timings}
    size = {"embed_dim": embed_dim, "n_parameters": n_parameters}
    if any(task not in last for task in tasks):
        return {
            "eval_seconds": None,
            "texts_per_s": None,
            "tokens_per_s": None,
            "memo_hit_rate": None,
            "cache_hit_rate": None,
            "peak_memory_bytes": None,
            **size,
        }
    rows = [last[task] for task in tasks]
    seconds = sum(row[1] for row in rows)
    memo = None if rows[0][5] is None else sum(row[6] for row in rows) / sum(row[5] for row in rows)
    cached = None if rows[0][5] is None else sum(row[7] or 0 for row in rows) / sum(row[5] for row in rows)
    return {
        "eval_seconds": seconds,
        "texts_per_s": sum(row[2] for row in rows) / seconds,
        "tokens_per_s": sum(row[3] for row in rows) / seconds,
        "memo_hit_rate": memo,
        "cache_hit_rate": cached,
        "peak_memory_bytes": max(row[4] for row in rows),
        **size,
    }


@pytest.fixture
def board(tmp_path) -> Path:
    return build_board(tmp_path / "h.db")


def test_the_evaluate_timings_of_many_runs_are_read_in_one_query(board):
    store = open_store(board, create=False)
    statements: list[str] = []
    event.listen(store._reader, "before_cursor_execute", lambda *args: statements.append(args[2]))
    costs = store.evaluation_costs([4, 3, 2, 1, 99])
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1  # BEGIN aside
    assert sorted(costs) == [1, 2, 3, 4]  # an unknown run has no cost
    assert costs[2].tasks["A"]["seconds"] == 3.0  # the resumed run's second evaluation of A
    assert set(costs[1].tasks) == {"A", "B", "C"}  # load and train:main are no evaluation
    assert (costs[3].n_parameters, costs[3].embed_dim, costs[3].tasks["A"]["memo_hits"]) == (
        None,
        None,
        None,
    )  # an older run


@pytest.mark.parametrize("tasks", [("A", "B"), ("A",), ("A", "B", "C")])
def test_efficiency_sums_over_the_tasks_asked_about(board, tasks):
    store = open_store(board, create=False)
    costs = store.evaluation_costs(list(IDS.values()))
    for method, run_id in IDS.items():
        assert efficiency(costs[run_id], tasks) == pytest.approx(expected(method, tasks)), method


def test_a_run_without_evaluate_timings_or_model_size_shows_dashes():
    numbers = efficiency(RunCost(), ["A"])
    assert efficiency_cells(numbers) == ["-"] * 8
    assert efficiency(RunCost(), []) == numbers  # no tasks: nothing to sum


def test_cells_and_parameter_labels():
    numbers = expected("fast", ("A", "B"))
    assert efficiency_cells(numbers) == ["8.00", "50.0", "450", "11.1%", "0.0%", "500", "576", "134.5M"]
    assert efficiency_cells(expected("resumed", ("A", "B")))[3:5] == ["44.4%", "11.1%"]  # 200 and 50 of 450 texts
    assert [parameters_label(n) for n in (22_688, 1_000_000, 7_241_732_096)] == ["22.7K", "1.0M", "7241.7M"]
