"""Reading and managing recorded runs: runs, show, leaderboard, delete, browse, db upgrade."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from harness.cli.app import (
    DEFAULT_DB,
    ROW_LIMIT,
    DbOption,
    JsonOption,
    StatusOption,
    app,
    chosen_statuses,
    console,
    print_json,
    raise_usage,
    split_items,
)
from harness.cli.comparing import DimOption, dim_note
from harness.cli.database import announce, open_leaderboard, read_store
from harness.cli.failures import user_errors


@app.command()
def leaderboard(
    method: Annotated[Optional[str], typer.Option(help="Only this method.")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Only this backbone.")] = None,
    tasks: Annotated[
        Optional[list[str]],
        typer.Option("--tasks", help="Rank over these presets/task names (default: the latest run's)."),
    ] = None,
    limit: Annotated[
        Optional[int],
        typer.Option(min=0, max=ROW_LIMIT, help="Rows to show: default 20 in the table, all with --json; 0 = all."),
    ] = None,
    efficiency: Annotated[
        bool,
        typer.Option(
            "--efficiency",
            metavar="",
            help="Also show what evaluating the ranked tasks cost each run: seconds, texts/s, tokens/s, memo hits, peak memory, model size.",
        ),
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
    left_out = [
        r for r in runs if all(t in r["scores"] for t in names) and r["run_id"] not in {x["run_id"] for x in ranked}
    ]
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
        console.print(
            "No finished runs match."
            + (f" (--dim {dim}: runs made with --dims {dim} have scores at it.)" if dim else "")
        )
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
            "(`harness compare RUNS` has a row per task, --json has every score).",
            highlight=False,
        )
    if efficiency:
        from leaderboard.render import efficiency_table

        console.print(efficiency_table(listed, names))
    if left_out:
        ids = ", ".join(f"#{r['run_id']}" for r in left_out)
        shown_versions = ", ".join(f"{t}@{version_label(v)}" for t, v in versions.items())
        console.print(
            f"{len(left_out)} run(s) left out ({ids}): computed on other data than {shown_versions}.",
            highlight=False,
            soft_wrap=True,
        )
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
    from leaderboard.render_run import run_detail_tables

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
            raise_usage(
                f"--db {where}: harness browse serves a SQLite file; a server's runs: `harness export --csv`, `harness compare`."
            )
        if not where.path.exists():
            raise_usage(f"--db {db}: no leaderboard there yet (`harness run` creates it).")
        open_leaderboard(db, create=False, read_only=True, reap=False).close()  # a harness database at this schema
        browsing.require()
    console.print(
        f"Serving {db} at http://{host}:{port}/ (dashboard: /-/dashboards/{browsing.DASHBOARD}); Ctrl-C stops.",
        highlight=False,
    )
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
        store = read_store(db, False, run_ids, reap=True)
        if store is None:
            return
        chosen = store.runs(ids=run_ids or None, statuses=wanted, method=method)
        busy = [f"#{r['run_id']}" for r in chosen if r["status"] == "running"]
        if busy:
            raise_usage(
                f"run {', '.join(busy)} is running; stop it first (one whose process has died reads as failed)."
            )
        if not chosen:
            console.print("No runs match.")
            return
        records = [store.get_run(r["run_id"]) for r in chosen]
        folders = {
            r["run_id"]: Path(r["output_dir"])
            for r in records
            if r.get("output_dir") and Path(r["output_dir"]).is_dir()
        }
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


db_app = typer.Typer(
    name="db",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="""Manage the leaderboard database itself.

    Examples:

    ```
    harness db upgrade
    harness db upgrade --db postgresql://team@host/leaderboard
    ```
    """,
)
app.add_typer(db_app)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = DEFAULT_DB) -> None:
    """Bring the leaderboard to this release's schema, backing it up first (a SQLite file to
    NAME.revREV.bak beside it; a server's tables into a schema harness_backup_REV_TIME). Reads
    never upgrade; `harness run` and `eval` upgrade a local SQLite file themselves, a server only
    through this command, so that one user's newer harness never moves a team's database ahead.

    Examples:

    ```
    harness db upgrade --db runs.db
    ```
    """
    with user_errors():
        from leaderboard.migrations import head
        from leaderboard.store import upgrade_store

        announce(db)
        previous = upgrade_store(db)
    if previous is None:
        console.print(f"Already at schema revision {head()}; nothing to do.")
    else:
        where = "beside it (NAME.rev{0}.bak)" if "://" not in db else "in the schema harness_backup_{0}_<time>"
        console.print(
            f"Upgraded from schema revision {previous} to {head()}; the backup is {where.format(previous)}.",
            highlight=False,
        )
