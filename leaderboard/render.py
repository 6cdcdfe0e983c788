"""Rich tables for runs, comparisons and rankings. Scores are shown x100, as MTEB reports them.

Every table stays readable at 80 columns (rich's width when piped): no cell is ever cut to "…"
(text folds onto more lines instead), the columns that say which run a row is (run, method,
backbone) are as wide as their values, and tables with a column per run name runs by number,
with a legend of their method and backbone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from leaderboard.efficiency import HEADERS, efficiency_cells
from leaderboard.intervals import Interval
from leaderboard.overlap import SEEN_NOTE, overlap_text, seen, seen_mark
from leaderboard.queries import Comparison, SeedGroup, flatten


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


IDENTITY_WIDTH = 24  # an identifying column is as wide as its longest value, up to this; then it folds
FREE_WIDTH = 18  # a path or a list (backbone, tasks, a config value) folds beyond this: rich sizes a
# column by its longest word, and a path is one word that would push the table past 80 columns


def _table(title: str, **options: Any) -> Table:
    """A table without vertical rules: seven columns of borders are a cell's worth at 80 columns."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, **options)


def fit_columns(table: Table, width: int, first_optional: int) -> list[str]:
    """Drop columns from the right, down to ``first_optional``, until ``table`` fits ``width``;
    returns the headers of those dropped (for a note saying where to see them)."""
    import io

    from rich.cells import cell_len
    from rich.console import Console

    def too_wide() -> bool:
        out = Console(width=width, file=io.StringIO(), color_system=None)
        out.print(table, crop=False)
        return max(map(cell_len, out.file.getvalue().splitlines()), default=0) > width

    dropped: list[str] = []
    while len(table.columns) > first_optional and too_wide():
        dropped.insert(0, str(table.columns.pop().header))  # a column holds its own cells
    return dropped


def _column(table: Table, name: str, **options: Any) -> None:
    """A column whose text folds where it must, never cut to an ellipsis."""
    table.add_column(name, overflow="fold", **options)


def _identity(table: Table, name: str, values: Sequence[str], **options: Any) -> None:
    """A column that says which run a row is: wide enough for its values (up to IDENTITY_WIDTH)."""
    widest = max((len(v) for v in [name, *values]), default=0)
    _column(table, name, min_width=min(widest, IDENTITY_WIDTH), **options)


def runs_legend(runs: Sequence[dict[str, Any]]) -> Table:
    """Which method and backbone each run number of a wider table stands for."""
    table = _table("Runs")
    _identity(table, "Run", [f"#{r['run_id']}" for r in runs], justify="right")
    _identity(table, "Method", [r["method"] for r in runs])
    _column(table, "Backbone", max_width=48)
    _column(table, "Seed", justify="right")
    for run in runs:
        table.add_row(f"#{run['run_id']}", run["method"], run["backbone"], str(run["seed"]))
    return table


def _cell(value: float | None, reference: float | None, is_best: bool, first: bool) -> str:
    text = _pct(value)
    if value is not None and reference is not None and not first:
        text += f" ({100 * (value - reference):+.2f})"
    return f"[bold green]{text} *[/]" if is_best and value is not None else text  # the star: for piped output, copied tables


def _bounds(found: Interval | str | None) -> str:
    """A difference's interval under its cell: ``[low, high]``, ``!`` where it excludes 0."""
    if found is None:
        return ""
    if isinstance(found, str):
        return escape("\n[n/a]")
    return escape(f"\n[{100 * found.low:+.2f}, {100 * found.high:+.2f}]") + (" !" if found.separable else "")


def _mean_row(
    table: Table, label: str, means: Sequence[float | None], found: Sequence[Interval | str | None] = (), **options: Any,
) -> None:
    """A row of means, one per run: the difference to the first run's (with its interval where
    ``found``), the best starred where there are several."""
    best = max((m for m in means if m is not None), default=None) if len(means) > 1 else None
    bounds = [_bounds(found[i]) if i < len(found) else "" for i in range(len(means))]
    table.add_row(label, *[_cell(m, means[0], m == best, i == 0) + bounds[i] for i, m in enumerate(means)], **options)


