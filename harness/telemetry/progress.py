"""Progress display for training and encoding: rich bars on a terminal, plain lines when piped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_LINES_PER_STAGE = 10  # piped output: a line every tenth of a stage...
PLAIN_MAX_SILENCE_S = 60.0  # ...and at least once a minute


def _bar(*after: ProgressColumn) -> tuple[ProgressColumn, ...]:
    """A spinner, the task's name, its bar and count, then ``after``."""
    return (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *after)


@contextmanager
def encoding_progress(console: Console, label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Yields a hook the encoder calls with the number of texts it just encoded: a bar with the
    task's ``total`` texts (when known) and the time left on a terminal; when piped, a line as the
    task starts and one after each silent minute."""
    if not console.is_terminal:
        yield _plain_encoding(console, label, total)
        return
    columns = _bar(TextColumn("texts"), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"Encoding {label}", total=total)
        yield lambda n: progress.advance(task, n)


def _plain_encoding(console: Console, label: str, total: int | None) -> Callable[[int], None]:
    of = "" if total is None else f"/{total}"
    console.print(f"  evaluating {label}: {'texts' if total is None else f'{total} texts'} to encode", highlight=False)
    start = last = time.monotonic()
    done = 0

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= PLAIN_MAX_SILENCE_S:
            rate = done / max(now - start, 1e-9)
            left = f", about {(total - done) / rate:.0f} s left" if total is not None and rate > 0 else ""
            console.print(f"  {label}: {done}{of} texts encoded ({rate:.0f} texts/s{left})", highlight=False)
            last = now

    return advance


@contextmanager
def training_progress(console: Console, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yields ``update(stage, step, total, loss, lr, tokens_per_s)`` for the training loop: a live
    bar on a terminal, plain lines when output is piped (CI, nohup, batch jobs)."""
    if enabled and not console.is_terminal:
        yield _plain_lines(console)
        return
    columns = _bar(
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[tps]:.0f} tok/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not enabled) as progress:
        tasks: dict[str, object] = {}

        def update(stage: str, step: int, total: int, loss: float, lr: float, tps: float) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"Training {stage}", total=total, loss=loss, lr=lr, tps=tps)
            progress.update(tasks[stage], completed=step, loss=loss, lr=lr, tps=tps)

        yield update


def _plain_lines(console: Console) -> Callable[..., None]:
    """One line at a stage's first and last step, every tenth of it, and after a silent minute."""
    last_line: dict[str, float] = {}

    def update(stage: str, step: int, total: int, loss: float, lr: float, tps: float) -> None:
        now = time.monotonic()
        every = max(1, total // PLAIN_LINES_PER_STAGE)
        quiet_too_long = now - last_line.get(stage, now) >= PLAIN_MAX_SILENCE_S
        if step == 1 or step == total or step % every == 0 or quiet_too_long:
            console.print(
                f"  {stage} step {step}/{total}  loss {loss:.4f}  lr {lr:.2e}  {tps:.0f} tok/s",
                highlight=False,
                soft_wrap=True,
            )
            last_line[stage] = now

    return update
