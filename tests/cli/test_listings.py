"""What can be run (harness/cli/listings.py): `harness tasks` lists mteb's tasks by type and word,
beside the presets and local formats, and suggests a misspelt type."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import cli_ok

runner = CliRunner()


def test_tasks_lists_mteb_tasks_by_type_and_word(fresh_mteb_catalog):
    import mteb

    listed = json.loads(cli_ok("tasks", "--type", "retrieval", "--json").stdout)
    expected = {
        t.metadata.name for t in mteb.get_tasks(task_types=["Retrieval"]) if set(t.metadata.modalities) == {"text"}
    }
    assert {row["name"] for row in listed} == expected and "SciFact" in expected
    sick = json.loads(cli_ok("tasks", "--search", "SICK", "--json").stdout)
    assert sick and all("sick" in row["name"].lower() for row in sick) and "SICK-R" in {row["name"] for row in sick}
    scifact = next(row for row in listed if row["name"] == "SciFact")
    assert scifact["type"] == "Retrieval" and scifact["languages"] == ["eng"]
    overview = cli_ok("tasks").stdout
    assert "offline" in overview and "STS pairs" in overview and f"Retrieval {len(expected)}" in overview
    wrong = runner.invoke(app, ["tasks", "--type", "Retreival"])
    assert wrong.exit_code == 2 and "Did you mean 'Retrieval'" in wrong.output