def _missing_intervals(comparison: Comparison) -> list[str]:
    """One line per reason an interval is missing, naming the runs and tasks."""
    reasons: dict[str, list[str]] = {}
    for run, found in zip(comparison.runs[1:], comparison.intervals[1:]):
        for task, value in found.items():
            if isinstance(value, str):
                reasons.setdefault(value, []).append(f"#{run['run_id']} {task}")
    return [f"n/a: {reason} ({', '.join(where)})" for reason, where in reasons.items()]


def comparison_tables(comparison: Comparison) -> list[Table]:
    """The runs' legend, then tasks as rows and runs as columns: the difference to the first run,
    the best cell starred; Mean(Task), then a mean per task type where the shared tasks have more
    than one."""
    first = f"#{comparison.runs[0]['run_id']}" if comparison.runs else "the first run"
    several = len(comparison.runs) > 1  # one run: nothing to be best of or against
    table = _table(escape(f"Scores x100 side by side; (+/-) against {first} [its 95% interval; ! excludes 0]; * best" if several else "Scores x100"))
    label = f"Mean(Task) over {len(comparison.shared_tasks)}"
    type_labels = {kind: f"Mean {kind} over {len(tasks)}" for kind, tasks in comparison.type_tasks.items()}
    _identity(table, "Task", [*comparison.tasks, label, *type_labels.values()], style="bold")
    for run in comparison.runs:
        _column(table, f"#{run['run_id']}", justify="right")
    for task in comparison.tasks:
        best = comparison.best(task) if several else None
        reference = comparison.score(0, task)
        table.add_row(task, *[
            _cell(comparison.score(i, task), reference, comparison.score(i, task) == best, i == 0) + seen_mark(run, task)
            + (_bounds(comparison.intervals[i].get(task)) if i and comparison.intervals else "")
            for i, run in enumerate(comparison.runs)
        ])
    _mean_row(table, label, comparison.means, comparison.mean_intervals, style="bold", end_section=True)
    for kind, type_label in type_labels.items():
        _mean_row(table, type_label, comparison.type_means[kind])
    captions = [*comparison.notes, *_missing_intervals(comparison)]
    if any(seen(run, task) for run in comparison.runs for task in comparison.tasks):
        captions.append(SEEN_NOTE)
    if several:
        resamples = next((v.resamples for found in comparison.intervals for v in found.values() if not isinstance(v, str)), None)
        if resamples:
            captions.insert(0, f"[low, high]: paired bootstrap 95% interval of the difference, {resamples} resamples of the items")
    if captions:
        table.caption = escape("\n".join(captions))
        table.caption_justify = "left"
    return [runs_legend(comparison.runs), table]


LEADERBOARD_FIXED = 6  # Rank, Run, Method, Backbone, Seed, Mean: then a column per task type, per task


def _rank_text(run: dict[str, Any], first: bool) -> str:
    """A rank, ``=`` before it where the run is not separable from the one above (a shared rank),
    ``?`` after it where that is unknown (no per-item results)."""
    separable = True if first else run.get("separable_from_above", True)
    return f"={run['rank']}" if separable is False else f"{run['rank']}" + ("?" if separable is None else "")


