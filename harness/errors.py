"""The one error type the CLI turns into a clean message and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """Bad input or an unusable environment: shown as one paragraph, never a traceback."""

    exit_code = 2


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> HarnessError:
    """An error for an unknown ``kind`` called ``name``, with "did you mean" and the list."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    suggestion = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(known) if known else "(none)"
    return HarnessError(f"unknown {kind} {name!r}.{suggestion} Known: {listing}.{hint}")
