"""Reading and managing recorded runs: runs, show, compare, leaderboard, delete, browse."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from harness.cli.app import (
    DEFAULT_DB, ROW_LIMIT, DbOption, JsonOption, StatusOption, app, chosen_statuses, console, print_json, raise_usage, split_items,
)
from harness.cli.database import announce, open_leaderboard, read_store
from harness.cli.errors import user_errors


DimOption = Annotated[
    int, typer.Option("--dim", min=0, max=2**31 - 1, help="Scores of the vectors' first N dims (runs made with --dims N); 0 = whole vectors (default)."),
]


def dim_note(dim: int) -> str | None:
    """What a table of scores at ``dim`` is about (None for whole vectors)."""
    return f"Scores of the vectors' first {dim} dims, re-normalised (harness run --dims); runs without them show none." if dim else None


@app.command()
def compare(
    run_ids: Annotated[Optional[list[int]], typer.Argument(help="Runs to compare (default: the latest).")] = None,
    last: Annotated[int, typer.Option(min=1, max=ROW_LIMIT, help="With no run ids: compare this many latest runs.")] = 5,
    include_unfinished: Annotated[
        bool, typer.Option("--include-unfinished", metavar="", help="Also show failed, interrupted or running runs' partial scores.")
    ] = False,
    diff: Annotated[bool, typer.Option("--diff", metavar="", help="Also show the config keys that differ between the runs.")] = False,
    by_config: Annotated[
        bool, typer.Option("--by-config", metavar="", help="One column per config: mean +- std over its seeds.")
    ] = False,
    baseline: Annotated[
        Optional[int], typer.Option("--baseline", min=1, help="Put this run first: the others' differences are against it.")
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
    _print_comparison([{**run, "items": items[run["run_id"]]} for run in runs], configs if diff else None, as_json, resamples)
    if not as_json and not dim:
        _print_repeats(store, [run["run_id"] for run in runs])


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
    store: Any, run_ids: list[int] | None, last: int, include_unfinished: bool, baseline: int | None, dim: int = 0,
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
            raise_usage(f"--baseline {baseline}: run #{baseline} is {reference['status']}; add --include-unfinished to compare against it.")
        runs = [reference, *(run for run in runs if run["run_id"] != baseline)]
    return runs


def _print_seed_groups(runs: list[dict], configs: list[dict], as_json: bool) -> None:
    from leaderboard.queries import group_seeds, separate_versions

    groups = group_seeds(separate_versions(runs)[0], configs)
    if as_json:
        print_json([
            {"run_ids": g.run_ids, "label": g.label,
             "scores": {t: {"mean": m, "std": s, "n": n, "interval": g.intervals.get(t)} for t, (m, s, n) in g.scores.items()}}
            for g in groups
        ])
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


@app.command()
def leaderboard(
    method: Annotated[Optional[str], typer.Option(help="Only this method.")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Only this backbone.")] = None,
    tasks: Annotated[
        Optional[list[str]],
        typer.Option("--tasks", help="Rank over these presets/task names (default: the latest run's)."),
    ] = None,
    limit: Annotated[
        Optional[int], typer.Option(min=0, max=ROW_LIMIT, help="Rows to show: default 20 in the table, all with --json; 0 = all.")
    ] = None,
    efficiency: Annotated[
        bool, typer.Option("--efficiency", metavar="", help="Also show what evaluating the ranked tasks cost each run: seconds, texts/s, tokens/s, memo hits, peak memory, model size.")
    ] = False,
    dim: DimOption = 0,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Finished runs ranked by Mean(Task) over one task set (with a mean per task type where it has
    more than one); runs missing a task are left out. --efficiency adds what their evaluation cost.

    Examples:

    ```
    harness leaderboard
    harness leaderboard --method infonce --tasks offline
    harness leaderboard --efficiency --limit 0
    ```
    """
    with user_errors():
        store = read_store(db, as_json)
        if store is None:
            return
        runs = store.runs(method=method, backbone=backbone, dim=dim)
        from harness.evaluation.tasks import file_versions, task_names

        tasks = split_items(tasks)
        names = task_names(tasks) if tasks else (list(runs[0]["tasks"]) if runs else [])
        given = file_versions(tasks or [])  # a task file given here is the version to rank on
    from leaderboard.queries import rank, reference_versions, tie_unseparable, version_label

    versions = reference_versions(runs, names, given)
    ranked = rank(runs, names, versions)
    left_out = [r for r in runs if all(t in r["scores"] for t in names) and r["run_id"] not in {x["run_id"] for x in ranked}]
    shown = limit if limit is not None else (0 if as_json else 20)
    listed = ranked[:shown] if shown else ranked
    with user_errors():
        tie_unseparable(listed, store.score_items([run["run_id"] for run in listed], dim), names)
    if efficiency:
        with user_errors():
            _add_efficiency(store, listed, names)
    if as_json:
        print_json(listed)
        return
    if not ranked:
        console.print("No finished runs match." + (f" (--dim {dim}: runs made with --dims {dim} have scores at it.)" if dim else ""))
        return
    if dim:
        console.print(dim_note(dim), highlight=False)
    from leaderboard.render import LEADERBOARD_FIXED, fit_columns, leaderboard_table

    table = leaderboard_table(listed, names)
    hidden = fit_columns(table, console.width, LEADERBOARD_FIXED)
    console.print(table)
    if hidden:
        console.print(
            f"Mean over all {len(names)} tasks; not shown at this width: {', '.join(hidden)} "
            "(`harness compare RUNS` has a row per task, --json has every score).", highlight=False,
        )
    if efficiency:
        from leaderboard.render import efficiency_table

        console.print(efficiency_table(listed, names))
    if left_out:
        ids = ", ".join(f"#{r['run_id']}" for r in left_out)
        shown_versions = ", ".join(f"{t}@{version_label(v)}" for t, v in versions.items())
        console.print(f"{len(left_out)} run(s) left out ({ids}): computed on other data than {shown_versions}.", highlight=False, soft_wrap=True)
    if shown and len(ranked) > shown:
        console.print(f"{shown} of {len(ranked)} ranked runs shown; --limit 0 shows all.")


