"""`harness run` and `harness eval`: train and evaluate, and record what was computed."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.app import DEFAULT_DB, DbOption, PluginsOption, app, console, err_console, raise_usage, split_items
from harness.cli.database import announce, check_db, db_label, open_leaderboard, read_store
from harness.cli.failures import user_errors
from harness.cli.run_options import (
    DEFAULT_LIMIT_GB,
    BackboneOption,
    BaselineOption,
    CacheLimitOption,
    ConfigOption,
    DeviceOption,
    DevTasksOption,
    DimsOption,
    EvalBatchSizeOption,
    InstructionsOption,
    LikeOption,
    LimitOption,
    MethodOption,
    NoCacheOption,
    OutputDirOption,
    ReportToOption,
    ResumeOption,
    SeedOption,
    SeedsOption,
    SetOption,
    TasksOption,
    TrainDataOption,
)


@app.command()
def run(
    method: MethodOption = None,
    backbone: BackboneOption = None,
    tasks: TasksOption = None,
    dev_tasks: DevTasksOption = None,
    train_data: TrainDataOption = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    eval_batch_size: EvalBatchSizeOption = None,
    limit: LimitOption = None,
    instructions: InstructionsOption = None,
    dims: DimsOption = None,
    like: LikeOption = None,
    seeds: SeedsOption = None,
    resume: ResumeOption = None,
    output_dir: OutputDirOption = Path("harness-runs"),
    report_to: ReportToOption = None,
    no_cache: NoCacheOption = False,
    cache_limit_gb: CacheLimitOption = DEFAULT_LIMIT_GB,
    baseline: BaselineOption = True,
    db: DbOption = DEFAULT_DB,
    plugins: PluginsOption = None,
) -> None:
    """Train (if the method has stages) and evaluate one method on one backbone; record the run,
    then its method's baseline beside it (a run of its own, from the embedding cache when it can).

    Examples:

    ```
    harness run                                   # the offline default
    harness run --method echo --tasks stsb-dev.tsv
    harness run --method infonce --train-data triplets.jsonl --dims 64,128
    harness run --like 3 --seeds 1,2    # run 3's config again, two seeds
    ```

    Multi-process: `torchrun --nproc-per-node N -m harness run ...` or
    `accelerate launch -m harness run ...`; only rank 0 writes.
    """
    with user_errors(db):
        from harness import ranks
        from harness.config import load_run_config
        from harness.evaluation.embedding_cache import CacheSettings
        from harness.registry import import_plugins
        from harness.runs.execute import RunOptions, execute
        from harness.runs.plan import (
            check_output_root,
            recorded_config,
            refuse_changed_tasks,
            refuse_changed_training_data,
        )
        from harness.runs.repeat import like_config, plans_per_seed
        from harness.runs.trackers import check as check_trackers

        import_plugins(plugins or [])
        trackers = check_trackers(report_to or [])
        is_main = ranks.from_environment().is_main
        record = None
        if is_main and resume is None:
            announce(db, writes=True)
        options = {
            "method": method,
            "backbone": backbone,
            "tasks": split_items(tasks),
            "dev_tasks": split_items(dev_tasks),
            "seed": seed,
            "train_data": train_data,
            "device": device,
            "eval_batch_size": eval_batch_size,
            "limit": limit,
            "instructions": instructions,
            "dims": parse_dims(dims),
        }
        if resume is not None:
            if any(v not in (None, []) for v in [*options.values(), config, set_, like, seeds]):
                raise_usage("--resume takes the run's recorded config; give no other run options.")
            record = read_store(db, False, [resume], upgrade=True, reap=True).get_run(resume)
            if record["status"] == "finished":
                raise_usage(f"run {resume} is already finished; nothing to resume.")
            run_config = recorded_config(record)
        elif like is not None:
            from harness.runs.repeat import varied_keys

            repeated = read_store(db, False, [like], upgrade=True, reap=True).get_run(like)
            run_config = like_config(repeated, options, config, set_ or [])
            varied = varied_keys(options, set_ or [])
        else:
            repeated = None
            run_config = load_run_config(config, options, set_ or [])
        plans = plans_per_seed(run_config, seeds, given_seed=seed)  # every plan checked before the first run starts
        for plan in plans:
            if record is not None:
                refuse_changed_tasks(plan, record)
                refuse_changed_training_data(plan, record)
            if resume is None and like is not None:
                from harness.runs.repeat import refuse_changes

                refuse_changes(plan, repeated, varied)
        twin = None
        if baseline and resume is None and like is None:
            from harness.runs.baseline import baseline_plan

            twin = baseline_plan(plans[0].config, plans[0].method)
        if is_main and (trackers or plans[0].trains):
            check_output_root(output_dir)
        if is_main:
            check_db(db)
        opener = functools.cache(lambda: open_leaderboard(db, create=True)) if is_main else None
        finished: list[tuple[int, list[str]]] = []
        notes = plans[-1].method.closing_notes()
        for index in range(len(plans)):
            run_options = RunOptions(
                output_dir, resume=record, report_to=trackers, cache=CacheSettings(not no_cache, cache_limit_gb)
            )
            try:
                run_id = execute(plans[index], opener, console, run_options)
            except BaseException:
                left = [str(plan.config.seed) for plan in plans[index + 1 :]]
                if left and is_main:
                    err_console.print(
                        f"Seeds {','.join(left)} were not run: `harness run ... --seeds {','.join(left)}` runs them.",
                        highlight=False,
                    )
                raise
            plans[index] = None  # type: ignore[call-overload]  # its model and method go before the next seed's
            finished.append((run_id, run_options.warnings))
        baseline_id = (
            _run_baseline(twin, opener, output_dir, CacheSettings(not no_cache, cache_limit_gb))
            if twin is not None
            else None
        )
        if opener is None:
            return
    for run_id, warnings in finished:
        _report_finished(
            opener(), run_id, db, table=baseline_id is None
        )  # the store the run wrote to (opened by execute)
        if like is not None:
            _report_repeat(opener(), like, run_id)
        for warning in warnings:
            err_console.print(f"Repeated from above: {warning}", highlight=False, soft_wrap=True)
    if baseline_id is not None:
        _report_against_baseline(opener(), baseline_id, [run_id for run_id, _ in finished], db)
    for note in notes:
        err_console.print(note, highlight=False, soft_wrap=True)


def _report_repeat(store: Any, original: int, run_id: int) -> None:
    """Whether the repeat's scores agree with the run it repeats, task by task, within their
    paired 95% intervals."""
    from harness.runs.repeat import agreement

    try:
        console.print(agreement(store, original, run_id), highlight=False, soft_wrap=True)
    except Exception as exc:  # the runs are recorded; a failed read is a warning
        err_console.print(
            f"Warning: could not compare run #{run_id} with run #{original}: {type(exc).__name__}: {exc}",
            highlight=False,
        )


def _run_baseline(plan: Any, opener: Any, output_dir: Path, cache: Any) -> int | None:
    """The baseline's run id, or None (with a warning) where it failed: the method's runs are
    recorded by then, and their report and exit status stand (Ctrl-C still stops the command)."""
    from harness.runs.execute import RunOptions, execute

    console.print(f"Baseline: {plan.config.method}, the same backbone and tasks, nothing trained.", highlight=False)
    try:
        return execute(plan, opener, console, RunOptions(output_dir, cache=cache))
    except Exception as exc:
        err_console.print(
            f"Warning: the baseline ({plan.config.method}) failed: {type(exc).__name__}: {exc}. The runs above are "
            "recorded; `harness run --method ...` runs the baseline alone.",
            highlight=False,
            soft_wrap=True,
        )
        return None


def _report_against_baseline(store: Any, baseline_id: int, run_ids: list[int], db: str) -> None:
    """The closing table: the runs against the baseline evaluated beside them, with intervals
    (each run's own table where they cannot be read back together)."""
    from harness.cli.comparing import print_against

    try:
        print_against(store, baseline_id, run_ids)
    except Exception as exc:  # the runs are recorded; a failed read is a warning
        err_console.print(
            f"Warning: could not compare with the baseline, run #{baseline_id}: {type(exc).__name__}: {exc}",
            highlight=False,
        )
        for run_id in run_ids:
            _report_finished(store, run_id, db)
        return
    console.print(
        f"Baseline recorded as run #{baseline_id}; `harness compare {' '.join(map(str, run_ids))} --baseline {baseline_id}` shows this table again.",
        highlight=False,
        soft_wrap=True,
    )


def _report_finished(store: Any, run_id: int, db: str, *, table: bool = True) -> None:
    """The finished run's table (unless a comparison with its baseline follows) and where its
    files went. The run is recorded by now, so a failure to read it back is a warning, never a
    traceback or a failed exit."""
    try:
        from leaderboard.queries import compare as compare_runs
        from leaderboard.render import comparison_tables

        record = store.get_run(run_id)
        for shown in comparison_tables(compare_runs([record])) if table else []:
            console.print(shown)
    except Exception as exc:  # e.g. sqlite3.OperationalError on a flaky disk
        err_console.print(
            f"Warning: run #{run_id} finished and is recorded in {db_label(db)}, but reading it back failed "
            f"({type(exc).__name__}: {exc}); `harness show {run_id}` shows it later.",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(f"Recorded as run #{run_id} in {db_label(db)}. `harness show {run_id}` for details.")
    if record.get("output_dir"):
        from harness.runs.folders import human_size, size_bytes

        folder = Path(record["output_dir"])
        size = human_size(size_bytes(folder)) if folder.is_dir() else "gone"
        console.print(
            f"Checkpoints: {folder} ({size}); `harness delete {run_id}` removes the run and them.",
            highlight=False,
            soft_wrap=True,
        )


@app.command("eval")
def eval_command(
    run_id: Annotated[int, typer.Argument(help="A finished run whose encoder to evaluate again.")],
    tasks: Annotated[list[str], typer.Option("--tasks", help="Presets, mteb task names or task files (repeatable).")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", metavar="", help="Evaluate tasks the run has a score for already, and replace those scores."
        ),
    ] = False,
    no_cache: NoCacheOption = False,
    cache_limit_gb: CacheLimitOption = DEFAULT_LIMIT_GB,
    db: DbOption = DEFAULT_DB,
    plugins: PluginsOption = None,
) -> None:
    """Evaluate a recorded run's encoder on more tasks, without retraining; scores join its row.
    A task the run has a score for is refused unless --force (another file with the same name
    is other data: give it another name).

    Examples:

    ```
    harness eval 3 --tasks sick-trial.tsv
    harness eval 3 --tasks stsb-dev.tsv --force   # replace its score
    ```

    Multi-process: `torchrun --nproc-per-node N -m harness eval ...`; only rank 0 writes.
    """
    with user_errors():
        from harness import ranks
        from harness.evaluation.embedding_cache import CacheSettings
        from harness.registry import import_plugins
        from harness.runs.plan import plan_run, recorded_config, without_dev_tasks
        from harness.runs.reevaluate import reevaluate

        import_plugins(plugins or [])
        store = read_store(db, False, [run_id], upgrade=True, reap=True)
        record = store.get_run(run_id)
        if record["status"] != "finished":
            raise_usage(f"run {run_id} is {record['status']}; only finished runs can be evaluated again.")
        run_config = recorded_config(record)
        run_config.tasks = split_items(tasks)
        reevaluate(
            plan_run(without_dev_tasks(run_config)),
            store,
            record,
            console,
            force=force,
            cache=CacheSettings(not no_cache, cache_limit_gb),
        )
        if not ranks.world().is_main:
            return
    console.print(f"Scores added to run #{run_id}. `harness show {run_id}` for all of them.")


def parse_dims(text: str | None) -> list[int] | None:
    """``--dims 64,128,256`` as a list of whole numbers (their range is the config's to check)."""
    from harness.options import whole_numbers

    return None if text is None else whole_numbers(text, "--dims", "64,128,256")
