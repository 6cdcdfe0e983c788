"""mteb's tasks by name, type and languages, without importing mteb each time.

Importing mteb takes seconds. Its task list (names, types, languages; no data) is written once per
installed mteb version to ``HARNESS_CACHE/mteb-tasks-<version>.json`` and read from there after,
so ``harness tasks`` and "did you mean" answer at once. It only ever names tasks: a task is always
built, and its data read, by mteb itself.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness.errors import unknown_name
from harness.paths import cache_root, replace_text

FORMAT = 1  # bump when the file's layout changes


@dataclass(frozen=True)
class MtebTask:
    name: str
    type: str
    languages: tuple[str, ...]
    modalities: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    tasks: tuple[MtebTask, ...]  # mteb's current text tasks (superseded, beta, image, audio ones left out)
    accepted: frozenset[str]  # every name mteb.get_task takes: also old names and superseded tasks

    @property
    def types(self) -> list[str]:
        return sorted({task.type for task in self.tasks})


def _file() -> Path:
    return cache_root() / f"mteb-tasks-{importlib.metadata.version('mteb')}-v{FORMAT}.json"


def _from_mteb() -> dict:
    import mteb

    registry = importlib.import_module("mteb.get_tasks")  # where mteb keeps every name it accepts
    tasks = [
        [t.metadata.name, t.metadata.type, list(t.metadata.languages), list(t.metadata.modalities)]
        for t in mteb.get_tasks()
    ]
    accepted = {*getattr(registry, "_TASKS_REGISTRY", {}), *getattr(registry, "_TASK_RENAMES", {})}
    return {"tasks": tasks, "accepted": sorted(accepted | {task[0] for task in tasks})}


def _write(path: Path, data: dict) -> None:
    """Write whole or not at all; an unwritable cache only costs the next command the import."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_text(path, json.dumps(data))
    except OSError:
        pass


@cache
def catalog() -> Catalog:
    """mteb's task list: from the file this mteb version wrote, else from mteb (and written)."""
    path = _file()
    try:
        return _parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or damaged: mteb itself says
    data = _from_mteb()
    _write(path, data)
    return _parse(data)


def _parse(data: dict) -> Catalog:
    tasks = (
        MtebTask(name, kind, tuple(languages), tuple(modalities))
        for name, kind, languages, modalities in data["tasks"]
    )
    return Catalog(tuple(task for task in tasks if set(task.modalities) == {"text"}), frozenset(data["accepted"]))


def matching(kind: str | None = None, search: str | None = None) -> list[MtebTask]:
    """mteb's tasks of type ``kind`` (any case) whose name, type or a language contains ``search``."""

    tasks = catalog().tasks
    if kind is not None:
        types = {t.lower(): t for t in catalog().types}
        if kind.lower() not in types:
            raise unknown_name("--type", kind, catalog().types)
        tasks = tuple(t for t in tasks if t.type == types[kind.lower()])
    if search:
        word = search.lower()
        tasks = tuple(t for t in tasks if word in t.name.lower() or word in t.type.lower() or word in t.languages)
    return sorted(tasks, key=lambda t: (t.type, t.name.lower()))
