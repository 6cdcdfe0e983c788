"""Runs with their scores as CSV or JSON files, written whole or not at all."""

from __future__ import annotations

import csv
import datetime
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from harness.paths import replace_text, writable_file
from leaderboard.errors import LeaderboardError
from leaderboard.queries import separate_versions

FIELDS = ("run_id", "status", "method", "backbone", "task_spec", "seed", "config_hash", "started_at", "ended_at")
TIMES = ("started_at", "ended_at")  # unix seconds in the database; ISO 8601 (UTC) in CSV


def _iso(seconds: float | None) -> str:
    return (
        ""
        if seconds is None
        else datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="seconds")
    )


def as_csv(runs: Sequence[dict[str, Any]]) -> str:
    """One row per run: its fields, then one column per task (mteb main score, 0-1 scale;
    empty where the run has none), tasks in first-seen order."""
    runs, _ = separate_versions(runs)  # one column per task version where runs differ
    tasks = list(dict.fromkeys(task for run in runs for task in run["scores"]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIELDS, *tasks])
    for run in runs:
        writer.writerow(
            [*(_iso(run[f]) if f in TIMES else run[f] for f in FIELDS), *(run["scores"].get(t, "") for t in tasks)]
        )
    return out.getvalue()


def as_json(runs: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(runs), indent=2, default=str) + "\n"


def write(text: str, target: str, label: str = "export to") -> None:
    """Print to stdout for "-", else write ``target`` through a temporary file and a rename."""
    if target == "-":
        sys.stdout.write(text)
        return
    path = writable_file(target, label)
    try:
        replace_text(path, text)
    except OSError as exc:
        raise LeaderboardError(f"{label} {target}: {exc.strerror or exc}; nothing was written.") from None
