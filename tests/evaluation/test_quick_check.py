"""Quick checks (harness/evaluation/quick_check.py): `--limit N` evaluates a task's first N items,
recorded as a version of its own that is never ranked with full runs; a bad limit records nothing."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import cli_ok, run_args, run_untrained, write_sts_tsv

runner = CliRunner()


def test_limit_evaluates_the_first_items_and_is_never_ranked_with_full_runs(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    stem = small_sts_file.stem
    run_untrained(db, tiny_llama_dir, small_sts_file)
    run_untrained(db, tiny_llama_dir, small_sts_file, "--limit", "6")
    # the same six pairs as a file of their own: the quick check's score must be exactly theirs
    rows = [line.split("\t") for line in small_sts_file.read_text().splitlines()[1:7]]
    first = write_sts_tsv(tmp_path / "first6.tsv", [(a, b, float(s)) for a, b, s in rows])
    run_untrained(db, tiny_llama_dir, first)
    full, quick, alone = json.loads(cli_ok("compare", "1", "2", "3", "--db", str(db), "--json").stdout)
    assert quick["scores"][stem] == alone["scores"]["first6"] != full["scores"][stem]
    assert quick["task_versions"][stem] == full["task_versions"][stem] + "+first6"
    (record,) = json.loads(cli_ok("show", "2", "--db", str(db), "--json").stdout)
    assert record["config"]["limit"] == 6 and record["task_spec"].endswith("--limit 6")
    (plain,) = json.loads(cli_ok("show", "1", "--db", str(db), "--json").stdout)
    assert plain["config"]["limit"] is None and plain["config_hash"] != record["config_hash"]
    ranked = json.loads(cli_ok("leaderboard", "--tasks", str(small_sts_file), "--db", str(db), "--json").stdout)
    assert [r["run_id"] for r in ranked] == [1]  # the newest run is the quick check: still the full one ranks
    shown = cli_ok("compare", "1", "2", "--db", str(db)).stdout
    assert f"{stem}@{full['task_versions'][stem][:8]}+first6" in shown
    with sqlite3.connect(db) as conn:  # browse's canned leaderboard leaves quick checks out too
        from leaderboard.browse import QUERIES

        rows = conn.execute(QUERIES["leaderboard"]["sql"], {"task_spec": ""}).fetchall()
    assert sorted(row[0] for row in rows) == [1, 3]


def test_limit_is_checked_before_anything_is_recorded(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    result = runner.invoke(app, run_args(db, tiny_llama_dir, small_sts_file, "--limit", "0"))
    assert result.exit_code == 2 and "--limit" in result.output and not db.exists()
