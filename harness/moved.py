"""The flat layout's import paths, kept for plug-ins written against it.

The core became one package per concern (``harness.model``, ``harness.data``, ``harness.training``,
``harness.evaluation``, ``harness.runs``, ``harness.export``, ``harness.telemetry``). A plug-in that
imports an old path (``from harness.packing import forward_rows``) gets the module at its new place,
the same module object, with a ``DeprecationWarning`` naming the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    "harness.backbones": "harness.model.backbones",
    "harness.packing": "harness.model.packing",
    "harness.flops": "harness.telemetry.flops",
    "harness.records": "harness.data.records",
    "harness.task_files": "harness.data.task_files",
    "harness.train_data": "harness.data.train_data",
    "harness.offline_data": "harness.data.offline_data",
    "harness.engines": "harness.training.engines",
    "harness.sharding_config": "harness.training.sharding",
    "harness.distributed": "harness.training.distributed",
    "harness.tasks": "harness.evaluation.tasks",
    "harness.mteb_adapter": "harness.evaluation.mteb_adapter",
    "harness.run_folders": "harness.runs.folders",
    "harness.trackers": "harness.runs.trackers",
    "harness.model_export": "harness.export.model",
    "harness.mteb_export": "harness.export.mteb",
}


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names only; the module is imported from its new path and shared."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there.", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__  # its own spec, put back once the import system set this one
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The module ran already, at its new path; the import system set its ``__spec__`` to the
        old name's, which is put back."""
        module.__spec__ = module.__spec__.loader_state


def install() -> None:
    """Make the old paths importable (once per process)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
