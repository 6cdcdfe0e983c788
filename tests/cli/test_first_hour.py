"""The first hour of a new user (issue 20): quick checks, progress while piped, task discovery,
where results live, tables at 80 columns and the README's walk-through commands."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import write_sts_tsv

runner = CliRunner()


def _ok(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _untrained(db, backbone, task, *extra: str):
    return _ok(
        "run", "--method", "untrained-mean", "--backbone", str(backbone), "--tasks", str(task), "--db", str(db), *extra
    )


def test_limit_evaluates_the_first_items_and_is_never_ranked_with_full_runs(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    stem = small_sts_file.stem
    _untrained(db, tiny_llama_dir, small_sts_file)
    _untrained(db, tiny_llama_dir, small_sts_file, "--limit", "6")
    # the same six pairs as a file of their own: the quick check's score must be exactly theirs
    rows = [line.split("\t") for line in small_sts_file.read_text().splitlines()[1:7]]
    first = write_sts_tsv(tmp_path / "first6.tsv", [(a, b, float(s)) for a, b, s in rows])
    _untrained(db, tiny_llama_dir, first)
    full, quick, alone = json.loads(_ok("compare", "1", "2", "3", "--db", str(db), "--json").stdout)
    assert quick["scores"][stem] == alone["scores"]["first6"] != full["scores"][stem]
    assert quick["task_versions"][stem] == full["task_versions"][stem] + "+first6"
    (record,) = json.loads(_ok("show", "2", "--db", str(db), "--json").stdout)
    assert record["config"]["limit"] == 6 and record["task_spec"].endswith("--limit 6")
    (plain,) = json.loads(_ok("show", "1", "--db", str(db), "--json").stdout)
    assert plain["config"]["limit"] is None and plain["config_hash"] != record["config_hash"]
    ranked = json.loads(_ok("leaderboard", "--tasks", str(small_sts_file), "--db", str(db), "--json").stdout)
    assert [r["run_id"] for r in ranked] == [1]  # the newest run is the quick check: still the full one ranks
    shown = _ok("compare", "1", "2", "--db", str(db)).stdout
    assert f"{stem}@{full['task_versions'][stem][:8]}+first6" in shown
    with sqlite3.connect(db) as conn:  # browse's canned leaderboard leaves quick checks out too
        from leaderboard.browse import QUERIES

        rows = conn.execute(QUERIES["leaderboard"]["sql"], {"task_spec": ""}).fetchall()
    assert sorted(row[0] for row in rows) == [1, 3]


def test_limit_is_checked_before_anything_is_recorded(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    result = runner.invoke(
        app,
        [
            "run",
            "--method",
            "untrained-mean",
            "--backbone",
            str(tiny_llama_dir),
            "--tasks",
            str(small_sts_file),
            "--limit",
            "0",
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 2 and "--limit" in result.output and not db.exists()


def test_a_piped_evaluation_says_what_it_encodes(tmp_path, tiny_llama_dir, small_sts_file):
    out = _untrained(tmp_path / "h.db", tiny_llama_dir, small_sts_file).stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if f"evaluating {small_sts_file.stem}" in line)
    assert "24 texts to encode" in lines[start]  # 12 pairs, two sides each
    assert any(line.strip().startswith(f"{small_sts_file.stem}: cosine_spearman") for line in lines[start + 1 :])


def test_piped_encoding_speaks_at_least_once_a_minute(monkeypatch):
    import io

    from rich.console import Console

    from harness.telemetry import progress

    clock = iter([0.0, 30.0, 61.0, 62.0, 130.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    buffer = io.StringIO()
    with progress.encoding_progress(Console(file=buffer, force_terminal=False, width=80), "STSB", 400) as advance:
        for _ in range(4):
            advance(50)
    lines = buffer.getvalue().splitlines()
    # start at 0 s; 30 s: quiet; 61 s: a line (100 done, ~1.6 texts/s); 62 s: quiet; 130 s: a line
    assert lines[0] == "  evaluating STSB: 400 texts to encode"
    assert lines[1].startswith("  STSB: 100/400 texts encoded (2 texts/s, about 183 s left)")
    assert lines[2].startswith("  STSB: 200/400 texts encoded") and len(lines) == 3


def test_the_terminal_bar_has_a_total_and_the_time_left():
    import io

    from rich.console import Console

    from harness.telemetry import progress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with progress.encoding_progress(console, "STSB", 400) as advance:
        advance(100)
        console.file.flush()
    shown = buffer.getvalue()
    assert "/400" in shown and "left" in shown


def _fresh_catalog(monkeypatch, tmp_path):
    from harness.evaluation import mteb_catalog as task_catalog

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    task_catalog.catalog.cache_clear()
    return task_catalog


def test_tasks_lists_mteb_tasks_by_type_and_word(monkeypatch, tmp_path):
    import mteb

    _fresh_catalog(monkeypatch, tmp_path)
    listed = json.loads(_ok("tasks", "--type", "retrieval", "--json").stdout)
    expected = {
        t.metadata.name for t in mteb.get_tasks(task_types=["Retrieval"]) if set(t.metadata.modalities) == {"text"}
    }
    assert {row["name"] for row in listed} == expected and "SciFact" in expected
    sick = json.loads(_ok("tasks", "--search", "SICK", "--json").stdout)
    assert sick and all("sick" in row["name"].lower() for row in sick) and "SICK-R" in {row["name"] for row in sick}
    scifact = next(row for row in listed if row["name"] == "SciFact")
    assert scifact["type"] == "Retrieval" and scifact["languages"] == ["eng"]
    overview = _ok("tasks").stdout
    assert "offline" in overview and "STS pairs" in overview and f"Retrieval {len(expected)}" in overview
    wrong = runner.invoke(app, ["tasks", "--type", "Retreival"])
    assert wrong.exit_code == 2 and "Did you mean 'Retrieval'" in wrong.output


def test_an_unknown_task_name_gets_a_suggestion_without_importing_mteb(monkeypatch, tmp_path):
    import subprocess
    import sys

    catalog = _fresh_catalog(monkeypatch, tmp_path)
    catalog.catalog()  # the first use writes the list for this mteb version
    (written,) = (tmp_path / "cache").glob("mteb-tasks-*.json")
    probe = (
        "import sys\nfrom harness.errors import HarnessError\nfrom harness.evaluation.tasks import resolve_tasks\n"
        "try:\n    resolve_tasks(['STSBenchmrk'])\nexcept HarnessError as e:\n    print(e)\n"
        "print('mteb imported' if 'mteb' in sys.modules else 'mteb not imported')\n"
    )
    env = {**__import__("os").environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    assert "Did you mean 'STSBenchmark'" in out and "harness tasks --search" in out
    assert out.strip().endswith("mteb not imported")
    written.write_text("{ damaged")  # a damaged list is rebuilt from mteb, never trusted
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    assert "Did you mean 'STSBenchmark'" in out and json.loads(written.read_text())["tasks"]


def test_every_command_names_its_leaderboard_first(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    first = _untrained(db, tiny_llama_dir, small_sts_file)
    assert first.stderr.splitlines()[0] == f"Leaderboard: {db} (a new file)"
    commands = [
        ["runs"],
        ["runs", "--json"],
        ["compare"],
        ["compare", "1", "--json"],
        ["leaderboard"],
        ["show", "1"],
        ["export", "--csv", "-"],
        ["export", "1", "--mteb", str(tmp_path / "mteb")],
        ["delete", "1"],
        ["eval", "1", "--tasks", str(small_sts_file)],
        ["plot", "1", "--out", str(tmp_path / "loss.png")],
        ["mine", str(small_sts_file), "--miner", "run:1", "-o", str(tmp_path / "mined.jsonl")],
    ]
    for command in commands:
        result = runner.invoke(app, [*command, "--db", str(db)])
        assert result.stderr.splitlines()[0] == f"Leaderboard: {db}", (command, result.stderr)
    for command in (["runs"], ["compare", "1"]):  # where nothing is yet: where it looked, and how to point elsewhere
        result = runner.invoke(app, [*command, "--db", str(tmp_path / "none.db")])
        lines = result.stderr.splitlines()
        assert lines[0] == f"Leaderboard: {tmp_path / 'none.db'}" and "--db / HARNESS_DB" in result.stderr, command


def _column(table: str, header: str) -> str:
    """The text of one column of a rendered table, its folded lines joined."""
    lines = table.splitlines()
    head = next(i for i, line in enumerate(lines) if f" {header} " in line)
    start = lines[head].index(f" {header} ") + 1
    after = lines[head][start + len(header) :]
    end = start + len(header) + len(after) - len(after.lstrip()) - 1 if after.strip() else None
    rows = lines[head + 2 :]
    rows = rows[
        : next((i for i, line in enumerate(rows) if not line.strip()), len(rows))
    ]  # the table ends at a blank line
    return "".join(line[start:end].strip() for line in rows)


def test_tables_are_readable_at_80_columns(tmp_path, tiny_llama_dir, small_sts_file, monkeypatch):
    import shutil

    from rich.cells import cell_len

    from harness.cli.app import console

    monkeypatch.setattr(console, "width", 80)
    backbone = tmp_path / "a-tiny-llama-backbone-folder-with-a-long-name"
    shutil.copytree(tiny_llama_dir, backbone)
    db = tmp_path / "h.db"
    second = tmp_path / "second-sts-file-with-a-long-name.tsv"
    second.write_text(small_sts_file.read_text())
    methods = ["untrained-mean", "untrained-last", "prompteol"]
    for method in methods:
        _ok(
            "run",
            "--method",
            method,
            "--backbone",
            str(backbone),
            "--tasks",
            str(small_sts_file),
            "--tasks",
            str(second),
            "--db",
            str(db),
        )

    def shown(*args: str) -> str:
        out = _ok(*args).stdout
        assert "…" not in out and max(map(cell_len, out.splitlines())) <= 80, out
        return out

    for command in (
        ["runs"],
        ["compare"],
        ["compare", "--diff"],
        ["leaderboard"],
        ["methods"],
        ["backbones"],
        ["tasks"],
    ):
        out = (
            shown(*command, "--db", str(db))
            if command[0] not in ("methods", "backbones", "tasks")
            else shown(*command)
        )
        if command[0] in ("runs", "compare", "leaderboard", "methods"):
            assert all(any(m in line for line in out.splitlines()) for m in methods), (command, out)  # never folded
        if command[0] in ("runs", "leaderboard"):
            assert _column(out, "Backbone") == str(backbone) * len(methods), command  # folded, but whole
    board = shown("leaderboard", "--db", str(db))
    assert second.stem in board.replace("\n", "") or f"not shown at this width: {second.stem}" in " ".join(
        board.split()
    )
    costs = shown("leaderboard", "--efficiency", "--db", str(db))
    assert (
        "Evaluation cost over the 2 ranked task(s)" in costs
        and "Memo %" in costs
        and "Cache %" in costs
        and "22.7K" in costs
    )
    diff = shown("compare", "--diff", "--db", str(db))
    assert "method_args:" in diff and any(line.strip().startswith("template") for line in diff.splitlines())
    one = shown("methods", "infonce")
    assert "temperature" in one and "0.05" in one and "> 0" in one
    listing = shown("methods")
    assert (
        "temperature" not in listing
        and len([line for line in listing.splitlines() if line.strip().startswith(tuple(methods))]) == 3
    )


def test_export_model_prints_no_third_party_warnings(tmp_path, tiny_llama_dir, small_sts_file):
    import os
    import subprocess
    import sys

    db = tmp_path / "h.db"
    _untrained(db, tiny_llama_dir, small_sts_file)
    done = subprocess.run(  # a fresh process: the libraries' import-time warnings happen there
        [sys.executable, "-m", "harness", "export", "1", "--model", str(tmp_path / "encoder"), "--db", str(db)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    said = (done.stdout + done.stderr).strip().splitlines()
    assert said[0] == f"Leaderboard: {db}" and said[1].startswith("Wrote run #1's encoder"), said
    assert not any(word in done.stdout + done.stderr for word in ("WARNING", "LOAD REPORT", "UNEXPECTED", "Warning"))


def test_compare_baseline_puts_that_run_first_and_differences_against_it(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    for method in ("untrained-mean", "untrained-last", "prompteol"):
        _ok(
            "run",
            "--method",
            method,
            "--backbone",
            str(tiny_llama_dir),
            "--tasks",
            str(small_sts_file),
            "--db",
            str(db),
        )
    runs = json.loads(_ok("compare", "1", "2", "--baseline", "3", "--db", str(db), "--json").stdout)
    assert [r["run_id"] for r in runs] == [3, 1, 2]
    stem = small_sts_file.stem
    base = runs[0]["scores"][stem]
    table = _ok("compare", "1", "2", "--baseline", "3", "--db", str(db)).stdout
    row = next(line for line in table.splitlines() if line.strip().startswith(stem))
    for run in runs[1:]:
        assert f"({100 * (run['scores'][stem] - base):+.2f})" in row
    assert "against #3" in table
    default = json.loads(_ok("compare", "--baseline", "2", "--db", str(db), "--json").stdout)
    assert [r["run_id"] for r in default] == [2, 1, 3]  # the latest runs, the baseline first
    missing = runner.invoke(app, ["compare", "--baseline", "9", "--db", str(db)])
    assert missing.exit_code == 2 and "no run 9" in missing.output


def test_the_docs_name_task_files_where_dev_tasks_writes_them(tmp_path, shared_data):
    import importlib.util
    import re

    from tests.conftest import PROJECT

    spec = importlib.util.spec_from_file_location("dev_tasks", PROJECT / "benchmarks" / "dev_tasks.py")
    dev_tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev_tasks)
    written = {path.name for path in dev_tasks.write(tmp_path / "dev-tasks", shared_data)}
    pattern = re.compile(r"[\w./-]*\b(?:" + "|".join(re.escape(name) for name in written) + r")")
    for doc in [PROJECT / "README.md", *(PROJECT / "docs").glob("*.md")]:
        for found in pattern.findall(doc.read_text(encoding="utf-8")):
            assert found.startswith("dev-tasks/") and found.split("/", 1)[1] in written, (doc.name, found)