def leaderboard_table(ranked: Sequence[dict[str, Any]], tasks: Sequence[str]) -> Table:
    """Ranked runs: their identity, Mean(Task), the mean per task type (where the tasks have more
    than one) and each task's score (x100)."""
    types = list(ranked[0].get("type_means", {})) if ranked else []
    table = _table(f"Leaderboard over {len(tasks)} task(s), scores x100")
    _column(table, "Rank", justify="right")
    _identity(table, "Run", [f"#{r['run_id']}" for r in ranked], justify="right")
    _identity(table, "Method", [r["method"] for r in ranked])
    _column(table, "Backbone", max_width=FREE_WIDTH)
    _column(table, "Seed", justify="right")
    _column(table, "Mean", justify="right", style="bold")
    for kind in types:
        _column(table, f"Mean {kind}", justify="right")
    for task in tasks:
        _column(table, task, justify="right", max_width=12)
    for run in ranked:
        table.add_row(
            _rank_text(run, run is ranked[0]),
            f"#{run['run_id']}",
            run["method"],
            run["backbone"],
            str(run["seed"]),
            _pct(run["mean"]),
            *[_pct(run["type_means"][kind]) for kind in types],
            *[_pct(run["scores"].get(t)) + seen_mark(run, t) for t in tasks],
        )
    marks = {run.get("separable_from_above", True) for run in ranked[1:]}
    notes = [
        *(["=N: not separable from the run above (their Mean's paired bootstrap 95% interval holds 0): its rank"] if False in marks else []),
        *(["N?: whether it is separable from the run above is unknown (no per-item results)"] if None in marks else []),
        *([SEEN_NOTE] if any(seen(run, t) for run in ranked for t in tasks) else []),
    ]
    if notes:
        table.caption = escape("\n".join(notes))
        table.caption_justify = "left"
    return table


def efficiency_table(ranked: Sequence[dict[str, Any]], tasks: Sequence[str]) -> Table:
    """``leaderboard --efficiency``: what evaluating the ranked tasks cost each ranked run (its
    ``efficiency`` numbers), in rank order, in a table of its own that keeps to 80 columns."""
    table = _table(f"Evaluation cost over the {len(tasks)} ranked task(s)")
    _identity(table, "Run", [f"#{r['run_id']}" for r in ranked], justify="right")
    for header in HEADERS:
        _column(table, header, justify="right")
    for run in ranked:
        table.add_row(f"#{run['run_id']}", *efficiency_cells(run["efficiency"]))
    return table


def runs_table(runs: Sequence[dict[str, Any]], title: str = "Runs") -> Table:
    table = _table(title)
    _identity(table, "Run", [f"#{r['run_id']}" for r in runs])
    _column(table, "Status")
    _identity(table, "Method", [r["method"] for r in runs])
    _column(table, "Backbone", max_width=FREE_WIDTH)
    _column(table, "Tasks", max_width=FREE_WIDTH)
    _column(table, "Started")
    for run in runs:
        status = run["status"]
        colour = {"finished": "green", "failed": "red"}.get(status, "yellow")
        table.add_row(
            f"#{run['run_id']}",
            f"[{colour}]{status}[/]",
            run["method"],
            run["backbone"],
            run["task_spec"].replace(",", ", "),
            _when(run["started_at"]),
        )
    return table


