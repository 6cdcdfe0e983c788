"""Loading the tasks a run evaluates: each mteb task built and its data read before anything is
recorded, the split it evaluates checked (a dev evaluation never reads a test split), ``--limit``
applied."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.evaluation.quick_check import limit_task
from harness.evaluation.tasks import TaskSpec, build_mteb_task, task_version
from harness.task_versions import limited_version

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask


@dataclass
class LoadedTask:
    spec: TaskSpec
    task: AbsTask

    def version(self, limit: int | None) -> str:
        """The version a score of this task is recorded under: its data's, marked when ``--limit`` cut it."""
        return limited_version(task_version(self.spec, self.task), limit)


DEV_SPLITS = ("validation", "dev")  # what --dev-tasks evaluates of an mteb task, where it has one


def load_tasks(specs: Sequence[TaskSpec], limit: int | None = None, *, dev: bool = False) -> list[LoadedTask]:
    """Build every mteb task and load its data, so a missing dataset or split fails before
    recording; with ``limit``, keep the first ``limit`` items of each evaluated split. ``dev``
    (``--dev-tasks``): an mteb task evaluates its validation or dev split, and a test split is refused."""
    loaded = []
    for spec in specs:
        task = build_mteb_task(spec)
        try:
            task.load_data()
        except (ConnectionError, OSError) as exc:
            path = task.metadata.dataset.get("path", spec.name)
            raise HarnessError(
                f"task {spec.name} reads its data ({path}) from the hub, which failed here: {exc}. "
                "Run it where the hub is reachable (or its data is cached), or use the 'offline' "
                "preset or a task file."
            ) from None
        if spec.kind == "mteb":
            spec = _checked_split(spec, task, dev)
        elif dev and spec.split == "test":  # a task file labelled test: a label is all the harness knows of it
            raise HarnessError(
                f"--dev-tasks {spec.data.path if spec.data else spec.name}:test: dev scores never touch a test split."
            )
        if limit is not None:
            limit_task(task, limit)
        loaded.append(LoadedTask(spec, task))
    return loaded


def dataset_splits(task: AbsTask) -> list[str]:
    """The splits an mteb task's loaded data holds (of its first subset, for a multilingual one)."""
    data = getattr(task, "dataset", None) or {}
    first = next(iter(data.values()), None) if isinstance(data, dict) else None
    nested = isinstance(first, dict) and not hasattr(first, "column_names")  # subset -> split -> data
    return list(first if nested else data)


def _checked_split(spec: TaskSpec, task: AbsTask, dev: bool) -> TaskSpec:
    """``spec`` with the split it evaluates: a ``NAME:split`` must exist; under ``dev`` the task's
    validation or dev split is chosen and a test split refused (never tune on test)."""
    have = dataset_splits(task)
    option = "--dev-tasks" if dev else "--tasks"
    if spec.split is not None and have and spec.split not in have:
        raise HarnessError(
            f"{option} {spec.name}:{spec.split}: the task has no split {spec.split!r}; it has {', '.join(have)}."
        )
    if not dev:
        return spec
    if spec.split is None:
        found = next((split for split in DEV_SPLITS if split in have), None)
        if found is None and "test" in task.eval_splits:
            raise HarnessError(
                f"--dev-tasks {spec.name}: its evaluated split is test ({', '.join(task.eval_splits)}), and dev scores never touch "
                f"test; it has no {' or '.join(DEV_SPLITS)} split (it has {', '.join(have) or 'none'}). Give a dev task file, or "
                f"{spec.name}:SPLIT with another split."
            )
        if found is not None:
            task.filter_eval_splits([found])
            return dataclasses.replace(spec, split=found)
        return spec
    if spec.split == "test":
        raise HarnessError(
            f"--dev-tasks {spec.name}:test: dev scores never touch a test split; give {spec.name}:validation or another."
        )
    return spec
