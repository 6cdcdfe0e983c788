"""Paths a user gives (task, training, config and database files; output folders; export targets),
checked before they are read or written, each problem one message naming the option.

A FIFO or a device is refused before it is opened (reading one could block forever); symlink
loops, over-long names, a file standing where a folder must be and ``~user`` for an unknown user
get their own words instead of an ``OSError``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.errors import HarnessError

_WHY = {
    errno.ELOOP: "the path runs into a loop of symbolic links",
    errno.ENAMETOOLONG: "a name in the path is longer than the operating system allows",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EACCES: "permission denied",
    errno.ENOENT: "no such file or folder",
}


def expand(path: str | os.PathLike[str], label: str) -> Path:
    """``path`` with ``~`` expanded; ``~name`` of an unknown user is an error, not a folder."""
    text = os.fspath(path)
    if "\x00" in text:
        raise HarnessError(f"{label} {text!r}: a path cannot contain a NUL character.")
    expanded = os.path.expanduser(text)
    if text.startswith("~") and expanded == text:
        user = text[1:].split(os.sep, 1)[0]
        raise HarnessError(f"{label} {text}: there is no user {user!r} for ~{user} to name.")
    return Path(expanded)


def status(path: Path, label: str) -> os.stat_result | None:
    """``os.stat`` of ``path`` (following links), None when nothing is there; other failures as
    one message."""
    try:
        return path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise HarnessError(f"{label} {path}: a symbolic link to nothing ({os.readlink(path)}).") from None
        return None
    except OSError as exc:
        raise HarnessError(f"{label} {path}: {_WHY.get(exc.errno, exc.strerror or str(exc))}.") from None


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def readable_file(path: str | os.PathLike[str], label: str) -> Path:
    """An existing regular file that can be read."""
    found = expand(path, label)
    info = status(found, label)
    if info is None:
        raise HarnessError(f"{label} {found}: no such file.")
    if not stat.S_ISREG(info.st_mode):
        raise HarnessError(f"{label} {found}: is {_kind(info.st_mode)}, not a file.")
    if not os.access(found, os.R_OK):
        raise HarnessError(f"{label} {found}: permission denied.")
    return found


def _writable_parent(target: Path, label: str) -> None:
    parent = target.parent
    info = status(parent, label)
    if info is None:
        raise HarnessError(f"{label} {target}: the folder {parent} does not exist.")
    if not stat.S_ISDIR(info.st_mode):
        raise HarnessError(f"{label} {target}: {parent} is {_kind(info.st_mode)}, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise HarnessError(f"{label} {target}: the folder {parent} cannot be written.")


def writable_file(path: str | os.PathLike[str], label: str, *, replace: bool = True) -> Path:
    """A file that may be created (or, with ``replace``, overwritten) in an existing folder."""
    target = expand(path, label)
    info = status(target, label)
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise HarnessError(f"{label} {target}: is {_kind(info.st_mode)}, not a file to write.")
        if not replace:
            raise HarnessError(f"{label} {target}: the file exists already; choose a new name.")
        if not os.access(target, os.W_OK):
            raise HarnessError(f"{label} {target}: the file cannot be written.")
    _writable_parent(target, label)
    return target


def writable_folder(path: str | os.PathLike[str], label: str) -> Path:
    """A folder that exists and can be written, or can be created (its nearest existing
    ancestor is a writable folder)."""
    target = expand(path, label)
    probe = target
    while True:
        info = status(probe, label)
        if info is not None:
            break
        if probe.parent == probe:
            raise HarnessError(f"{label} {target}: no part of the path exists.")
        probe = probe.parent
    if not stat.S_ISDIR(info.st_mode):
        what = "is" if probe == target else f"cannot be made: {probe} is"
        raise HarnessError(f"{label} {target} {what} {_kind(info.st_mode)}, not a folder.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise HarnessError(f"{label} {target}: {probe} is not a writable folder.")
    _try_writing(target, probe, label)
    return target


def _try_writing(target: Path, existing: Path, label: str) -> None:
    """Make the folders ``target`` lacks below ``existing`` and a file in it, then remove what was
    made: permissions do not tell (root may write anywhere; ``/proc`` refuses new entries even so)."""
    made: list[Path] = []
    try:
        for folder in reversed([target, *target.parents][: len(target.parts) - len(existing.parts)]):
            try:
                folder.mkdir()
            except FileExistsError:
                if folder.is_dir():
                    continue  # made meanwhile by another process (or `new/..`): not ours to remove
                raise
            made.append(folder)
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        raise HarnessError(f"{label} {target}: cannot be written there ({exc.strerror or exc}).") from None
    finally:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()


def cache_root() -> Path:
    """Where the harness keeps what it can rebuild (a dequantised backbone, mteb's task list):
    ``HARNESS_CACHE``, default ``~/.cache/harness``."""
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness")).expanduser()


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a hidden partial file beside it, then a
    rename; the partial is removed if anything fails (the ``OSError`` is raised)."""
    _write_whole(path, text, os.replace)


def create_text(path: Path, text: str) -> None:
    """As :func:`replace_text`, but never over an existing file: the partial is hard-linked in,
    which raises ``FileExistsError`` if ``path`` exists by then."""
    _write_whole(path, text, os.link)


def _write_whole(path: Path, text: str, publish: Callable[[Path, Path], None]) -> None:
    partial = path.with_name(f".{path.name[:200]}.{os.getpid()}.partial")  # one per writer
    try:
        partial.write_text(text, encoding="utf-8")
        publish(partial, path)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
