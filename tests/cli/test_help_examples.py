"""`harness` and every command's --help show examples of the command first, within 80 columns."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from harness.cli import app

COMMANDS = sorted(get_command(app).commands)


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"}, terminal_width=80)
    return result.output


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_opens_with_examples_within_80_columns(command):
    text = _help(*([command, "--help"] if command else []))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    start = next(i for i, line in enumerate(lines) if line.strip() == "Examples:")
    source = (get_command(app).commands[command].help if command else app.info.help) or ""
    written = [line.strip() for line in source.split("```")[1].splitlines() if line.strip()]
    shown = [line.strip() for line in lines[start + 1 :]]
    assert written and all(line in shown for line in written), (written, shown)  # each example on one line, intact
    assert all(line.startswith(f"harness {command or ''}".strip()) for line in written), written
    options = next((i for i, line in enumerate(lines) if "Options" in line or "Arguments" in line), len(lines))
    assert start < options  # before the option tables


def test_every_command_is_checked():
    assert {"run", "eval", "compare", "leaderboard", "show", "export", "methods", "mine"} <= set(COMMANDS) and len(
        COMMANDS
    ) >= 14