def run_detail_tables(run: dict[str, Any]) -> list[Table]:
    """``harness show``: the scores, the timings and the resolved config of one run."""
    scores = Table(title=f"Run #{run['run_id']}: {run['method']} on {run['backbone']} ({run['status']})")
    dims = any(item.get("dim") for item in run["score_details"])
    scores.add_column("Task", style="bold")
    if dims:  # harness run --dims: a score per task and dim
        scores.add_column("Dims", justify="right")
    scores.add_column("Task type")
    scores.add_column("Main metric")
    scores.add_column("Score x100", justify="right")
    scores.add_column("Task version")
    measured = any(item.get("contamination") is not None for item in run["score_details"])
    if measured:  # a trained run: how many of each task's texts it trained on
        scores.add_column("Seen in training")
    order = {task: i for i, task in enumerate(dict.fromkeys(item["task"] for item in run["score_details"]))}
    for item in sorted(run["score_details"], key=lambda item: (order[item["task"]], item.get("dim") or 0)):
        whole = f"all {run.get('embed_dim') or ''}".strip()
        scores.add_row(
            item["task"], *([str(item["dim"]) if item.get("dim") else whole] if dims else []), item.get("task_type") or "unknown",
            item["main_metric"], _pct(item["main_score"]), item.get("task_version") or "unknown",
            *([overlap_text(item.get("contamination"))] if measured else []),
        )
    timings = Table(title="Timings")
    for name in ("Phase", "Seconds", "Items", "Cached", "Tokens", "Tokens/s", "MFU", "Peak memory (MiB)"):
        timings.add_column(name, justify="right" if name != "Phase" else "left")
    for item in run["timings"]:
        peak = item["peak_memory_bytes"]
        details = item.get("details") or {}
        rate, mfu = details.get("tokens_per_s"), details.get("mfu")
        timings.add_row(
            item["phase"],
            f"{item['seconds']:.2f}",
            "-" if item["items"] is None else str(item["items"]),
            str(details["cache_hits"]) if "cache_hits" in details else "-",
            "-" if item["tokens"] is None else str(item["tokens"]),
            "-" if rate is None else f"{rate:.0f}",
            "-" if mfu is None else f"{100 * mfu:.1f}%",
            "-" if peak is None else f"{peak / 2**20:.0f}",
        )
    training = Table(title="Training (per stage)")
    for name in ("Stage", "Steps", "First loss", "Last loss", "Last lr", "Seconds"):
        training.add_column(name, justify="left" if name == "Stage" else "right")
    stages: dict[str, list[dict[str, Any]]] = {}
    for row in run.get("metrics", []):
        stages.setdefault(row["stage"], []).append(row)
    for stage, rows in stages.items():
        first, last = rows[0], rows[-1]
        training.add_row(stage, str(last["step"]), f"{first['loss']:.4f}", f"{last['loss']:.4f}", f"{last['lr']:.2e}", f"{last['seconds']:.1f}")
    diagnostics = Table(title="Stage diagnostics (measured on held-out data when the stage ended)")
    for name in ("Stage", "Name", "Value"):
        diagnostics.add_column(name, justify="right" if name == "Value" else "left")
    for row in run.get("diagnostics", []):
        diagnostics.add_row(row["stage"], row["name"], f"{row['value']:.4f}")
    config = Table(title="Resolved config", show_header=False)
    config.add_column("Key", style="bold")
    config.add_column("Value")
    for key, value in flatten(run["config"]):
        config.add_row(key, repr(value))
    for key in ("n_parameters", "trainable_parameters", "embed_dim", "config_hash", "uuid", "output_dir", "git_sha", "git_dirty", "host", "error"):
        config.add_row(key, str(run.get(key)))
    environment = Table(title="Environment", show_header=False)
    environment.add_column("Key", style="bold")
    environment.add_column("Value")
    for section in ("versions", "hardware"):
        for key, value in flatten(run.get(section) or {}):
            environment.add_row(f"{section}.{key}", str(value))
    extra = [*([training] if stages else []), *([diagnostics] if run.get("diagnostics") else []), *dev_score_tables(run)]
    return [scores, timings, *extra, config, environment]


def best_dev_step(rows: Sequence[dict[str, Any]]) -> tuple[str, int] | None:
    """The (stage, step) whose dev tasks' mean main score is highest, the earliest of equals (as
    ``method_args.keep_best`` chooses); None without dev scores."""
    means: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        means.setdefault((row["stage"], row["step"]), []).append(row["score"])
    best = None
    for key, values in means.items():  # in the order they were evaluated
        if best is None or sum(values) / len(values) > best[1]:
            best = (key, sum(values) / len(values))
    return None if best is None else best[0]


