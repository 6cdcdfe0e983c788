"""Rich tables for runs, comparisons and rankings. Scores are shown x100, as MTEB reports them.

Every table stays readable at 80 columns (rich's width when piped): no cell is ever cut to "…"
(text folds onto more lines instead), the columns that say which run a row is (run, method,
backbone) are as wide as their values, and tables with a column per run name runs by number,
with a legend of their method and backbone."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leaderboard.efficiency import HEADERS, efficiency_cells
from leaderboard.intervals import Interval
from leaderboard.overlap import SEEN_NOTE, seen, seen_mark
from leaderboard.queries import Comparison, SeedGroup


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


IDENTITY_WIDTH = 24  # an identifying column is as wide as its longest value, up to this; then it folds
FREE_WIDTH = 18  # a path or a list (backbone, tasks, a config value) folds beyond this: rich sizes a
# column by its longest word, and a path is one word that would push the table past 80 columns


def plain_table(title: str, **options: Any) -> Table:
    """A table without vertical rules: seven columns of borders are a cell's worth at 80 columns."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, **options)


def fit_columns(table: Table, width: int, first_optional: int) -> list[str]:
    """Drop columns from the right, down to ``first_optional``, until ``table`` fits ``width``;
    returns the headers of those dropped (for a note saying where to see them)."""

    def too_wide() -> bool:
        out = Console(width=width, file=io.StringIO(), color_system=None)
        out.print(table, crop=False)
        return max(map(cell_len, out.file.getvalue().splitlines()), default=0) > width

    dropped: list[str] = []
    while len(table.columns) > first_optional and too_wide():
        dropped.insert(0, str(table.columns.pop().header))  # a column holds its own cells
    return dropped


def add_column(table: Table, name: str, **options: Any) -> None:
    """A column whose text folds where it must, never cut to an ellipsis."""
    table.add_column(name, overflow="fold", **options)


def _identity(table: Table, name: str, values: Sequence[str], **options: Any) -> None:
    """A column that says which run a row is: wide enough for its values (up to IDENTITY_WIDTH)."""
    widest = max((len(v) for v in [name, *values]), default=0)
    add_column(table, name, min_width=min(widest, IDENTITY_WIDTH), **options)


def runs_legend(runs: Sequence[dict[str, Any]]) -> Table:
    """Which method and backbone each run number of a wider table stands for."""
    table = plain_table("Runs")
    _identity(table, "Run", [f"#{r['run_id']}" for r in runs], justify="right")
    _identity(table, "Method", [r["method"] for r in runs])
    add_column(table, "Backbone", max_width=48)
    add_column(table, "Seed", justify="right")
    for run in runs:
        table.add_row(f"#{run['run_id']}", run["method"], run["backbone"], str(run["seed"]))
    return table


def _cell(value: float | None, reference: float | None, is_best: bool, first: bool) -> str:
    text = pct(value)
    if value is not None and reference is not None and not first:
        text += f" ({100 * (value - reference):+.2f})"
    return (
        f"[bold green]{text} *[/]" if is_best and value is not None else text
    )  # the star: for piped output, copied tables


def _bounds(found: Interval | str | None) -> str:
    """A difference's interval under its cell: ``[low, high]``, ``!`` where it excludes 0."""
    if found is None:
        return ""
    if isinstance(found, str):
        return escape("\n[n/a]")
    return escape(f"\n[{100 * found.low:+.2f}, {100 * found.high:+.2f}]") + (" !" if found.separable else "")


