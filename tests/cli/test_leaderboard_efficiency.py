"""`harness leaderboard --efficiency`: what evaluating the ranked tasks cost each run, in the table
and in --json, against arithmetic done here on the numbers written; without it, the output the
command gave before the option existed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.leaderboard.test_efficiency import IDS, build_board, expected

runner = CliRunner()
# `harness leaderboard --tasks A,B` on build_board's runs, as printed before --efficiency existed
# (its runs keep no per-item results, so whether neighbours are separable is unknown: N?)
BEFORE = (
    "Leaderboard over 2 task(s), scores x100                           \n"
    "                                                                  \n"
    "  Rank   Run   Method    Backbone   Seed    Mean       A       B  \n"
    " ──────────────────────────────────────────────────────────────── \n"
    "     1    #4   missing   b             0   80.00   80.00   80.00  \n"
    "    2?    #1   fast      b             0   60.00   50.00   70.00  \n"
    "    3?    #2   resumed   b             0   50.00   60.00   40.00  \n"
    "    4?    #3   old       b             0   30.00   30.00   30.00  \n"
    "                                                                  \n"
    "N?: whether it is separable from the run above is unknown (no     \n"
    "per-item results)                                                 \n"
)
FIELDS = {
    "run_id",
    "status",
    "method",
    "backbone",
    "task_spec",
    "tasks",
    "scores",
    "task_versions",
    "task_types",
    "contamination",
    "config_hash",
    "seed",
    "started_at",
    "ended_at",
    "error",
    "mean",
    "rank",
    "separable_from_above",
}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    return str(build_board(tmp_path_factory.mktemp("efficiency") / "h.db"))


def _leaderboard(board: str, *args: str) -> str:
    result = runner.invoke(app, ["leaderboard", "--db", board, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


PARAMETERS = {134_515_008: "134.5M", 22_688: "22.7K", 1_000_000: "1.0M", None: "-"}  # build_board's model sizes


def _shown(numbers: dict) -> list[str]:
    """``expected``'s numbers as the table should print them, formatted here."""

    def fixed(value, spec):
        return "-" if value is None else format(value, spec)

    def percent(rate):
        return "-" if rate is None else f"{100 * rate:.1f}%"

    peak = numbers["peak_memory_bytes"]
    return [
        fixed(numbers["eval_seconds"], ".2f"),
        fixed(numbers["texts_per_s"], ".1f"),
        fixed(numbers["tokens_per_s"], ".0f"),
        percent(numbers["memo_hit_rate"]),
        percent(numbers["cache_hit_rate"]),
        fixed(None if peak is None else peak / 2**20, ".0f"),
        fixed(numbers["embed_dim"], "d"),
        PARAMETERS[numbers["n_parameters"]],
    ]


@pytest.mark.parametrize("tasks", [("A", "B"), ("A", "B", "C")])
def test_json_has_each_runs_efficiency_over_the_ranked_tasks(board, tasks):
    extra = ["--tasks", ",".join(tasks)] if tasks != ("A", "B", "C") else []  # A, B, C: the latest run's tasks
    ranked = json.loads(_leaderboard(board, "--efficiency", "--json", *extra))
    assert sorted(row["run_id"] for row in ranked) == sorted(IDS.values())
    for row in ranked:
        assert row["efficiency"] == pytest.approx(expected(row["method"], tasks)), row["method"]
    fast = next(row for row in ranked if row["method"] == "fast")["efficiency"]
    assert fast["peak_memory_bytes"] == (900 if "C" in tasks else 500) * 2**20  # C's evaluation only when C is ranked


def test_the_table_shows_the_efficiency_columns(board):
    output = _leaderboard(board, "--efficiency", "--tasks", "A,B")
    assert output.startswith(BEFORE)  # the scores as before, the cost beneath
    cost = output[len(BEFORE) :].splitlines()
    assert cost[0].strip() == "Evaluation cost over the 2 ranked task(s)"
    assert cost[2].split() == ["Tokens/", "Peak"]  # two header lines, to keep within 80 columns
    assert cost[3].split() == ["Run", "Eval", "s", "Texts/s", "s", "Memo", "%", "Cache", "%", "MiB", "Dim", "Params"]
    rows = {line.split()[0]: line.split()[1:] for line in cost if line.strip().startswith("#")}
    assert list(rows) == ["#4", "#1", "#2", "#3"]  # in rank order
    for method, run_id in IDS.items():
        assert rows[f"#{run_id}"] == _shown(expected(method, ("A", "B"))), method
    assert rows["#4"] == ["-", "-", "-", "-", "-", "-", "64", "1.0M"]  # B's timing is missing: no sums
    assert rows["#3"][3] == "-" and rows["#3"][0] == "8.00"  # an older run: no memo numbers
    assert max(map(len, output.splitlines())) <= 80


def test_without_efficiency_the_output_is_as_before(board):
    assert _leaderboard(board, "--tasks", "A,B") == BEFORE
    for row in json.loads(_leaderboard(board, "--tasks", "A,B", "--json")):
        assert set(row) == FIELDS
