"""The ``harness`` command line (typer + rich).

Heavy libraries (torch, transformers, mteb, sqlalchemy) are imported inside the commands that use
them, so ``harness --help`` answers fast. Bad input ends with one paragraph on stderr and exit 2.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="harness",
    help=(
        "Train, evaluate and compare LLM embedding methods on MTEB; every run lands in a leaderboard: "
        "a SQLite file (./harness.db by default) or a team's PostgreSQL (--db postgresql://user@host/db).\n\nWith no options, `harness run` runs the offline default: AutoRegEmbed "
        "(small preset) trained on smollm2-135m with the offline data, evaluated on the offline tasks."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DEFAULT_DB = "harness.db"
ROW_LIMIT = 2**31 - 1  # --last / --limit beyond this would overflow the query
DbOption = Annotated[
    str,
    typer.Option(
        "--db", envvar="HARNESS_DB", show_default=True,
        help="Leaderboard: a SQLite file on a local disk, or a URL such as postgresql://user@host/db (env HARNESS_DB).",
    ),
]
# metavar "": shown as a flag in help, not as "--json <bool>"
JsonOption = Annotated[bool, typer.Option("--json", metavar="", help="Print a JSON list of objects instead of a table.")]
PluginsOption = Annotated[
    Optional[list[str]],
    typer.Option("--plugins", help="Import this plug-in module by name (repeatable; env HARNESS_PLUGINS)."),
]


@contextmanager
def _user_errors(db: str | None = None) -> Iterator[None]:
    """Bad input and unusable files become one message and exit code 2; a started run that
    failed for a reason the user can act on (NaN loss, out of memory) one message and exit 1;
    Ctrl-C or SIGTERM one line saying how to resume, exit code 130."""
    from harness.errors import HarnessError, RunFailed, RunInterrupted
    from leaderboard.errors import LeaderboardError

    try:
        yield
    except (HarnessError, LeaderboardError) as exc:
        err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except RunFailed as exc:
        err_console.print(f"[bold red]Run failed:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except RunInterrupted as exc:
        where = "" if db is None or db == DEFAULT_DB else f" --db {_db_label(db)}"
        err_console.print(
            f"Run #{exc.run_id} {exc}: recorded as interrupted with the steps done so far; continue "
            f"it with `harness run --resume {exc.run_id}{where}`.",
            highlight=False, soft_wrap=True,
        )
        raise typer.Exit(RunInterrupted.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("Interrupted before the run was recorded; nothing was written.", highlight=False)
        raise typer.Exit(RunInterrupted.exit_code) from None
    except Exception as exc:
        if "database is locked" not in str(exc):
            raise
        err_console.print(
            f"[bold red]Error:[/] the leaderboard {_db_label(db) if db else ''} stayed locked by another writer for "
            "60 s; nothing was changed by this command. Try again, or check for a stuck process.",
            highlight=False, soft_wrap=True,
        )
        raise typer.Exit(1) from None


def split_items(items: list[str] | None) -> list[str] | None:
    """``--tasks a,b`` as ``--tasks a --tasks b``; an existing path keeps its commas."""
    if not items:
        return items
    def whole(item: str) -> bool:
        try:
            return "," not in item or Path(item).exists()
        except OSError:
            return True  # not a usable path either: the task checks say so

    return [part.strip() for item in items for part in ([item] if whole(item) else item.split(","))]


def raise_usage(message: str) -> None:
    from harness.errors import HarnessError

    raise HarnessError(message)


def _located(db: str) -> tuple[str, Any]:
    """``--db`` as shown to the user (a file's absolute path, a URL's password hidden) and its
    location; None where --db is unusable (the command's own check says why)."""
    from leaderboard.database import locate
    from leaderboard.errors import LeaderboardError

    try:
        where = locate(db)
        return (str(where.path.absolute()) if where.is_sqlite else str(where)), where
    except (LeaderboardError, OSError):
        return db, None


def _db_label(db: str) -> str:
    return _located(db)[0]


def _announce(db: str, *, writes: bool = False) -> None:
    """The first line of every command that reads or writes a leaderboard: which one it is (on
    stderr, so that --json output stays JSON)."""
    label, where = _located(db)
    if where is None:
        return
    try:
        new = " (a new file)" if writes and where.is_sqlite and not where.path.exists() else ""
    except OSError:  # a name too long, say: the command's own check says so
        return
    err_console.print(f"Leaderboard: {label}{new}", style="dim", highlight=False, soft_wrap=True)


def _open_store(db: str, *, create: bool) -> Any:
    from leaderboard.store import open_store

    store = open_store(db, create=create)
    store.reap_stale()
    return store


def _check_db(db: str) -> None:
    """Refuse an unusable ``--db`` before a run does any work; an existing database is opened
    (and upgraded), a missing one is only checked, so that a refused run creates no file."""
    from leaderboard.database import locate
    from leaderboard.store import check_new_location

    from leaderboard.errors import MissingLeaderboard

    where = locate(db)
    check_new_location(where)
    if where.is_sqlite and not where.path.exists():
        return
    try:  # an existing file, or a server: reachable and a harness leaderboard (or empty)
        _open_store(db, create=False).close()
    except MissingLeaderboard:
        pass


def _read_store(db: str, as_json: bool, ids: list[int] | None = None) -> Any:
    """The store for a command that reads, or None when no database exists yet. A missing
    database reads as an empty one: a listing says so (exit 0, ``[]`` with --json), a command that
    names runs fails with "no run N" (exit 2), as it would on an empty database."""
    from leaderboard.errors import MissingLeaderboard

    _announce(db)
    try:
        return _open_store(db, create=False)
    except MissingLeaderboard:
        where = f"No leaderboard at {_db_label(db)} yet: `harness run` creates it (or point --db / HARNESS_DB at one)."
        if ids:
            raise_usage(f"no run {', '.join(map(str, ids))}. {where}")
        if as_json:
            print("[]")
        err_console.print(where, highlight=False, soft_wrap=True)
        return None


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


@app.command()
def run(
    method: Annotated[Optional[str], typer.Option(help="Method name (see `harness methods`).")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Alias, hub id or local folder.")] = None,
    tasks: Annotated[
        Optional[list[str]],
        typer.Option("--tasks", help="Preset, mteb task name or .tsv/.csv/.jsonl file (repeatable, or a,b)."),
    ] = None,
    train_data: Annotated[
        Optional[str],
        typer.Option("--train-data", help="Triplet or NLI file, all-nli, simcse-nli, or offline (default)."),
    ] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML config file.")] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override KEY=VALUE (e.g. batch_size=16, method_args.lr=1e-4)."),
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default 0).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto (default), cpu, cuda, cuda:N, mps, ...")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Texts per forward pass when encoding (default 32; training: method_args.batch_size).")] = None,
    limit: Annotated[
        Optional[int],
        typer.Option("--limit", min=1, max=ROW_LIMIT, help="Evaluate on the first N items of each task: a quick check, recorded as such and never ranked with full runs."),
    ] = None,
    resume: Annotated[
        Optional[int], typer.Option("--resume", help="Continue this failed/interrupted run from its last checkpoint.")
    ] = None,
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output-dir",
            help="Where trained runs keep checkpoints: a new run-<id>-<uuid>/ folder per run. With "
            "--resume: where to look for the run's folder if it was moved.",
        ),
    ] = Path("harness-runs"),
    report_to: Annotated[
        Optional[list[str]],
        typer.Option(
            "--report-to",
            help="Also log to tensorboard, mlflow or wandb (repeatable; each an extra). Files go under --output-dir.",
        ),
    ] = None,
    db: DbOption = DEFAULT_DB,
    plugins: PluginsOption = None,
) -> None:
    """Train (if the method has stages) and evaluate one method on one backbone; record the run.

    Multi-process: `torchrun --nproc-per-node N -m harness run ...` or
    `accelerate launch -m harness run ...`; only rank 0 writes.
    """
    with _user_errors(db):
        from harness import distributed
        from harness.config import load_run_config
        from harness.registry import import_plugins
        from harness.runner import check_output_root, execute, plan_run, recorded_config, refuse_changed_tasks
        from harness.trackers import check as check_trackers

        import_plugins(plugins or [])
        trackers = check_trackers(report_to or [])
        is_main = distributed.from_environment().is_main
        record = None
        if is_main and resume is None:
            _announce(db, writes=True)
        if resume is not None:
            given = [method, backbone, tasks, train_data, config, set_, seed, device, batch_size, limit]
            if any(v not in (None, []) for v in given):
                raise_usage("--resume takes the run's recorded config; give no other run options.")
            record = _read_store(db, False, [resume]).get_run(resume)
            if record["status"] == "finished":
                raise_usage(f"run {resume} is already finished; nothing to resume.")
            run_config = recorded_config(record)
        else:
            options = {"method": method, "backbone": backbone, "tasks": split_items(tasks), "seed": seed, "train_data": train_data,
                       "device": device, "batch_size": batch_size, "limit": limit}
            run_config = load_run_config(config, options, set_ or [])
        plan = plan_run(run_config)
        if record is not None:
            refuse_changed_tasks(plan, record)
        if is_main and (trackers or plan.method_cls(plan.method_config).stages()):
            check_output_root(output_dir)
        if is_main:
            _check_db(db)
        warnings: list[str] = []
        opener = functools.cache(lambda: _open_store(db, create=True)) if is_main else None
        run_id = execute(plan, opener, console, output_root=output_dir, resume=record, warnings=warnings, report_to=trackers)
        if opener is None:
            return
    _report_finished(opener(), run_id, db)  # the store the run wrote to (opened by execute)
    for warning in warnings:
        err_console.print(f"Repeated from above: {warning}", highlight=False, soft_wrap=True)
    for note in plan.method_cls(plan.method_config).closing_notes():
        err_console.print(note, highlight=False, soft_wrap=True)


