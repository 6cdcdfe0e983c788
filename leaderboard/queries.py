"""Pure computations behind ``harness compare`` and ``harness leaderboard``.

They work on the plain run records the store returns, so every number shown comes from the
database, never from recomputation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import fmean, stdev
from typing import Any

from harness.task_versions import is_quick_check
from leaderboard.intervals import RESAMPLES, Interval, paired_intervals, seed_interval


def version_label(version: str | None) -> str:
    """A task version as shown beside its name: the first 8 characters of its revision, then
    what follows it whole (``:subsets``, ``+firstN`` of a quick check); ``?`` when unknown."""
    if version is None:
        return "?"
    cut = min((i for i in (version.find(":"), version.find("+")) if i >= 0), default=len(version))
    return version[:cut][:8] + version[cut:]


def separate_versions(
    runs: Sequence[dict[str, Any]], keep: dict[str, str | None] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """``runs`` with the scores of one task name computed on different data told apart.

    Where the runs' scores for a task name come from more than one version of its data (two
    files with one stem; an mteb dataset at two revisions; a version unknown), every such score is
    keyed ``name@version`` instead, so no row, column or mean puts them together. ``keep`` pins a
    version per name that keeps the bare name (the leaderboard's reference). Returns the runs
    (copies) and one note per separated name saying why; a separated score keeps its task type
    under its new key.
    """
    versions: dict[str, dict[str | None, list[int]]] = {}
    for run in runs:
        for task in run["scores"]:
            versions.setdefault(task, {}).setdefault(run.get("task_versions", {}).get(task), []).append(run["run_id"])
    split = {task for task, seen in versions.items() if len(seen) > 1}
    keep = keep or {}
    notes = [
        f"{task}: {len(versions[task])} versions of its data, shown apart ("
        + "; ".join(
            f"{task}@{version_label(v)}: run {', '.join(f'#{i}' for i in ids)}" for v, ids in versions[task].items()
        )
        + ")"
        for task in sorted(split)
    ]

    def key(task: str, version: str | None) -> str:
        if task not in split or (task in keep and keep[task] == version):
            return task
        return f"{task}@{version_label(version)}"

    separated = []
    for run in runs:
        own = run.get("task_versions", {})
        scores = {key(task, own.get(task)): value for task, value in run["scores"].items()}
        types = {key(task, own.get(task)): kind for task, kind in run.get("task_types", {}).items()}
        items = {key(task, own.get(task)): value for task, value in run.get("items", {}).items()}
        tasks = [key(task, own.get(task)) if task in run["scores"] else task for task in run["tasks"]]
        separated.append({**run, "scores": scores, "tasks": tasks, "task_types": types, "items": items})
    return separated, notes


UNKNOWN_TYPE = "unknown"  # a task whose type no run recorded (scores from before revision 0005)


def type_groups(runs: Sequence[dict[str, Any]], tasks: Sequence[str]) -> dict[str, list[str]]:
    """``tasks`` grouped by mteb task type, types by name (``unknown`` last): a task's type is
    the one the first run that recorded one gives. Empty where every task has one type, whose
    mean is then Mean(Task) itself."""
    groups: dict[str, list[str]] = {}
    for task in tasks:
        known = [kind for run in runs if (kind := run.get("task_types", {}).get(task))]
        groups.setdefault(known[0] if known else UNKNOWN_TYPE, []).append(task)
    if len(groups) < 2:
        return {}
    return {kind: groups[kind] for kind in sorted(groups, key=lambda kind: (kind == UNKNOWN_TYPE, kind))}


@dataclass(frozen=True)
class Comparison:
    """Runs side by side: one row per task, one column per run."""

    runs: list[dict[str, Any]]
    tasks: list[str]
    shared_tasks: list[str]  # the tasks every run has a score for; Mean(Task) is over these
    means: list[float | None]
    notes: tuple[str, ...] = ()  # why some tasks are shown apart (see ``separate_versions``)
    type_tasks: dict[str, list[str]] = field(default_factory=dict)  # the shared tasks by type (``type_groups``)
    type_means: dict[str, list[float]] = field(default_factory=dict)  # type -> each run's mean over its tasks
    intervals: list[dict[str, Interval | str]] = field(
        default_factory=list
    )  # per run: task -> its paired interval against the first run, or why none
    mean_intervals: list[Interval | str | None] = field(
        default_factory=list
    )  # per run: that of Mean(Task) (None: the first run)

    def score(self, run_index: int, task: str) -> float | None:
        return self.runs[run_index]["scores"].get(task)

    def best(self, task: str) -> float | None:
        values = [s for i in range(len(self.runs)) if (s := self.score(i, task)) is not None]
        return max(values) if values else None


def _task_union(runs: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        for task in list(run["tasks"]) + list(run["scores"]):
            seen.setdefault(task, None)
    return list(seen)


def compare(
    runs: Sequence[dict[str, Any]], tasks: Sequence[str] | None = None, resamples: int = RESAMPLES
) -> Comparison:
    """Line up ``runs`` per task (all their tasks, or only ``tasks``) with Mean(Task), and the
    mean per task type of the shared tasks where they are of more than one type; scores of one
    name computed on different data are separate tasks (``separate_versions``). Where the runs
    carry their per-item results (``items``: task -> items), each difference to the first run gets
    its paired bootstrap interval (``leaderboard.intervals``)."""
    runs, notes = separate_versions(runs)
    names = list(tasks) if tasks else _task_union(runs)
    shared = [t for t in names if all(t in run["scores"] for run in runs)]
    means = [fmean(run["scores"][t] for t in shared) if shared else None for run in runs]
    groups = type_groups(runs, shared)
    type_means = {kind: [fmean(run["scores"][t] for t in group) for run in runs] for kind, group in groups.items()}
    found, mean_found = (
        paired_intervals(
            [run.get("items", {}) for run in runs], [run["scores"] for run in runs], names, shared, resamples
        )
        if runs
        else ([], [])
    )
    return Comparison(
        runs=list(runs),
        tasks=names,
        shared_tasks=shared,
        means=means,
        notes=tuple(notes),
        type_tasks=groups,
        type_means=type_means,
        intervals=found,
        mean_intervals=mean_found,
    )


def flatten(mapping: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dict as (dotted key, value) pairs, e.g. ``method_args.lr``."""
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            items.extend(flatten(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}", value))
    return items


def config_differences(configs: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The dotted config keys whose values are not the same in every config (a key a config
    lacks counts as None), with each config's value, in first-seen key order."""
    flat = [dict(flatten(config)) for config in configs]
    keys = list(dict.fromkeys(key for f in flat for key in f))
    rows = [(key, [f.get(key) for f in flat]) for key in keys]
    return [(key, values) for key, values in rows if any(v != values[0] for v in values)]


@dataclass(frozen=True)
class SeedGroup:
    """Runs whose configs are equal but for the seed, with mean and sample std per task."""

    run_ids: list[int]
    label: str
    scores: dict[str, tuple[float, float, int]]  # task -> (mean, std, runs with a score)
    intervals: dict[str, tuple[float, float] | None] = field(
        default_factory=dict
    )  # task -> 95% t interval of the mean (None: one run)


#: recorded keys that do not make another config (harness.config.UNHASHED: the seed, extra scores
#: at cut dims, the run a run repeats); a test keeps the two lists equal
UNGROUPED = ("seed", "dims", "repeats")


def group_seeds(runs: Sequence[dict[str, Any]], configs: Sequence[dict[str, Any]]) -> list[SeedGroup]:
    """Group ``runs`` (with their resolved ``configs``) by config without ``UNGROUPED``, in first-seen
    order, one run per seed (the first seen: a repeat of a seed, such as a baseline each `harness
    run` records again, is not another sample); std is the sample standard deviation (0 for a
    single run), and each task's interval the 95% t interval of its mean over the seeds
    (``leaderboard.intervals.seed_interval``)."""

    groups: dict[str, dict[Any, dict[str, Any]]] = {}
    for run, config in zip(runs, configs):
        key = repr(sorted((k, repr(v)) for k, v in flatten(config) if k.split(".")[0] not in UNGROUPED))
        groups.setdefault(key, {}).setdefault(run["seed"], run)
    result = []
    for by_seed in groups.values():
        members = list(by_seed.values())
        scores, spans = {}, {}
        for task in _task_union(members):
            values = [run["scores"][task] for run in members if task in run["scores"]]
            if values:
                scores[task] = (fmean(values), stdev(values) if len(values) > 1 else 0.0, len(values))
                spans[task] = seed_interval(values)
        first = members[0]
        result.append(
            SeedGroup([r["run_id"] for r in members], f"{first['method']} {first['backbone']}", scores, spans)
        )
    return result


def reference_versions(
    runs: Sequence[dict[str, Any]], tasks: Sequence[str], given: dict[str, str]
) -> dict[str, str | None]:
    """The version of each task a ranking is over: the one ``given`` (a task file named on the
    command line), else that of the first run (the newest) with a score for it on all of its data
    (a quick check's, ``--limit``, only where no run has more)."""
    versions: dict[str, str | None] = dict(given)
    for task in tasks:
        found = [run.get("task_versions", {}).get(task) for run in runs if task in run["scores"]]
        full = [version for version in found if not is_quick_check(version)]  # quick checks only when all are
        if task not in versions and found:
            versions[task] = (full or found)[0]
    return {task: version for task, version in versions.items() if task in tasks}


def tie_unseparable(
    ranked: list[dict[str, Any]], items: dict[int, dict[str, Any]], tasks: Sequence[str], resamples: int = RESAMPLES
) -> None:
    """Give each ranked run whose Mean(Task) is not separable from the run above it (its paired
    bootstrap 95% interval holds 0) that run's rank, and say so in ``separable_from_above``
    (None where either lacks per-item results, so it keeps its own rank; and for the first run)."""
    memo: dict = {}
    if ranked:
        ranked[0]["separable_from_above"] = None
    for above, run in zip(ranked, ranked[1:]):
        _, means = paired_intervals(
            [items.get(above["run_id"], {}), items.get(run["run_id"], {})],
            [above["scores"], run["scores"]],
            tasks,
            tasks,
            resamples,
            keys=[above["run_id"], run["run_id"]],
            memo=memo,
        )
        found = means[1]
        run["separable_from_above"] = None if isinstance(found, str) or found is None else found.separable
        if run["separable_from_above"] is False:
            run["rank"] = above["rank"]


def rank(
    runs: Sequence[dict[str, Any]], tasks: Sequence[str], versions: dict[str, str | None] | None = None
) -> list[dict[str, Any]]:
    """Runs that have a score on every task in ``tasks``, best Mean(Task) first; a task's score
    counts only when computed on the version ``versions`` names for it (where it names one).

    Each returned record gains ``mean`` and ``rank`` (ties share a rank), and, where ``tasks`` are
    of more than one type (``type_groups``), ``type_means``: type -> its mean over that type's tasks.
    """
    if versions:
        runs = [
            run
            for run in runs
            if all(run.get("task_versions", {}).get(t, versions[t]) == versions[t] for t in versions)
        ]
    eligible = [run for run in runs if tasks and all(t in run["scores"] for t in tasks)]
    groups = type_groups(eligible, tasks)
    ranked = sorted(
        ({**run, "mean": fmean(run["scores"][t] for t in tasks)} for run in eligible),
        key=lambda run: (-run["mean"], run["run_id"]),
    )
    for position, run in enumerate(ranked):
        tied = position > 0 and run["mean"] == ranked[position - 1]["mean"]
        run["rank"] = ranked[position - 1]["rank"] if tied else position + 1
        if groups:
            run["type_means"] = {kind: fmean(run["scores"][t] for t in group) for kind, group in groups.items()}
    return ranked