def dev_score_tables(run: dict[str, Any]) -> list[Table]:
    """``harness show``: a run's dev scores, one table per stage, a row per step (x100); the best
    step is starred, and with ``keep_best`` the caption says which encoder the run kept."""
    rows = run.get("dev_scores") or []
    kept = next((t["details"] for t in run.get("timings", []) if t["phase"] == "keep-best" and t.get("details")), None)
    best = (kept["stage"], kept["step"]) if kept else best_dev_step(rows)
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    tables = []
    for stage in dict.fromkeys(row["stage"] for row in rows):
        steps: dict[int, dict[str, float]] = {}
        for row in rows:
            if row["stage"] == stage:
                steps.setdefault(row["step"], {})[row["task"]] = row["score"]
        caption = f"kept: {kept['stage']} step {kept['step']} (mean dev score {_pct(kept['dev_score'])})" if kept else None
        title = f"Dev scores (stage {stage}), x100"
        table = Table(title=title, caption=caption, min_width=len(title) + 4)
        for name in ("Step", *tasks, *(["Mean"] if len(tasks) > 1 else []), "Best"):
            table.add_column(name, justify="left" if name == "Step" else "right")
        for step, scores in steps.items():
            mean = [_pct(sum(scores.values()) / len(scores))] if len(tasks) > 1 else []
            table.add_row(str(step), *(_pct(scores.get(task)) for task in tasks), *mean, "*" if best == (stage, step) else "")
        tables.append(table)
    return tables


def seed_groups_table(groups: Sequence[SeedGroup]) -> Table:
    """Tasks as rows, one column per config: mean +- std over its seeds (x100), n runs."""
    table = _table(escape("Configs over seeds (score x100: mean +- sample std, n runs, [95% t interval of the mean])"))
    _column(table, "Task", style="bold")
    for group in groups:
        _column(table, f"{group.label}\nruns {', '.join(f'#{i}' for i in group.run_ids)}", justify="right")
    tasks = list(dict.fromkeys(task for group in groups for task in group.scores))
    for task in tasks:
        cells = []
        for group in groups:
            if task in group.scores:
                mean, std, n = group.scores[task]
                spread = f" +- {100 * std:.2f}" if n > 1 else ""  # one run has no spread to show
                span = group.intervals.get(task)
                bounds = escape(f"\n[{100 * span[0]:.2f}, {100 * span[1]:.2f}]") if span else ""
                cells.append(f"{100 * mean:.2f}{spread} (n={n}){bounds}")
            else:
                cells.append("-")
        table.add_row(task, *cells)
    return table


def config_diff_table(runs: Sequence[dict[str, Any]], differences: Sequence[tuple[str, list[Any]]]) -> Table:
    """Only the config keys whose values differ between ``runs``, one column per run, grouped by
    option (``method_args``: a heading, then its keys); ``-``: the run has no such key (another
    method's option)."""
    table = _table("Config keys that differ (-: not an option of that run)")
    keys = [key.partition(".")[2] or key for key, _ in differences]
    _identity(table, "Key", [f"  {k}" for k in keys], style="bold", max_width=IDENTITY_WIDTH + 8)
    for run in runs:
        _column(table, f"#{run['run_id']}", max_width=FREE_WIDTH)
    group = None
    for key, values in sorted(differences, key=lambda item: ("." in item[0], item[0])):
        head, _, rest = key.partition(".")
        if rest and head != group:
            table.add_row(f"{head}:", *[""] * len(runs), style="italic", end_section=False)
            group = head
        table.add_row(f"  {rest}" if rest else key, *["-" if v is None else repr(v) for v in values])
    return table


def listing_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], widths: dict[str, int]) -> Table:
    """A plain listing (methods, backbones, tasks): its first column names the row and is never
    folded below its longest value (up to IDENTITY_WIDTH); the others fold, beyond ``widths``
    where it names them."""
    table = _table(title)
    _identity(table, headers[0], [row[0] for row in rows])
    for header in headers[1:]:
        _column(table, header, max_width=widths.get(header))
    for row in rows:
        table.add_row(*row)
    return table