def _report_finished(store: Any, run_id: int, db: str) -> None:
    """The finished run's table and where its files went. The run is recorded by now, so a
    failure to read it back is a warning, never a traceback or a failed exit."""
    try:
        from leaderboard.queries import compare as compare_runs
        from leaderboard.render import comparison_tables

        record = store.get_run(run_id)
        for table in comparison_tables(compare_runs([record])):
            console.print(table)
    except Exception as exc:  # e.g. sqlite3.OperationalError on a flaky disk
        err_console.print(
            f"Warning: run #{run_id} finished and is recorded in {_db_label(db)}, but reading it back failed "
            f"({type(exc).__name__}: {exc}); `harness show {run_id}` shows it later.",
            highlight=False, soft_wrap=True,
        )
        return
    console.print(f"Recorded as run #{run_id} in {_db_label(db)}. `harness show {run_id}` for details.")
    if record.get("output_dir"):
        from harness.run_folders import human_size, size_bytes

        folder = Path(record["output_dir"])
        size = human_size(size_bytes(folder)) if folder.is_dir() else "gone"
        console.print(
            f"Checkpoints: {folder} ({size}); `harness delete {run_id}` removes the run and them.",
            highlight=False, soft_wrap=True,
        )


@app.command("eval")
def eval_command(
    run_id: Annotated[int, typer.Argument(help="A finished run whose encoder to evaluate again.")],
    tasks: Annotated[list[str], typer.Option("--tasks", help="Presets, mteb task names or task files (repeatable).")],
    force: Annotated[
        bool, typer.Option("--force", metavar="", help="Evaluate tasks the run has a score for already, and replace those scores.")
    ] = False,
    db: DbOption = DEFAULT_DB,
    plugins: PluginsOption = None,
) -> None:
    """Evaluate a recorded run's encoder on more tasks, without retraining; scores join its row.
    A task the run has a score for is refused unless --force (another file with the same name
    is other data: give it another name)."""
    with _user_errors():
        from harness.registry import import_plugins
        from harness.runner import plan_run, recorded_config, reevaluate

        import_plugins(plugins or [])
        store = _read_store(db, False, [run_id])
        record = store.get_run(run_id)
        if record["status"] != "finished":
            raise_usage(f"run {run_id} is {record['status']}; only finished runs can be evaluated again.")
        run_config = recorded_config(record)
        run_config.tasks = split_items(tasks)
        reevaluate(plan_run(run_config), store, record, console, force=force)
    console.print(f"Scores added to run #{run_id}. `harness show {run_id}` for all of them.")


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
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Runs side by side per task, with Mean(Task), differences to the first run (or --baseline)
    and the best cell."""
    with _user_errors():
        named = [*([baseline] if baseline is not None else []), *(run_ids or [])]
        store = _read_store(db, as_json, named or None)
        if store is None:
            return
        statuses = None if include_unfinished else ("finished",)
        if run_ids:
            runs = store.runs(ids=run_ids, statuses=None)
            unfinished = [f"#{r['run_id']} is {r['status']}" for r in runs if r["status"] != "finished"]
            if unfinished and not include_unfinished:
                raise_usage(
                    f"run {', '.join(unfinished)}; compare shows finished runs only. Add "
                    "--include-unfinished to show its partial scores."
                )
        else:
            runs = list(reversed(store.runs(statuses=statuses, limit=last)))
        if baseline is not None:
            (reference,) = store.runs(ids=[baseline], statuses=None)
            if reference["status"] != "finished" and not include_unfinished:
                raise_usage(f"--baseline {baseline}: run #{baseline} is {reference['status']}; add --include-unfinished to compare against it.")
            runs = [reference, *(run for run in runs if run["run_id"] != baseline)]
        configs = [store.get_run(run["run_id"])["config"] for run in runs] if diff or by_config else []
    from leaderboard.queries import compare as compare_runs
    from leaderboard.queries import config_differences, group_seeds

    if by_config:
        from leaderboard.queries import separate_versions

        groups = group_seeds(separate_versions(runs)[0], configs)
        if as_json:
            _print_json([
                {"run_ids": g.run_ids, "label": g.label,
                 "scores": {t: {"mean": m, "std": s, "n": n} for t, (m, s, n) in g.scores.items()}}
                for g in groups
            ])
            return
        from leaderboard.render import seed_groups_table

        console.print(seed_groups_table(groups) if groups else "No finished runs to compare.")
        return

    comparison = compare_runs(runs) if runs else None
    differences = config_differences(configs) if diff else []
    if as_json:
        means = comparison.means if comparison else []
        rows = [{**run, "mean": mean} for run, mean in zip(runs, means)]
        for index, row in enumerate(rows if diff else []):
            row["config_diff"] = {key: values[index] for key, values in differences}
        _print_json(rows)
        return
    if comparison is None:
        console.print("No finished runs to compare.")
        return
    from leaderboard.render import comparison_tables, config_diff_table

    for table in comparison_tables(comparison):
        console.print(table)
    if diff:
        console.print(config_diff_table(runs, differences) if differences else "Their configs are identical.")


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
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Finished runs ranked by Mean(Task) over one task set; runs missing a task are left out."""
    with _user_errors():
        store = _read_store(db, as_json)
        if store is None:
            return
        runs = store.runs(method=method, backbone=backbone)
        from harness.tasks import file_versions, task_names

        tasks = split_items(tasks)
        names = task_names(tasks) if tasks else (list(runs[0]["tasks"]) if runs else [])
        given = file_versions(tasks or [])  # a task file given here is the version to rank on
    from leaderboard.queries import rank, reference_versions, version_label

    versions = reference_versions(runs, names, given)
    ranked = rank(runs, names, versions)
    left_out = [r for r in runs if all(t in r["scores"] for t in names) and r["run_id"] not in {x["run_id"] for x in ranked}]
    shown = limit if limit is not None else (0 if as_json else 20)
    if as_json:
        _print_json(ranked[:shown] if shown else ranked)
        return
    if not ranked:
        console.print("No finished runs match.")
        return
    from leaderboard.render import LEADERBOARD_FIXED, fit_columns, leaderboard_table

    table = leaderboard_table(ranked[:shown] if shown else ranked, names)
    hidden = fit_columns(table, console.width, LEADERBOARD_FIXED)
    console.print(table)
    if hidden:
        console.print(
            f"Mean over all {len(names)} tasks; not shown at this width: {', '.join(hidden)} "
            "(`harness compare RUNS` has a row per task, --json has every score).", highlight=False,
        )
    if left_out:
        ids = ", ".join(f"#{r['run_id']}" for r in left_out)
        shown_versions = ", ".join(f"{t}@{version_label(v)}" for t, v in versions.items())
        console.print(f"{len(left_out)} run(s) left out ({ids}): computed on other data than {shown_versions}.", highlight=False, soft_wrap=True)
    if shown and len(ranked) > shown:
        console.print(f"{shown} of {len(ranked)} ranked runs shown; --limit 0 shows all.")


