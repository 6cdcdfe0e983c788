"""The one error type the CLI turns into a clean message and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """Bad input or an unusable environment: shown as one paragraph, never a traceback."""

    exit_code = 2


class RunFailed(Exception):
    """A started run stopped for a reason the user can act on (shown without a traceback, exit 1)."""

    exit_code = 1


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped a recorded run; it is marked ``interrupted`` and can be resumed."""

    exit_code = 130

    def __init__(self, run_id: int, reason: str) -> None:
        super().__init__(reason)
        self.run_id = run_id


def sentence(*parts: str) -> str:
    """Join message parts into one sentence ending in a single full stop (no "..")."""
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return text.rstrip(".:; ") + "."


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's 'can't allocate memory'."""
    text = str(exc).lower()
    return type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
    )


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> HarnessError:
    """An error for an unknown ``kind`` called ``name``, with "did you mean" and the list."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    suggestion = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(known) if known else "(none)"
    return HarnessError(f"unknown {kind} {name!r}.{suggestion} Known: {listing}.{hint}")
