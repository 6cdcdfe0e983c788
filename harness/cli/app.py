"""The typer app, its consoles, and the options and helpers every command group shares."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="harness",
    help=(
        "Train, evaluate and compare LLM embedding methods on MTEB; every run lands in a leaderboard: "
        "a SQLite file (./harness.db by default) or a team's PostgreSQL (--db postgresql://user@host/db).\n\n"
        "Examples:\n\n```\n"
        "harness run                          # the offline default\n"
        "harness run --method echo            # a training-free method\n"
        "harness compare --baseline 1         # the latest runs against run 1\n```\n\n"
        "With no options, `harness run` runs the offline default: AutoRegEmbed "
        "(quick preset) trained on smollm2-135m with the offline data, evaluated on the offline tasks. "
        "`harness COMMAND --help` shows each command's examples."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
_closing = contextlib.ExitStack()  # what the running command opened, closed when it ends


def close_when_done(close: Callable[[], object]) -> None:
    """Call ``close`` when the running command ends, however it ends (several commands can run
    in one process: a test, a notebook)."""
    _closing.callback(close)


@app.callback()
def _each_command(context: typer.Context) -> None:
    context.call_on_close(_closing.close)


console = Console()
err_console = Console(stderr=True)

DEFAULT_DB = "harness.db"
ROW_LIMIT = 2**31 - 1  # --last / --limit beyond this would overflow the query
DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="HARNESS_DB",
        show_default=True,
        help="Leaderboard: a SQLite file on a local disk, or a URL such as postgresql://user@host/db (env HARNESS_DB).",
    ),
]
# metavar "": shown as a flag in help, not as "--json <bool>"
JsonOption = Annotated[
    bool, typer.Option("--json", metavar="", help="Print a JSON list of objects instead of a table.")
]
PluginsOption = Annotated[
    Optional[list[str]],
    typer.Option("--plugins", help="Import this plug-in module by name (repeatable; env HARNESS_PLUGINS)."),
]


def split_items(items: list[str] | None) -> list[str] | None:
    """``--tasks a,b`` as ``--tasks a --tasks b``; an existing path keeps its commas."""
    if not items:
        return items

    def whole(item: str) -> bool:
        try:
            return "," not in item or Path(item).exists()
        except OSError:
            return True  # not a usable path either: the task checks say so

    return [part.strip() for item in items for part in ([item] if whole(item) else item.split(","))]


def raise_usage(message: str) -> None:
    from harness.errors import HarnessError

    raise HarnessError(message)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


StatusOption = Annotated[
    Optional[list[str]],
    typer.Option("--status", help="Only runs with this status: running, finished, failed, interrupted (repeatable)."),
]


def chosen_statuses(given: list[str] | None) -> list[str] | None:
    from harness.errors import unknown_name
    from leaderboard.store import STATUSES

    for status in given or []:
        if status not in STATUSES:
            raise unknown_name("--status", status, STATUSES)
    return list(given) if given else None


def main() -> None:
    # The libraries a command imports (mteb, torch, transformers) make millions of objects and few
    # cycles: the cyclic collector run every 10,000 new objects instead of 700 spares about 0.6 s
    # of their import; what is garbage is still collected, a little later.
    gc.set_threshold(10_000, 10, 10)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # our own progress display replaces the libraries' tqdm bars (transformers' GGUF reader draws
    # a plain tqdm its logging switch does not reach); tqdm reads this when it is first imported
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        app(prog_name="harness")
    except SystemExit as done:
        if "torch.distributed" in sys.modules:  # never imported by light commands such as --help
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                from harness.ranks import exit_process

                exit_process(done.code)
        raise
    finally:
        # The command is over: what is still alive stays so until the process ends. Freezing it
        # spares the interpreter's last collection of every object the libraries made (about
        # 1 s once mteb and torch are imported); atexit handlers and module teardown still run.
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