def _add_efficiency(store: Any, ranked: list[dict], tasks: list[str]) -> None:
    """Give each ranked run its ``efficiency``: what evaluating ``tasks`` cost it."""
    from leaderboard.efficiency import efficiency

    costs = store.evaluation_costs([run["run_id"] for run in ranked])
    for run in ranked:
        run["efficiency"] = efficiency(costs[run["run_id"]], tasks)


@app.command()
def show(
    run_id: Annotated[int, typer.Argument(help="The run to show.")],
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Everything recorded about one run: scores, timings, config and environment.

    Examples:

    ```
    harness show 3
    harness show 3 --json --db postgresql://me@host/team
    ```
    """
    with user_errors():
        store = read_store(db, as_json, [run_id])
        record = store.get_run(run_id)
        record["metrics"] = store.metrics(run_id)
        record["diagnostics"] = store.diagnostics(run_id)
        record["dev_scores"] = store.dev_scores(run_id)
    if as_json:
        print_json([record])
        return
    from leaderboard.render import run_detail_tables

    for table in run_detail_tables(record):
        console.print(table)


@app.command()
def browse(
    db: DbOption = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8001,
) -> None:
    """Serve the leaderboard in a browser: tables, canned queries and a dashboard of charts
    (datasette; needs the browse extra). Runs keep recording while it is open.

    Examples:

    ```
    harness browse
    harness browse --db runs.db --port 8002
    ```
    """
    from leaderboard import browse as browsing
    from leaderboard.database import locate

    with user_errors():
        announce(db)
        where = locate(db)
        if not where.is_sqlite:
            raise_usage(f"--db {where}: harness browse serves a SQLite file; a server's runs: `harness export --csv`, `harness compare`.")
        if not where.path.exists():
            raise_usage(f"--db {db}: no leaderboard there yet (`harness run` creates it).")
        open_leaderboard(db, create=False).close()  # a harness database, upgraded to this schema
        browsing.require()
    console.print(f"Serving {db} at http://{host}:{port}/ (dashboard: /-/dashboards/{browsing.DASHBOARD}); Ctrl-C stops.", highlight=False)
    browsing.serve(where.path, host, port)


@app.command()
def runs(
    status: StatusOption = None,
    method: Annotated[Optional[str], typer.Option(help="Only this method.")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Only this backbone.")] = None,
    db: DbOption = DEFAULT_DB,
    limit: Annotated[int, typer.Option(min=0, max=ROW_LIMIT, help="Show this many latest runs; 0 = all.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The latest runs of every status (running, finished, failed, interrupted), filtered.

    Examples:

    ```
    harness runs
    harness runs --status failed --method infonce
    harness runs --limit 0 --json
    ```
    """
    with user_errors():
        wanted = chosen_statuses(status)
        store = read_store(db, as_json)
        if store is None:
            return
        records = store.runs(statuses=wanted, method=method, backbone=backbone, limit=limit or None)
    if as_json:
        print_json(records)
        return
    from leaderboard.render import runs_table

    console.print(runs_table(records))


@app.command()
def delete(
    run_ids: Annotated[Optional[list[int]], typer.Argument(help="Runs to delete.")] = None,
    status: StatusOption = None,
    method: Annotated[Optional[str], typer.Option(help="With --status: only this method.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", metavar="", help="Do not ask for confirmation.")] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Delete runs you no longer want: their rows (scores, timings, steps) and their checkpoint
    folders. Asks first unless --yes; running runs are never deleted.

    Examples:

    ```
    harness delete 3 4
    harness delete --status failed --yes
    ```
    """
    with user_errors():
        from harness.runs import folders as run_folders

        wanted = chosen_statuses(status)
        if not run_ids and not wanted:
            raise_usage("name the runs to delete (harness delete 3 7) or select them with --status.")
        store = read_store(db, False, run_ids)
        if store is None:
            return
        chosen = store.runs(ids=run_ids or None, statuses=wanted, method=method)
        busy = [f"#{r['run_id']}" for r in chosen if r["status"] == "running"]
        if busy:
            raise_usage(f"run {', '.join(busy)} is running; stop it first (a stale one is marked failed by any command).")
        if not chosen:
            console.print("No runs match.")
            return
        records = [store.get_run(r["run_id"]) for r in chosen]
        folders = {r["run_id"]: Path(r["output_dir"]) for r in records if r.get("output_dir") and Path(r["output_dir"]).is_dir()}
        freed = sum(run_folders.size_bytes(f) for f in folders.values())
        listing = ", ".join(f"#{r['run_id']} ({r['status']} {r['method']})" for r in records)
        where = "".join(f"\n  {folder}" for folder in folders.values())
        question = f"Delete {len(records)} run(s) {listing} and {len(folders)} checkpoint folder(s), {run_folders.human_size(freed)}{where}\n?"
        if not yes:
            if not interactive():
                raise_usage(f"{question} Not asked: input is not a terminal; add --yes to delete.")
            if not typer.confirm(question, default=False):
                console.print("Nothing deleted.")
                return
        for record in records:  # the row first: a folder left by a crash here is owned by no row
            store.delete_run(record["run_id"])
            folder = folders.get(record["run_id"])
            kept = folder is not None and not run_folders.remove(folder, record["uuid"])
            note = f"; kept {folder}: it is not this run's own folder" if kept else ""
            console.print(f"Deleted run #{record['run_id']}{note}.", highlight=False)


def interactive() -> bool:
    return sys.stdin.isatty()
