"""The tables of one run, as `harness show` prints them: its scores (with their overlap with the
training texts), timings, config, environment, and the dev scores followed during training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from leaderboard.overlap import overlap_text
from leaderboard.queries import flatten
from leaderboard.render import pct


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
            item["task"],
            *([str(item["dim"]) if item.get("dim") else whole] if dims else []),
            item.get("task_type") or "unknown",
            item["main_metric"],
            pct(item["main_score"]),
            item.get("task_version") or "unknown",
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
        training.add_row(
            stage,
            str(last["step"]),
            f"{first['loss']:.4f}",
            f"{last['loss']:.4f}",
            f"{last['lr']:.2e}",
            f"{last['seconds']:.1f}",
        )
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
    for key in (
        "n_parameters",
        "trainable_parameters",
        "embed_dim",
        "config_hash",
        "uuid",
        "output_dir",
        "git_sha",
        "git_dirty",
        "host",
        "error",
    ):
        config.add_row(key, str(run.get(key)))
    environment = Table(title="Environment", show_header=False)
    environment.add_column("Key", style="bold")
    environment.add_column("Value")
    for section in ("versions", "hardware"):
        for key, value in flatten(run.get(section) or {}):
            environment.add_row(f"{section}.{key}", str(value))
    extra = [
        *([training] if stages else []),
        *([diagnostics] if run.get("diagnostics") else []),
        *dev_score_tables(run),
    ]
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
        caption = (
            f"kept: {kept['stage']} step {kept['step']} (mean dev score {pct(kept['dev_score'])})" if kept else None
        )
        title = f"Dev scores (stage {stage}), x100"
        table = Table(title=title, caption=caption, min_width=len(title) + 4)
        for name in ("Step", *tasks, *(["Mean"] if len(tasks) > 1 else []), "Best"):
            table.add_column(name, justify="left" if name == "Step" else "right")
        for step, scores in steps.items():
            mean = [pct(sum(scores.values()) / len(scores))] if len(tasks) > 1 else []
            table.add_row(
                str(step), *(pct(scores.get(task)) for task in tasks), *mean, "*" if best == (stage, step) else ""
            )
        tables.append(table)
    return tables
