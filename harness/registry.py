"""Method registry: the ``harness.methods`` entry-point group plus explicitly imported plug-ins.

Built-in methods are declared in this project's ``pyproject.toml`` under the same entry-point group
an out-of-tree package uses, so the two are found the same way. On a name clash the built-in wins.
Plug-in modules that are not installed can be imported by explicit name (``--plugins mod`` or
``HARNESS_PLUGINS=mod1,mod2``) and call :func:`register`. ``HARNESS_PLUGINS`` is read wherever a
method is looked up (every command, ``load_encoder``); ``--plugins`` on every command that builds
a method. Nothing is imported by guessing.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError, unknown_name
from harness.method import Method

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
    import_plugins()
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
    """Import plug-in modules named explicitly on the command line or in ``HARNESS_PLUGINS``
    (each once)."""
    modules = [m.strip() for m in modules]
    for position, module in enumerate(modules, start=1):
        if not module:
            raise HarnessError(f"--plugins item {position} is blank; give a module name, e.g. my_methods.")
    from_env = [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    for module in [*from_env, *modules]:
        if module in IMPORTED_PLUGINS:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            source = "--plugins" if module in modules else PLUGINS_ENV
            raise HarnessError(f"{source} {module!r}: cannot import it ({exc}).") from None
        except Exception as exc:  # a plug-in that fails as it is imported: one message, no traceback
            source = "--plugins" if module in modules else PLUGINS_ENV
            raise HarnessError(f"{source} {module!r}: importing it failed ({type(exc).__name__}: {exc}).") from None
        IMPORTED_PLUGINS.append(module)


def provenance(cls: type) -> dict[str, str | None]:
    """Where a method's code comes from: its module, the distribution that installed it (with its
    version; none for a module imported by name) and a sha256 of its source: of the file, or for a
    package's ``__init__`` of every ``.py`` file below it (relative path, NUL, bytes, in order)."""

    module = cls.__module__
    top = module.split(".")[0]
    distributions = importlib.metadata.packages_distributions().get(top, [])
    distribution = distributions[0] if distributions else None
    version = None
    if distribution is not None:
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            version = None
    file = getattr(sys.modules.get(module), "__file__", None)
    digest = None
    if file:
        path = Path(file)
        hasher = hashlib.sha256()
        if path.name != "__init__.py":
            hasher.update(path.read_bytes())
        for source in sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else []:
            hasher.update(source.relative_to(path.parent).as_posix().encode() + b"\0" + source.read_bytes())
        digest = hasher.hexdigest()
    return {"module": module, "distribution": distribution, "version": version, "source_sha256": digest}