@app.command()
def show(
    run_id: Annotated[int, typer.Argument(help="The run to show.")],
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Everything recorded about one run: scores, timings, config and environment."""
    with _user_errors():
        store = _read_store(db, as_json, [run_id])
        record = store.get_run(run_id)
        record["metrics"] = store.metrics(run_id)
        record["diagnostics"] = store.diagnostics(run_id)
    if as_json:
        _print_json([record])
        return
    from leaderboard.render import run_detail_tables

    for table in run_detail_tables(record):
        console.print(table)


@app.command()
def plot(
    run_ids: Annotated[list[int], typer.Argument(help="The runs to draw.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Image file: .png, .svg or .pdf.")] = Path("loss.png"),
    db: DbOption = DEFAULT_DB,
) -> None:
    """Draw the recorded training loss of runs, one panel per stage (needs the plot extra)."""
    from leaderboard.plots import check_output, draw_losses

    with _user_errors():
        check_output(out)
        store = _read_store(db, False, run_ids)
        records = store.runs(ids=run_ids, statuses=None)
        runs = [(f"#{r['run_id']} {r['method']}", store.metrics(r["run_id"])) for r in records]
        stages = draw_losses(runs, out)
    console.print(f"Drew the {', '.join(stages)} loss of run {', '.join(f'#{i}' for i in run_ids)} in {out}.", highlight=False)


@app.command()
def browse(
    db: DbOption = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8001,
) -> None:
    """Serve the leaderboard in a browser: tables, canned queries and a dashboard of charts
    (datasette; needs the browse extra). Runs keep recording while it is open."""
    from leaderboard import browse as browsing
    from leaderboard.database import locate

    with _user_errors():
        _announce(db)
        where = locate(db)
        if not where.is_sqlite:
            raise_usage(f"--db {where}: harness browse serves a SQLite file; a server's runs: `harness export --csv`, `harness compare`.")
        if not where.path.exists():
            raise_usage(f"--db {db}: no leaderboard there yet (`harness run` creates it).")
        _open_store(db, create=False).close()  # a harness database, upgraded to this schema
        browsing.require()
    console.print(f"Serving {db} at http://{host}:{port}/ (dashboard: /-/dashboards/{browsing.DASHBOARD}); Ctrl-C stops.", highlight=False)
    browsing.serve(where.path, host, port)


StatusOption = Annotated[
    Optional[list[str]],
    typer.Option("--status", help="Only runs with this status: running, finished, failed, interrupted (repeatable)."),
]


def _statuses(given: list[str] | None) -> list[str] | None:
    from harness.errors import unknown_name
    from leaderboard.store import STATUSES

    for status in given or []:
        if status not in STATUSES:
            raise unknown_name("--status", status, STATUSES)
    return list(given) if given else None


@app.command()
def runs(
    status: StatusOption = None,
    method: Annotated[Optional[str], typer.Option(help="Only this method.")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Only this backbone.")] = None,
    db: DbOption = DEFAULT_DB,
    limit: Annotated[int, typer.Option(min=0, max=ROW_LIMIT, help="Show this many latest runs; 0 = all.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The latest runs of every status (running, finished, failed, interrupted), filtered."""
    with _user_errors():
        statuses = _statuses(status)
        store = _read_store(db, as_json)
        if store is None:
            return
        records = store.runs(statuses=statuses, method=method, backbone=backbone, limit=limit or None)
    if as_json:
        _print_json(records)
        return
    from leaderboard.render import runs_table

    console.print(runs_table(records))


@app.command()
def export(
    run_ids: Annotated[Optional[list[int]], typer.Argument(help="Runs to export (default: every run the filters keep).", show_default=False)] = None,
    csv_file: Annotated[Optional[str], typer.Option("--csv", help="Write a CSV file (- for stdout).")] = None,
    json_file: Annotated[Optional[str], typer.Option("--json", help="Write a JSON file (- for stdout).")] = None,
    mteb_dir: Annotated[Optional[Path], typer.Option("--mteb", help="Write the runs' mteb TaskResults in mteb's ResultCache layout under this folder.")] = None,
    model_dir: Annotated[Optional[Path], typer.Option("--model", help="Write one run's encoder (merged model, peft adapter, slots) into this new folder.")] = None,
    status: StatusOption = None,
    method: Annotated[Optional[str], typer.Option(help="Only this method.")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Only this backbone.")] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Runs with their scores (mteb main score, 0-1) as CSV, one column per task, or as JSON; or
    the runs' whole mteb results in mteb's own folder layout (--mteb DIR)."""
    from leaderboard import exports

    with _user_errors():
        if sum(x is not None for x in (csv_file, json_file, mteb_dir, model_dir)) != 1:
            raise_usage("harness export writes one format: give --csv FILE, --json FILE (- for stdout), --mteb DIR or --model DIR.")
        if model_dir is not None:
            _export_model(run_ids, model_dir, db)
            return
        if mteb_dir is not None:
            _export_mteb(run_ids, mteb_dir, db)
            return
        statuses = _statuses(status)
        target, label = (csv_file, "--csv") if csv_file is not None else (json_file, "--json")
        if target != "-":
            from harness.paths import writable_file

            writable_file(target, label)  # before the leaderboard is read
        store = _read_store(db, json_file == "-", run_ids)
        if store is None:
            return
        if run_ids:
            records = store.runs(ids=run_ids, statuses=statuses)
        else:
            records = store.runs(statuses=statuses, method=method, backbone=backbone, newest_first=False)
        text = exports.as_csv(records) if csv_file is not None else exports.as_json(records)
        exports.write(text, target, label)
    if target != "-":
        err_console.print(f"Exported {len(records)} run(s) to {target}.", highlight=False)


def _export_mteb(run_ids: list[int] | None, folder: Path, db: str) -> None:
    from harness.mteb_export import export
    from harness.paths import writable_folder

    if not run_ids:
        raise_usage("harness export --mteb DIR needs the runs to export, e.g. `harness export 3 7 --mteb results/`.")
    folder = writable_folder(folder, "--mteb")
    written = export(_read_store(db, False, list(run_ids)), list(run_ids), folder)
    err_console.print(
        f"Wrote {len(written)} mteb result file(s) under {folder}; read them with "
        f"`mteb.ResultCache({str(folder)!r}).load_results(load_experiments=\"match_name\")`.", highlight=False, soft_wrap=True,
    )


def _export_model(run_ids: list[int] | None, folder: Path, db: str) -> None:
    from harness.model_export import export_model
    from harness.paths import writable_folder

    if not run_ids or len(run_ids) != 1:
        raise_usage("harness export --model DIR exports one run, e.g. `harness export 3 --model encoder/`.")
    folder = writable_folder(folder, "--model")
    record = _read_store(db, False, list(run_ids)).get_run(run_ids[0])
    written = export_model(record, folder, console)
    err_console.print(
        f"Wrote run #{run_ids[0]}'s encoder to {folder} ({', '.join(written)}); "
        f"`harness.model_export.load_encoder({str(folder)!r}).encode(texts)` encodes with it.", highlight=False,
    )


def _interactive() -> bool:
    return sys.stdin.isatty()


@app.command()
def delete(
    run_ids: Annotated[Optional[list[int]], typer.Argument(help="Runs to delete.")] = None,
    status: StatusOption = None,
    method: Annotated[Optional[str], typer.Option(help="With --status: only this method.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", metavar="", help="Do not ask for confirmation.")] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Delete runs you no longer want: their rows (scores, timings, steps) and their checkpoint
    folders. Asks first unless --yes; running runs are never deleted."""
    with _user_errors():
        from harness import run_folders

        statuses = _statuses(status)
        if not run_ids and not statuses:
            raise_usage("name the runs to delete (harness delete 3 7) or select them with --status.")
        store = _read_store(db, False, run_ids)
        if store is None:
            return
        chosen = store.runs(ids=run_ids or None, statuses=statuses, method=method)
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
            if not _interactive():
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


def _listing(
    rows: list[dict[str, Any]], as_json: bool, title: str, columns: dict[str, Callable[[dict], str]],
    widths: dict[str, int] | None = None,
) -> None:
    """Print ``rows`` as JSON or as a rich table with one column per ``columns`` entry (``widths``:
    the widest some may grow before they fold)."""
    if as_json:
        _print_json(rows)
        return
    from leaderboard.render import listing_table

    console.print(listing_table(title, list(columns), [[cell(row) for cell in columns.values()] for row in rows], widths or {}))


@app.command()
def methods(
    name: Annotated[Optional[str], typer.Argument(help="A method: show its options.", show_default=False)] = None,
    plugins: PluginsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Registered methods (built-in and plug-ins), one line each; `harness methods NAME` lists
    one method's options with their defaults and accepted values."""
    with _user_errors():
        import dataclasses

        from harness.registry import get_method, import_plugins, method_names
        from harness.runner import method_options

        import_plugins(plugins or [])
        rows = []
        for method in [name] if name is not None else method_names():
            cls = get_method(method)
            defaults = dataclasses.asdict(method_options(cls, {}, method))  # the default preset applied
            options = [{"name": n, "default": defaults[n], "help": h, "accepts": a} for n, _, h, a in cls.Config.describe()]
            rows.append({"name": method, "summary": cls.summary, "presets": sorted(cls.presets), "options": options})
    if as_json:
        _print_json(rows)
        return
    if name is None:
        _listing(rows, False, "Methods (`harness methods NAME` for one method's options)", {
            "Method": lambda r: r["name"],
            "Summary": lambda r: r["summary"] + (f" Presets: {', '.join(r['presets'])}." if r["presets"] else ""),
            "Options": lambda r: str(len(r["options"])),
        })
        return
    (row,) = rows
    console.print(f"[bold]{row['name']}[/]: {escape(row['summary'])}" + (f" Presets: {', '.join(row['presets'])}." if row["presets"] else ""), highlight=False)
    _listing(row["options"], False, "Options (--set method_args.NAME=VALUE)", {
        "Option": lambda o: o["name"],
        "Default": lambda o: repr(o["default"]),
        "What it does (values it accepts)": lambda o: o["help"] + (f" ({o['accepts']})" if o["accepts"] else ""),
    }, widths={"Default": 18})


@app.command()
def backbones(as_json: JsonOption = False) -> None:
    """Backbone aliases, where each comes from, and whether it is available here."""
    from harness.backbones import ALIASES, availability

    rows = []
    for spec in ALIASES.values():
        ok, how = availability(spec)
        rows.append({"alias": spec.name, "source": spec.source, "kind": spec.kind, "available": ok, "how": how, "note": spec.note})
    _listing(rows, as_json, "Backbones (any hub id or local folder works too)", {
        "Alias": lambda r: r["alias"],
        "Source": lambda r: r["source"],
        "Here": lambda r: "[green]yes[/]" if r["available"] else "[red]no[/]",
        "Note": lambda r: r["note"],
    })
    if as_json:
        return
    reasons: dict[str, list[str]] = {}
    for row in rows:  # why each is (un)available, said once for the aliases that share it
        reasons.setdefault(f"{'yes' if row['available'] else 'no'}: {row['how']}", []).append(row["alias"])
    for reason, aliases in reasons.items():
        console.print(f"{', '.join(aliases)}: {escape(reason)}", highlight=False)


@app.command("tasks")
def tasks_command(
    type_: Annotated[Optional[str], typer.Option("--type", help="Only mteb tasks of this type, e.g. Retrieval, STS, Classification.")] = None,
    search: Annotated[Optional[str], typer.Option("--search", help="Only mteb tasks whose name, type or a language (eng) contains this.")] = None,
    as_json: JsonOption = False,
) -> None:
    """What --tasks takes: presets, task files, and mteb's tasks with their type and languages."""
    with _user_errors():
        from harness.task_catalog import catalog, matching
        from harness.tasks import LOCAL_KINDS, PRESETS

        chosen = matching(type_, search)
    presets = [
        {"kind": "preset", "name": name, "description": text,
         "tasks": [s.name + (f" ({','.join(s.subsets)})" if s.subsets else "") for s in specs]}
        for name, (text, specs) in PRESETS.items()
    ]
    files = [{"kind": "file", "name": name, "description": text} for name, text in LOCAL_KINDS.items()]
    found = [{"kind": "mteb", "name": t.name, "type": t.type, "languages": list(t.languages)} for t in chosen]
    if as_json:
        _print_json([*presets, *files, *found] if type_ is None and search is None else found)
        return
    if type_ is None and search is None:
        _listing(presets, False, "Presets", {"Preset": lambda r: r["name"], "Tasks": lambda r: ", ".join(r["tasks"]), "About": lambda r: r["description"]})
        _listing(files, False, "Task files (--tasks PATH)", {"Kind": lambda r: r["name"], "Format": lambda r: r["description"]})
        counts = {kind: sum(t.type == kind for t in chosen) for kind in catalog().types}
        console.print(
            f"mteb has {len(chosen)} text tasks (names work with --tasks; most read their data from the hub): "
            + ", ".join(f"{kind} {n}" for kind, n in counts.items())
            + ". List them with --type TYPE or --search WORD.", highlight=False,
        )
        return

    def languages(row: dict) -> str:
        shown = row["languages"][:4]
        return ", ".join(shown) + (f" +{len(row['languages']) - 4}" if len(row["languages"]) > 4 else "")

    _listing(found, False, f"mteb tasks ({len(found)})", {"Task": lambda r: r["name"], "Type": lambda r: r["type"], "Languages": languages})


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # our own progress display replaces the libraries' tqdm bars (transformers' GGUF reader draws
    # a plain tqdm its logging switch does not reach); tqdm reads this when it is first imported
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        app(prog_name="harness")
    except SystemExit as done:
        if "torch.distributed" in sys.modules:  # never imported by light commands such as --help
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                from harness.distributed import exit_process

                exit_process(done.code)
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
