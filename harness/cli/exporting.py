"""Getting runs out: `harness export` (CSV, JSON, mteb results, the encoder as files) and `harness plot`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.app import (
    DEFAULT_DB,
    DbOption,
    PluginsOption,
    StatusOption,
    app,
    chosen_statuses,
    console,
    err_console,
    raise_usage,
)
from harness.cli.database import read_store
from harness.cli.failures import user_errors


@app.command()
def plot(
    run_ids: Annotated[list[int], typer.Argument(help="The runs to draw.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Image file: .png, .svg or .pdf.")] = Path("loss.png"),
    scores: Annotated[
        bool,
        typer.Option(
            "--scores",
            metavar="",
            help="Also draw the dev scores recorded during training (--dev-tasks), a row of panels below the losses.",
        ),
    ] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Draw the recorded training loss of runs, one panel per stage (needs the plot extra).

    Examples:

    ```
    harness plot 3 4 --out losses.svg
    harness plot 3 --scores --out dev-curves.svg
    ```
    """
    from leaderboard.plots import check_output, draw_losses

    with user_errors():
        check_output(out)
        store = read_store(db, False, run_ids)
        records = store.runs(ids=run_ids, statuses=None)
        labels = {r["run_id"]: f"#{r['run_id']} {r['method']}" for r in records}
        runs = [(labels[i], store.metrics(i)) for i in labels]
        dev = [(labels[i], store.dev_scores(i)) for i in labels] if scores else None
        if dev is not None and not any(rows for _, rows in dev):
            raise_usage(
                f"--scores: no dev scores are recorded for run {', '.join(f'#{i}' for i in run_ids)}; a run records them "
                "with --dev-tasks and method_args.eval_every=N."
            )
        stages = draw_losses(runs, out, dev)
    what = "loss and dev scores" if scores else "loss"
    console.print(
        f"Drew the {', '.join(stages)} {what} of run {', '.join(f'#{i}' for i in run_ids)} in {out}.", highlight=False
    )


@app.command()
def export(
    run_ids: Annotated[
        Optional[list[int]],
        typer.Argument(help="Runs to export (default: every run the filters keep).", show_default=False),
    ] = None,
    csv_file: Annotated[Optional[str], typer.Option("--csv", help="Write a CSV file (- for stdout).")] = None,
    json_file: Annotated[Optional[str], typer.Option("--json", help="Write a JSON file (- for stdout).")] = None,
    mteb_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--mteb", help="Write the runs' mteb TaskResults in mteb's ResultCache layout under this folder."
        ),
    ] = None,
    model_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--model", help="Write one run's encoder (merged model, peft adapter, slots) into this new folder."
        ),
    ] = None,
    status: StatusOption = None,
    method: Annotated[Optional[str], typer.Option(help="Only this method.")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Only this backbone.")] = None,
    db: DbOption = DEFAULT_DB,
    plugins: PluginsOption = None,
) -> None:
    """Runs with their scores (mteb main score, 0-1) as CSV, one column per task, or as JSON; or
    the runs' whole mteb results in mteb's own folder layout (--mteb DIR); or one run's encoder as
    model files (--model DIR: a plug-in method's run needs its module, --plugins or installed).

    Examples:

    ```
    harness export --csv runs.csv
    harness export 3 --mteb results/
    harness export 3 --model encoder/
    harness export 3 --mteb results/ --model encoder/   # a submission
    ```
    """
    from leaderboard import exports

    with user_errors():
        if plugins:
            from harness.registry import import_plugins

            import_plugins(plugins)
        formats = sum(x is not None for x in (csv_file, json_file, mteb_dir, model_dir))
        if formats != 1 and not (formats == 2 and mteb_dir is not None and model_dir is not None):
            raise_usage(
                "harness export writes one format: give --csv FILE, --json FILE (- for stdout), --mteb DIR or --model DIR "
                "(or --mteb DIR --model DIR for one run: a submission with its encoder and model_meta.py)."
            )
        if model_dir is not None:
            if mteb_dir is not None:  # checked before the encoder is written
                from harness.export.mteb import check_exportable
                from harness.paths import writable_folder

                writable_folder(mteb_dir, "--mteb")
                check_exportable(read_store(db, False, list(run_ids or [])), list(run_ids or [])[:1])
            _export_model(run_ids, model_dir, db, with_meta=mteb_dir is not None)
        if mteb_dir is not None:
            _export_mteb(run_ids, mteb_dir, db)
        if model_dir is not None or mteb_dir is not None:
            return
        statuses = chosen_statuses(status)
        target, label = (csv_file, "--csv") if csv_file is not None else (json_file, "--json")
        if target != "-":
            from harness.paths import writable_file

            writable_file(target, label)  # before the leaderboard is read
        store = read_store(db, json_file == "-", run_ids)
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
    from harness.export.mteb import export
    from harness.paths import writable_folder

    if not run_ids:
        raise_usage("harness export --mteb DIR needs the runs to export, e.g. `harness export 3 7 --mteb results/`.")
    folder = writable_folder(folder, "--mteb")
    written = export(read_store(db, False, list(run_ids)), list(run_ids), folder)
    err_console.print(
        f"Wrote {len(written)} mteb result file(s) under {folder}; read them with "
        f'`mteb.ResultCache({str(folder)!r}).load_results(load_experiments="match_name")`.',
        highlight=False,
        soft_wrap=True,
    )


def _export_model(run_ids: list[int] | None, folder: Path, db: str, *, with_meta: bool = False) -> None:
    from harness.export.model import export_model
    from harness.paths import writable_folder

    if not run_ids or len(run_ids) != 1:
        raise_usage("harness export --model DIR exports one run, e.g. `harness export 3 --model encoder/`.")
    folder = writable_folder(folder, "--model")
    record = read_store(db, False, list(run_ids)).get_run(run_ids[0])
    if with_meta:
        from harness.export.mteb import model_meta_source

        meta = model_meta_source(record)  # before anything is written: a record mteb cannot describe is refused
    written = export_model(record, folder, console)
    if with_meta:
        (folder / "model_meta.py").write_text(meta, encoding="utf-8")
        written.append("model_meta.py (mteb's ModelMeta, its loader reading this folder)")
    err_console.print(
        f"Wrote run #{run_ids[0]}'s encoder to {folder} ({', '.join(written)}); "
        f"`harness.export.model.load_encoder({str(folder)!r}).encode(texts)` encodes with it.",
        highlight=False,
    )
