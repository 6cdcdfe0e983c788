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


@contextmanager
def training_progress(console: Console, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yields ``update(stage, step, total, loss, lr, tokens_per_s)`` for the training loop."""
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[tps]:.0f} tok/s"),
        TimeElapsedColumn(),
    )
    shown = enabled and console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=not shown) as progress:
        tasks: dict[str, object] = {}

        def update(stage: str, step: int, total: int, loss: float, lr: float, tps: float) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"Training {stage}", total=total, loss=loss, lr=lr, tps=tps)
            progress.update(tasks[stage], completed=step, loss=loss, lr=lr, tps=tps)

        yield update
