"""Runs side by side: `harness compare` (per task, with paired intervals; --by-config over seeds)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from harness.cli.app import DEFAULT_DB, ROW_LIMIT, DbOption, JsonOption, app, console, print_json, raise_usage
from harness.cli.database import read_store
from harness.cli.failures import user_errors

DimOption = Annotated[
    int,
    typer.Option(
        "--dim",
        min=0,
        max=2**31 - 1,
        help="Scores of the vectors' first N dims (runs made with --dims N); 0 = whole vectors (default).",
    ),
]


def dim_note(dim: int) -> str | None:
    """What a table of scores at ``dim`` is about (None for whole vectors)."""
    return (
        f"Scores of the vectors' first {dim} dims, re-normalised (harness run --dims); runs without them show none."
        if dim
        else None
    )


@app.command()
def compare(
    run_ids: Annotated[Optional[list[int]], typer.Argument(help="Runs to compare (default: the latest).")] = None,
    last: Annotated[
        int, typer.Option(min=1, max=ROW_LIMIT, help="With no run ids: compare this many latest runs.")
    ] = 5,
    include_unfinished: Annotated[
        bool,
        typer.Option(
            "--include-unfinished", metavar="", help="Also show failed, interrupted or running runs' partial scores."
        ),
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", metavar="", help="Also show the config keys that differ between the runs.")
    ] = False,
    by_config: Annotated[
        bool, typer.Option("--by-config", metavar="", help="One column per config: mean +- std over its seeds.")
    ] = False,
    baseline: Annotated[
        Optional[int],
        typer.Option("--baseline", min=1, help="Put this run first: the others' differences are against it."),
    ] = None,
    resamples: Annotated[
        int, typer.Option(min=1000, max=100_000, help="Paired bootstrap resamples behind each 95% interval.")
    ] = 1000,
    dim: DimOption = 0,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Runs side by side per task, with Mean(Task) (and a mean per task type where the tasks have
    more than one), differences to the first run (or --baseline) with their paired bootstrap 95%
    interval, and the best cell. --by-config: mean +- std over seeds, with a t interval.

    Examples:

    ```
    harness compare                     # the five latest runs
    harness compare 4 7 --baseline 1    # differences to run 1
    harness compare 4 7 --by-config --json
    ```
    """
    with user_errors():
        named = [*([baseline] if baseline is not None else []), *(run_ids or [])]
        store = read_store(db, as_json, named or None)
        if store is None:
            return
        runs = _compared_runs(store, run_ids, last, include_unfinished, baseline, dim)
        configs = [store.get_run(run["run_id"])["config"] for run in runs] if diff or by_config else []
        items = store.score_items([run["run_id"] for run in runs], dim) if not by_config else {}
    if dim and not as_json:
        console.print(dim_note(dim), highlight=False)
    if by_config:
        _print_seed_groups(runs, configs, as_json)
        return
    _print_comparison(
        [{**run, "items": items[run["run_id"]]} for run in runs], configs if diff else None, as_json, resamples
    )
    if not as_json and not dim:
        _print_repeats(store, [run["run_id"] for run in runs])


def print_against(store: Any, baseline: int, run_ids: list[int]) -> None:
    """``harness compare RUN... --baseline BASELINE``'s table (the closing table of `harness run`)."""
    runs = _compared_runs(store, run_ids, len(run_ids), False, baseline)
    items = store.score_items([run["run_id"] for run in runs], 0)
    _print_comparison([{**run, "items": items[run["run_id"]]} for run in runs], None, False, 1000)


def _print_repeats(store: Any, ids: list[int]) -> None:
    """For each compared run that repeats another compared run (``harness run --like``): whether
    their scores agree within the paired intervals."""
    from harness.runs.repeat import agreement

    with user_errors():
        for run_id in ids:
            original = store.get_run(run_id)["config"].get("repeats")
            if original in ids:
                console.print(agreement(store, original, run_id), highlight=False, soft_wrap=True)


def _compared_runs(
    store: Any, run_ids: list[int] | None, last: int, include_unfinished: bool, baseline: int | None, dim: int = 0
) -> list[dict]:
    """The runs ``compare`` shows, the baseline (if any) first, with their scores at ``dim``."""
    if run_ids:
        runs = store.runs(ids=run_ids, statuses=None, dim=dim)
        unfinished = [f"#{r['run_id']} is {r['status']}" for r in runs if r["status"] != "finished"]
        if unfinished and not include_unfinished:
            raise_usage(
                f"run {', '.join(unfinished)}; compare shows finished runs only. Add "
                "--include-unfinished to show its partial scores."
            )
    else:
        runs = list(reversed(store.runs(statuses=None if include_unfinished else ("finished",), limit=last, dim=dim)))
    if baseline is not None:
        (reference,) = store.runs(ids=[baseline], statuses=None, dim=dim)
        if reference["status"] != "finished" and not include_unfinished:
            raise_usage(
                f"--baseline {baseline}: run #{baseline} is {reference['status']}; add --include-unfinished to compare against it."
            )
        runs = [reference, *(run for run in runs if run["run_id"] != baseline)]
    return runs


def _print_seed_groups(runs: list[dict], configs: list[dict], as_json: bool) -> None:
    from leaderboard.queries import group_seeds, separate_versions

    groups = group_seeds(separate_versions(runs)[0], configs)
    if as_json:
        print_json(
            [
                {
                    "run_ids": g.run_ids,
                    "label": g.label,
                    "scores": {
                        t: {"mean": m, "std": s, "n": n, "interval": g.intervals.get(t)}
                        for t, (m, s, n) in g.scores.items()
                    },
                }
                for g in groups
            ]
        )
        return
    from leaderboard.render import seed_groups_table

    console.print(seed_groups_table(groups) if groups else "No finished runs to compare.")


def _print_comparison(runs: list[dict], configs: list[dict] | None, as_json: bool, resamples: int) -> None:
    """Scores side by side; with ``configs`` (--diff), the config keys that differ too."""
    from leaderboard.queries import compare as compare_runs
    from leaderboard.queries import config_differences

    comparison = compare_runs(runs, resamples=resamples) if runs else None
    differences = config_differences(configs) if configs is not None else []
    if as_json:
        means = comparison.means if comparison else []
        rows = [{**_without_items(run), "mean": mean} for run, mean in zip(runs, means)]
        for index, row in enumerate(rows[1:] if comparison else [], start=1):
            row["intervals"] = {task: _interval_json(found) for task, found in comparison.intervals[index].items()}
            row["mean_interval"] = _interval_json(comparison.mean_intervals[index])
        type_means = comparison.type_means if comparison else {}
        for index, row in enumerate(rows if type_means else []):
            row["type_means"] = {kind: values[index] for kind, values in type_means.items()}
        for index, row in enumerate(rows if configs is not None else []):
            row["config_diff"] = {key: values[index] for key, values in differences}
        print_json(rows)
        return
    if comparison is None:
        console.print("No finished runs to compare.")
        return
    from leaderboard.render import comparison_tables, config_diff_table

    for table in comparison_tables(comparison):
        console.print(table)
    if configs is not None:
        console.print(config_diff_table(runs, differences) if differences else "Their configs are identical.")


def _without_items(run: dict) -> dict:
    return {key: value for key, value in run.items() if key != "items"}


def _interval_json(found: Any) -> dict:
    """An interval as --json gives it, or why there is none."""
    return found.as_dict() if not isinstance(found, str) else {"unavailable": found}
