"""Method registry: the ``harness.methods`` entry-point group plus explicitly imported plug-ins.

Built-in methods are declared in this project's ``pyproject.toml`` under the same entry-point group
an out-of-tree package uses, so the two are found the same way. On a name clash the built-in wins.
Plug-in modules that are not installed can be imported by explicit name (``--plugins mod`` or
``HARNESS_PLUGINS=mod1,mod2``) and call :func:`register`. Nothing is imported by guessing.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from harness.errors import HarnessError, unknown_name

if TYPE_CHECKING:
    from harness.method import Method

GROUP = "harness.methods"
PLUGINS_ENV = "HARNESS_PLUGINS"
_BUILTIN_DIST = "harness"
_registered: dict[str, str | type[Method]] = {}


def register(name: str, target: str | type[Method]) -> None:
    """Register a method class (or a lazy ``"module:Class"`` string) under ``name``."""
    _registered[name] = target


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        is_builtin = ep.dist is not None and ep.dist.name == _BUILTIN_DIST
        if ep.name in found and not is_builtin:
            continue
        found[ep.name] = ep
    return found


def _targets() -> dict[str, str | type[Method] | importlib.metadata.EntryPoint]:
    targets: dict[str, str | type[Method] | importlib.metadata.EntryPoint] = dict(_registered)
    for name, ep in _entry_points().items():
        is_builtin = ep.dist is not None and ep.dist.name == _BUILTIN_DIST
        if is_builtin or name not in targets:
            targets[name] = ep
    return targets


def method_names() -> list[str]:
    return sorted(_targets())


def _load_target(target: str | type[Method] | importlib.metadata.EntryPoint) -> type[Method]:
    if isinstance(target, type):
        return target
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)
    # an entry point: importlib.metadata's, or the importlib_metadata backport's once that is on
    # sys.meta_path (deepspeed puts it there), so no isinstance check against the stdlib class
    return target.load()


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``; unknown names get "did you mean"."""
    from harness.method import Method

    targets = _targets()
    if name not in targets:
        raise unknown_name(
            "method",
            name,
            targets,
            " Plug-ins register under the entry-point group 'harness.methods' or are imported "
            f"with --plugins MODULE / {PLUGINS_ENV}.",
        )
    cls = _load_target(targets[name])
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise HarnessError(f"method {name!r} points at {cls!r}, which is not a harness Method.")
    return cls


IMPORTED_PLUGINS: list[str] = []  # modules import_plugins imported (they may register mteb tasks too)


def import_plugins(modules: Iterable[str] = ()) -> None:
    """Import plug-in modules named explicitly on the command line or in ``HARNESS_PLUGINS``."""
    from_env = [m for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    for module in [*from_env, *modules]:
        try:
            importlib.import_module(module.strip())
        except ImportError as exc:
            source = "--plugins" if module in modules else PLUGINS_ENV
            raise HarnessError(f"{source} {module!r}: cannot import it ({exc}).") from None
        IMPORTED_PLUGINS.append(module.strip())