def _mean_row(
    table: Table,
    label: str,
    means: Sequence[float | None],
    found: Sequence[Interval | str | None] = (),
    **options: Any,
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
    table = plain_table(
        escape(
            f"Scores x100 side by side; (+/-) against {first} [its 95% interval; ! excludes 0]; * best"
            if several
            else "Scores x100"
        )
    )
    label = f"Mean(Task) over {len(comparison.shared_tasks)}"
    type_labels = {kind: f"Mean {kind} over {len(tasks)}" for kind, tasks in comparison.type_tasks.items()}
    _identity(table, "Task", [*comparison.tasks, label, *type_labels.values()], style="bold")
    for run in comparison.runs:
        add_column(table, f"#{run['run_id']}", justify="right")
    for task in comparison.tasks:
        best = comparison.best(task) if several else None
        reference = comparison.score(0, task)
        table.add_row(
            task,
            *[
                _cell(comparison.score(i, task), reference, comparison.score(i, task) == best, i == 0)
                + seen_mark(run, task)
                + (_bounds(comparison.intervals[i].get(task)) if i and comparison.intervals else "")
                for i, run in enumerate(comparison.runs)
            ],
        )
    _mean_row(table, label, comparison.means, comparison.mean_intervals, style="bold", end_section=True)
    for kind, type_label in type_labels.items():
        _mean_row(table, type_label, comparison.type_means[kind])
    captions = [*comparison.notes, *_missing_intervals(comparison)]
    if any(seen(run, task) for run in comparison.runs for task in comparison.tasks):
        captions.append(SEEN_NOTE)
    if several:
        resamples = next(
            (v.resamples for found in comparison.intervals for v in found.values() if not isinstance(v, str)), None
        )
        if resamples:
            captions.insert(
                0, f"[low, high]: paired bootstrap 95% interval of the difference, {resamples} resamples of the items"
            )
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
    table = plain_table(f"Leaderboard over {len(tasks)} task(s), scores x100")
    add_column(table, "Rank", justify="right")
    _identity(table, "Run", [f"#{r['run_id']}" for r in ranked], justify="right")
    _identity(table, "Method", [r["method"] for r in ranked])
    add_column(table, "Backbone", max_width=FREE_WIDTH)
    add_column(table, "Seed", justify="right")
    add_column(table, "Mean", justify="right", style="bold")
    for kind in types:
        add_column(table, f"Mean {kind}", justify="right")
    for task in tasks:
        add_column(table, task, justify="right", max_width=12)
    for run in ranked:
        table.add_row(
            _rank_text(run, run is ranked[0]),
            f"#{run['run_id']}",
            run["method"],
            run["backbone"],
            str(run["seed"]),
            pct(run["mean"]),
            *[pct(run["type_means"][kind]) for kind in types],
            *[pct(run["scores"].get(t)) + seen_mark(run, t) for t in tasks],
        )
    marks = {run.get("separable_from_above", True) for run in ranked[1:]}
    notes = [
        *(
            ["=N: not separable from the run above (their Mean's paired bootstrap 95% interval holds 0): its rank"]
            if False in marks
            else []
        ),
        *(
            ["N?: whether it is separable from the run above is unknown (no per-item results)"]
            if None in marks
            else []
        ),
        *([SEEN_NOTE] if any(seen(run, t) for run in ranked for t in tasks) else []),
    ]
    if notes:
        table.caption = escape("\n".join(notes))
        table.caption_justify = "left"
    return table


def efficiency_table(ranked: Sequence[dict[str, Any]], tasks: Sequence[str]) -> Table:
    """``leaderboard --efficiency``: what evaluating the ranked tasks cost each ranked run (its
    ``efficiency`` numbers), in rank order, in a table of its own that keeps to 80 columns."""
    table = plain_table(f"Evaluation cost over the {len(tasks)} ranked task(s)")
    _identity(table, "Run", [f"#{r['run_id']}" for r in ranked], justify="right")
    for header in HEADERS:
        add_column(table, header, justify="right")
    for run in ranked:
        table.add_row(f"#{run['run_id']}", *efficiency_cells(run["efficiency"]))
    return table


def runs_table(runs: Sequence[dict[str, Any]], title: str = "Runs") -> Table:
    table = plain_table(title)
    _identity(table, "Run", [f"#{r['run_id']}" for r in runs])
    add_column(table, "Status")
    _identity(table, "Method", [r["method"] for r in runs])
    add_column(table, "Backbone", max_width=FREE_WIDTH)
    add_column(table, "Tasks", max_width=FREE_WIDTH)
    add_column(table, "Started")
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


def seed_groups_table(groups: Sequence[SeedGroup]) -> Table:
    """Tasks as rows, one column per config: mean +- std over its seeds (x100), n runs."""
    table = plain_table(
        escape("Configs over seeds (score x100: mean +- sample std, n runs, [95% t interval of the mean])")
    )
    add_column(table, "Task", style="bold")
    for group in groups:
        add_column(table, f"{group.label}\nruns {', '.join(f'#{i}' for i in group.run_ids)}", justify="right")
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
    table = plain_table("Config keys that differ (-: not an option of that run)")
    keys = [key.partition(".")[2] or key for key, _ in differences]
    _identity(table, "Key", [f"  {k}" for k in keys], style="bold", max_width=IDENTITY_WIDTH + 8)
    for run in runs:
        add_column(table, f"#{run['run_id']}", max_width=FREE_WIDTH)
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
    table = plain_table(title)
    _identity(table, headers[0], [row[0] for row in rows])
    for header in headers[1:]:
        add_column(table, header, max_width=widths.get(header))
    for row in rows:
        table.add_row(*row)
    return table
