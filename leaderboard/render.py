"""Rich tables for runs, comparisons and rankings. Scores are shown x100, as MTEB reports them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from leaderboard.queries import Comparison, SeedGroup, flatten


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _run_label(run: dict[str, Any]) -> str:
    return f"#{run['run_id']} {run['method']}\n{run['backbone']}"


def _cell(value: float | None, reference: float | None, is_best: bool, first: bool) -> str:
    text = _pct(value)
    if value is not None and reference is not None and not first:
        text += f" ({100 * (value - reference):+.2f})"
    # the star marks the best cell where colour is lost (piped output, a copied table)
    return f"[bold green]{text} *[/]" if is_best and value is not None else text


def comparison_table(comparison: Comparison) -> Table:
    """Tasks as rows, runs as columns, difference to the first run, best cell highlighted."""
    table = Table(title="Runs side by side (score x100; (+/-) against the first run; * best)")
    table.add_column("Task", style="bold")
    for run in comparison.runs:
        table.add_column(_run_label(run), justify="right")
    for task in comparison.tasks:
        best = comparison.best(task)
        reference = comparison.score(0, task)
        cells = [
            _cell(comparison.score(i, task), reference, comparison.score(i, task) == best, i == 0)
            for i in range(len(comparison.runs))
        ]
        table.add_row(task, *cells)
    means = comparison.means
    best_mean = max((m for m in means if m is not None), default=None)
    label = f"Mean(Task) over {len(comparison.shared_tasks)}"
    table.add_row(
        label,
        *[_cell(m, means[0], m == best_mean, i == 0) for i, m in enumerate(means)],
        style="bold",
        end_section=True,
    )
    if comparison.notes:
        table.caption = "\n".join(comparison.notes)
    return table


def leaderboard_table(ranked: Sequence[dict[str, Any]], tasks: Sequence[str]) -> Table:
    table = Table(title=f"Leaderboard over {len(tasks)} task(s): {', '.join(tasks)}")
    table.add_column("Rank", justify="right")
    table.add_column("Run", justify="right")
    table.add_column("Method")
    table.add_column("Backbone")
    table.add_column("Mean(Task)", justify="right", style="bold")
    for task in tasks:
        table.add_column(task, justify="right")
    table.add_column("Seed", justify="right")
    table.add_column("Finished")
    for run in ranked:
        table.add_row(
            str(run["rank"]),
            f"#{run['run_id']}",
            run["method"],
            run["backbone"],
            _pct(run["mean"]),
            *[_pct(run["scores"].get(t)) for t in tasks],
            str(run["seed"]),
            _when(run["ended_at"]),
        )
    return table


def runs_table(runs: Sequence[dict[str, Any]], title: str = "Runs") -> Table:
    table = Table(title=title)
    for name in ("Run", "Status", "Method", "Backbone", "Tasks", "Started"):
        table.add_column(name)
    for run in runs:
        status = run["status"]
        colour = {"finished": "green", "failed": "red"}.get(status, "yellow")
        table.add_row(
            f"#{run['run_id']}",
            f"[{colour}]{status}[/]",
            run["method"],
            run["backbone"],
            run["task_spec"],
            _when(run["started_at"]),
        )
    return table


def run_detail_tables(run: dict[str, Any]) -> list[Table]:
    """``harness show``: the scores, the timings and the resolved config of one run."""
    scores = Table(title=f"Run #{run['run_id']}: {run['method']} on {run['backbone']} ({run['status']})")
    scores.add_column("Task", style="bold")
    scores.add_column("Main metric")
    scores.add_column("Score x100", justify="right")
    scores.add_column("Task version")
    for item in run["score_details"]:
        scores.add_row(item["task"], item["main_metric"], _pct(item["main_score"]), item.get("task_version") or "unknown")
    timings = Table(title="Timings")
    for name in ("Phase", "Seconds", "Items", "Tokens", "Tokens/s", "MFU", "Peak memory (MiB)"):
        timings.add_column(name, justify="right" if name != "Phase" else "left")
    for item in run["timings"]:
        peak = item["peak_memory_bytes"]
        details = item.get("details") or {}
        rate, mfu = details.get("tokens_per_s"), details.get("mfu")
        timings.add_row(
            item["phase"],
            f"{item['seconds']:.2f}",
            "-" if item["items"] is None else str(item["items"]),
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
    extra = [*([training] if stages else []), *([diagnostics] if run.get("diagnostics") else [])]
    return [scores, timings, *extra, config, environment]


def seed_groups_table(groups: Sequence[SeedGroup]) -> Table:
    """Tasks as rows, one column per config: mean +- std over its seeds (x100), n runs."""
    table = Table(title="Configs over seeds (score x100: mean +- sample std, n runs)")
    table.add_column("Task", style="bold")
    for group in groups:
        table.add_column(f"{group.label}\nruns {', '.join(f'#{i}' for i in group.run_ids)}", justify="right")
    tasks = list(dict.fromkeys(task for group in groups for task in group.scores))
    for task in tasks:
        cells = []
        for group in groups:
            if task in group.scores:
                mean, std, n = group.scores[task]
                spread = f" +- {100 * std:.2f}" if n > 1 else ""  # one run has no spread to show
                cells.append(f"{100 * mean:.2f}{spread} (n={n})")
            else:
                cells.append("-")
        table.add_row(task, *cells)
    return table


def config_diff_table(runs: Sequence[dict[str, Any]], differences: Sequence[tuple[str, list[Any]]]) -> Table:
    """Only the config keys whose values differ between ``runs``, one column per run."""
    table = Table(title="Config keys that differ")
    table.add_column("Key", style="bold")
    for run in runs:
        table.add_column(f"#{run['run_id']}")
    for key, values in differences:
        table.add_row(key, *["-" if v is None else repr(v) for v in values])
    return table
