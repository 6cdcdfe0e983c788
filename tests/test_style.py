"""The code is formatted and linted as pyproject.toml's [tool.ruff] says: `ruff format --check` and
`ruff check` pass over every Python folder of the project."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["harness", "methods", "leaderboard", "tests", "benchmarks"]


def _ruff() -> list[str]:
    found = Path(sys.executable).with_name("ruff")
    if found.exists():
        return [str(found)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.fail("ruff is not installed: it is part of the test extra (pip install -e '.[test]')")


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "check"])
def test_ruff_passes(command):
    done = subprocess.run([*_ruff(), *command, *FOLDERS], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
