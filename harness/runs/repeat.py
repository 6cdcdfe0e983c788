"""A run re-run from its record (``harness run --like N``), and one config over several seeds
(``--seeds 0,1,2``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.config import RunConfig, load_run_config, parse_set
from harness.errors import HarnessError
from harness.options import check_values, whole_numbers
from harness.runs.plan import (
    RunPlan,
    plan_run,
    recorded_config,
    refuse_changed_backbone,
    refuse_changed_tasks,
    refuse_changed_training_data,
)
from leaderboard.queries import compare, config_differences

VARIED = ("seed", "tasks", "dims")  # what --like lets the command vary besides --set


def varied_keys(options: Mapping[str, Any], sets: Iterable[str]) -> set[str]:
    """The config keys a ``--like`` command changes on purpose: its options and ``--set`` keys
    (``method_args.NAME`` for a method option)."""

    keys = {key for key, value in options.items() if key in VARIED and value not in (None, [])}
    keys |= {".".join(parse_set(item)[0]) for item in sets}
    if "tasks" in keys:
        keys.add("tasks_resolved")
    return keys


def like_config(
    record: dict[str, Any], options: Mapping[str, Any], config_file: Path | None, sets: Iterable[str]
) -> RunConfig:
    """Run ``record``'s recorded config again, with the command's ``--seed``, ``--tasks``, ``--dims``
    and ``--set`` on top; it records which run it repeats."""
    others = sorted(key for key, value in options.items() if value not in (None, []) and key not in VARIED)
    if others or config_file is not None:
        given = ", ".join(f"--{key.replace('_', '-')}" for key in others) or "--config"
        raise HarnessError(
            f"--like {record['run_id']} runs that run's recorded config again; {given} would change it. "
            "Vary it with --seed, --seeds, --tasks, --dims or --set KEY=VALUE."
        )
    if record["status"] == "running":
        raise HarnessError(
            f"--like {record['run_id']}: run {record['run_id']} is still running; repeat it once it has ended."
        )
    chosen = {key: value for key, value in options.items() if key in VARIED}
    return load_run_config(None, {**chosen, "repeats": record["run_id"]}, sets, base=recorded_config(record))


def refuse_changes(plan: RunPlan, record: dict[str, Any], varied: set[str]) -> None:
    """What ``--like`` repeats must be what the run read and resolved: its task and training files,
    its backbone, and every recorded option (a default changed since in the code, a plug-in's
    option) unless the command changed it on purpose (``varied``)."""

    recorded = record["config"]
    refuse_changed_tasks(plan, record, "a repeated run evaluates")
    if plan.trains and plan.config.train_data == recorded.get("train_data"):
        refuse_changed_training_data(plan, record, "a repeated run trains on")
    if plan.config.backbone == recorded.get("backbone"):
        refuse_changed_backbone(plan, record)
    ignored = {"seed", "dims", "repeats", *varied}

    def kept(config: dict[str, Any]) -> dict[str, Any]:
        out = {key: value for key, value in config.items() if key not in ignored}
        out["method_args"] = {
            k: v for k, v in config.get("method_args", {}).items() if f"method_args.{k}" not in ignored
        }
        if "dev_tasks_resolved" in out:  # the dev split is chosen when the data loads, after this check
            out["dev_tasks_resolved"] = [
                {k: v for k, v in spec.items() if k != "split"} for spec in out["dev_tasks_resolved"]
            ]
        return out

    differences = config_differences([kept(recorded), kept(plan.resolved())])
    if differences:
        shown = "; ".join(f"{key}: {before!r} then, {now!r} now" for key, (before, now) in differences[:3])
        raise HarnessError(
            f"--like {record['run_id']}: this code resolves run {record['run_id']}'s config differently ({shown}"
            f"{'; ...' if len(differences) > 3 else ''}): it would not run what run {record['run_id']} ran. Give --set KEY=VALUE "
            f"to change it on purpose, or use the code run {record['run_id']} was recorded with."
        )


def plans_per_seed(config: RunConfig, seeds: str | None, *, given_seed: int | None) -> list[RunPlan]:
    """One plan, or one per seed of ``--seeds S,S,...`` (each checked before any runs)."""
    if seeds is None:
        return [plan_run(config)]

    if given_seed is not None:
        raise HarnessError("--seed and --seeds: give one of them.")
    numbers = whole_numbers(seeds, "--seeds", "0,1,2")
    if len(set(numbers)) != len(numbers):
        raise HarnessError(f"--seeds {seeds!r}: give distinct seeds, e.g. 0,1,2.")
    configs = [dataclasses.replace(config, seed=number) for number in numbers]
    for each in configs:
        check_values(each, "--seeds")
    return [plan_run(each) for each in configs]


def agreement(store: Any, original: int, run_id: int) -> str:
    """One line: whether run ``run_id``'s scores agree with run ``original``'s within each task's
    paired 95% interval (``harness compare original run_id`` has the table)."""

    runs = store.runs(ids=[original, run_id], statuses=None)
    items = store.score_items([original, run_id])
    comparison = compare([{**run, "items": items[run["run_id"]]} for run in runs])
    found = comparison.intervals[1]
    apart = [task for task, interval in found.items() if not isinstance(interval, str) and interval.separable]
    unknown = [task for task, interval in found.items() if isinstance(interval, str)]
    same = [task for task in comparison.shared_tasks if runs[0]["scores"][task] == runs[1]["scores"][task]]
    if not comparison.shared_tasks:
        return f"Run #{run_id} repeats run #{original} but shares no task with it."
    if apart:
        return (
            f"Run #{run_id} repeats run #{original}: its scores differ beyond their paired 95% interval on "
            f"{', '.join(apart)} (`harness compare {original} {run_id}`)."
        )
    tail = f"; no interval for {', '.join(unknown)}" if unknown else ""
    identical = " (identical)" if len(same) == len(comparison.shared_tasks) else ""
    return (
        f"Run #{run_id} repeats run #{original}: its scores agree within their paired 95% intervals on "
        f"{len(comparison.shared_tasks)} shared task(s){identical}{tail}."
    )
