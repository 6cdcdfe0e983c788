"""Rich progress display for encoding (the model-loading display is a rich status spinner)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def encoding_progress(console: Console, label: str) -> Iterator[Callable[[int], None]]:
    """Yields a hook the encoder calls with the number of texts it just encoded."""
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("texts"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"Encoding {label}", total=None)
        yield lambda n: progress.advance(task, n)
