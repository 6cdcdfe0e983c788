"""Bad input, unusable files, failed and interrupted runs, as one message and an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape

from harness.cli.app import DEFAULT_DB, err_console
from harness.cli.database import db_label


@contextmanager
def user_errors(db: str | None = None) -> Iterator[None]:
    """Bad input and unusable files become one message and exit code 2; a started run that
    failed for a reason the user can act on (NaN loss, out of memory) one message and exit 1;
    Ctrl-C or SIGTERM one line saying how to resume, exit code 130."""
    from harness.errors import HarnessError, RunFailed, RunInterrupted

    try:
        yield
    except HarnessError as exc:  # leaderboard.errors.LeaderboardError among them
        err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except RunFailed as exc:
        err_console.print(f"[bold red]Run failed:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except RunInterrupted as exc:
        where = "" if db is None or db == DEFAULT_DB else f" --db {db_label(db)}"
        err_console.print(
            f"Run #{exc.run_id} {exc}: recorded as interrupted with the steps done so far; continue "
            f"it with `harness run --resume {exc.run_id}{where}`.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(RunInterrupted.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("Interrupted before the run was recorded; nothing was written.", highlight=False)
        raise typer.Exit(RunInterrupted.exit_code) from None
    except Exception as exc:
        from leaderboard.database import is_lock_timeout

        if not is_lock_timeout(exc):
            raise
        err_console.print(
            f"[bold red]Error:[/] the leaderboard {db_label(db) if db else ''} stayed locked by another writer for "
            "60 s; nothing was changed by this command. Try again, or check for a stuck process.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
