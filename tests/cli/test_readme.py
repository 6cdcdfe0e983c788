"""The README's plug-in is complete as written: saved as its file, it registers, lists its option
and runs with the README's command (on a tiny backbone and task file instead of the defaults)."""

from __future__ import annotations

import math
import re
import shlex

from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.conftest import PROJECT


def test_the_readmes_plugin_runs_as_written(tmp_path, tiny_llama_dir, small_sts_file, monkeypatch):
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n# (my_echo\.py)\n(.*?)```", text, re.S)
    assert code is not None, "the README's plug-in block"
    (tmp_path / code.group(1)).write_text(code.group(2), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    command = shlex.split(re.search(r"harness (run --plugins my_echo [^#\n]*)", text).group(1))
    listed = CliRunner().invoke(app, ["methods", "my-echo", "--plugins", "my_echo"])
    assert listed.exit_code == 0 and "Say it again" in listed.output
    at = command.index("--tasks")
    command[at + 1] = str(small_sts_file)  # the README's offline tasks, cut to a tiny file
    db = tmp_path / "h.db"
    result = CliRunner().invoke(app, [*command, "--backbone", str(tiny_llama_dir), "--db", str(db)])
    assert result.exit_code == 0, result.output
    record = open_store(db).get_run(1)
    assert record["method"] == "my-echo" and math.isfinite(record["scores"]["tiny-sts"])
