"""`harness compare` (--diff, --by-config, --baseline, a best-cell mark that survives piping, unfinished
runs pointed to --include-unfinished) and `harness export`."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import cli_ok, run_args, write_board

runner = CliRunner()


def _two_runs(tmp_path):
    from leaderboard.store import open_store

    db = tmp_path / "c.db"
    store = open_store(db)
    base = {"method": "infonce", "backbone": "b", "method_args": {"lr": 2e-4, "steps": 80, "pooling": "mean"}}
    configs = [base, {**base, "method_args": {"lr": 1e-3, "steps": 80, "pooling": "last"}, "seed": 1}]
    for config, score in zip(configs, (0.5, 0.625)):
        run_id = store.start_run(
            method="infonce",
            backbone="b",
            task_spec="t",
            task_names=["T"],
            config=config,
            config_hash="h",
            seed=0,
            environment={},
        )
        store.record_score(run_id, task="T", main_metric="cosine_spearman", main_score=score, details={})
        store.finish_run(run_id)
    store.close()
    return str(db)


def test_diff_lists_only_the_keys_that_differ(tmp_path):
    db = _two_runs(tmp_path)
    result = CliRunner().invoke(app, ["compare", "1", "2", "--diff", "--db", db], terminal_width=200)
    assert result.exit_code == 0, result.output
    table = result.output.split("Config keys that differ", 1)[1]
    rows = [line.strip() for line in table.splitlines()]
    grouped = rows[
        rows.index(next(r for r in rows if r.startswith("method_args:"))) + 1 :
    ]  # the option's keys follow it
    assert any(r.startswith("lr ") and "0.0002" in r and "0.001" in r for r in grouped)
    assert any(r.startswith("pooling ") and "'mean'" in r and "'last'" in r for r in grouped)
    assert "seed" in table  # present in one config only: shown with "-" for the other
    assert "method_args.steps" not in table and "backbone" not in table
    (first, second) = json.loads(CliRunner().invoke(app, ["compare", "1", "2", "--diff", "--db", db, "--json"]).stdout)
    assert first["config_diff"] == {"method_args.lr": 2e-4, "method_args.pooling": "mean", "seed": None}
    assert second["config_diff"] == {"method_args.lr": 1e-3, "method_args.pooling": "last", "seed": 1}


def test_best_cell_is_marked_without_colour(tmp_path):
    db = _two_runs(tmp_path)
    result = CliRunner().invoke(app, ["compare", "1", "2", "--db", db], terminal_width=200, color=False)
    row = next(line for line in result.output.splitlines() if line.strip("│ ").startswith("T "))
    assert "62.50 (+12.50) *" in row and "50.00 *" not in row


def test_export_csv_and_json_hold_the_recorded_scores(tmp_path):
    import csv

    db = _two_runs(tmp_path)
    out = tmp_path / "runs.csv"
    result = CliRunner().invoke(app, ["export", "--csv", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [(r["run_id"], r["method"], float(r["T"])) for r in rows] == [
        ("1", "infonce", 0.5),
        ("2", "infonce", 0.625),
    ]
    assert not list(tmp_path.glob(".*partial"))
    piped = CliRunner().invoke(app, ["export", "2", "--json", "-", "--db", db])
    (record,) = json.loads(piped.stdout)
    assert record["run_id"] == 2 and record["scores"] == {"T": 0.625}


def test_export_needs_exactly_one_format(tmp_path):
    db = _two_runs(tmp_path)
    for args in ([], ["--csv", "a.csv", "--json", "b.json"]):
        result = CliRunner().invoke(app, ["export", *args, "--db", db])
        assert (
            result.exit_code == 2
            and "--csv FILE, --json FILE (- for stdout), --mteb DIR or --model DIR" in result.output
        )


def test_by_config_gives_mean_and_sample_std_over_seeds(tmp_path):
    from leaderboard.store import open_store

    db = tmp_path / "seeds.db"
    store = open_store(db)
    for seed, lr, score in ((0, 2e-4, 0.5), (1, 2e-4, 0.7), (2, 2e-4, 0.6), (0, 1e-3, 0.4)):
        config = {"method": "infonce", "seed": seed, "method_args": {"lr": lr}}
        run_id = store.start_run(
            method="infonce",
            backbone="b",
            task_spec="t",
            task_names=["T"],
            config=config,
            config_hash=str(seed),
            seed=seed,
            environment={},
        )
        store.record_score(run_id, task="T", main_metric="cosine_spearman", main_score=score, details={})
        store.finish_run(run_id)
    store.close()
    result = CliRunner().invoke(app, ["compare", "1", "2", "3", "4", "--by-config", "--json", "--db", str(db)])
    first, second = json.loads(result.stdout)
    assert first["run_ids"] == [1, 2, 3] and second["run_ids"] == [4]
    assert first["scores"]["T"]["mean"] == pytest.approx(0.6) and first["scores"]["T"]["n"] == 3
    assert first["scores"]["T"]["std"] == pytest.approx(0.1)  # sqrt(((-.1)^2 + .1^2 + 0) / 2)
    assert second["scores"]["T"] == {"mean": 0.4, "std": 0.0, "n": 1, "interval": None}  # one run: no interval
    half = 4.302652729911275 * 0.1 / 3**0.5  # Student's t, 97.5% quantile at 2 degrees of freedom (from tables)
    assert first["scores"]["T"]["interval"] == pytest.approx([0.6 - half, 0.6 + half])
    table = (
        CliRunner()
        .invoke(app, ["compare", "1", "2", "3", "4", "--by-config", "--db", str(db)], terminal_width=200)
        .output
    )
    assert "60.00 +- 10.00 (n=3)" in table and "40.00 (n=1)" in table and "+- 0.00" not in table  # one run: no spread
    assert f"[{100 * (0.6 - half):.2f}, {100 * (0.6 + half):.2f}]" in table


def test_by_config_counts_a_repeated_seed_once(tmp_path):
    """A seed run twice (every `harness run` records its baseline again) is one sample, not two."""
    from leaderboard.store import open_store

    db = tmp_path / "repeats.db"
    store = open_store(db)
    for seed, score in ((0, 0.5), (0, 0.5), (1, 0.7)):
        config = {"method": "untrained-mean", "seed": seed, "method_args": {}}
        run_id = store.start_run(
            method="untrained-mean",
            backbone="b",
            task_spec="t",
            task_names=["T"],
            config=config,
            config_hash="h",
            seed=seed,
            environment={},
        )
        store.record_score(run_id, task="T", main_metric="cosine_spearman", main_score=score, details={})
        store.finish_run(run_id)
    store.close()
    result = CliRunner().invoke(app, ["compare", "1", "2", "3", "--by-config", "--json", "--db", str(db)])
    (group,) = json.loads(result.stdout)
    assert group["scores"]["T"]["n"] == 2 and group["scores"]["T"]["mean"] == pytest.approx(0.6)
    assert group["scores"]["T"]["std"] == pytest.approx(((0.1**2 + 0.1**2) / 1) ** 0.5)
    assert len(group["run_ids"]) == 2 and 3 in group["run_ids"]


def test_tasks_of_one_type_add_no_type_means(tmp_path):
    from leaderboard.store import open_store

    db = tmp_path / "sts.db"
    store = open_store(db)
    for scores in ({"S1": 0.5, "S2": 0.7}, {"S1": 0.6, "S2": 0.2}):
        run_id = store.start_run(
            method="m",
            backbone="b",
            task_spec="t",
            task_names=list(scores),
            config={},
            config_hash="h",
            seed=0,
            environment={},
        )
        for task, score in scores.items():
            store.record_score(
                run_id, task=task, main_metric="cosine_spearman", main_score=score, details={}, task_type="STS"
            )
        store.finish_run(run_id)
    store.close()
    rows = json.loads(CliRunner().invoke(app, ["compare", "1", "2", "--db", str(db), "--json"]).stdout)
    assert [row["mean"] for row in rows] == [pytest.approx(0.6), pytest.approx(0.4)]
    assert all("type_means" not in row and row["task_types"] == {"S1": "STS", "S2": "STS"} for row in rows)
    table = CliRunner().invoke(app, ["compare", "1", "2", "--db", str(db)], terminal_width=200).output
    assert "Mean(Task) over 2" in table and "Mean STS" not in table


def test_one_seed_shows_no_spread(tmp_path):
    db = write_board(tmp_path)
    shown = runner.invoke(app, ["compare", "1", "--by-config", "--db", str(db)]).stdout
    row = next(line for line in shown.splitlines() if "50.00" in line)
    assert "50.00 (n=1)" in row and "+-" not in row
    two = runner.invoke(
        app,
        [
            "compare",
            "1",
            "2",
            "--by-config",
            "--db",
            str(write_board(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, seeds=(0, 1))),
        ],
    ).stdout
    assert "+- 7.07 (n=2)" in two


def test_compare_baseline_puts_that_run_first_and_differences_against_it(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    for method in ("untrained-mean", "untrained-last", "prompteol"):
        cli_ok(*run_args(db, tiny_llama_dir, small_sts_file, method=method))
    runs = json.loads(cli_ok("compare", "1", "2", "--baseline", "3", "--db", str(db), "--json").stdout)
    assert [r["run_id"] for r in runs] == [3, 1, 2]
    stem = small_sts_file.stem
    base = runs[0]["scores"][stem]
    table = cli_ok("compare", "1", "2", "--baseline", "3", "--db", str(db)).stdout
    row = next(line for line in table.splitlines() if line.strip().startswith(stem))
    for run in runs[1:]:
        assert f"({100 * (run['scores'][stem] - base):+.2f})" in row
    assert "against #3" in table
    default = json.loads(cli_ok("compare", "--baseline", "2", "--db", str(db), "--json").stdout)
    assert [r["run_id"] for r in default] == [2, 1, 3]  # the latest runs, the baseline first
    missing = runner.invoke(app, ["compare", "--baseline", "9", "--db", str(db)])
    assert missing.exit_code == 2 and "no run 9" in missing.output


def test_compare_of_an_unfinished_run_points_to_include_unfinished(tmp_path, tiny_llama_dir, small_sts_file):
    runner = CliRunner()
    db = str(tmp_path / "h.db")
    assert runner.invoke(app, run_args(db, tiny_llama_dir, small_sts_file)).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'interrupted'")
    result = runner.invoke(app, ["compare", "1", "--db", db])
    assert result.exit_code == 2 and "#1 is interrupted" in result.output and "--include-unfinished" in result.output
    assert runner.invoke(app, ["compare", "1", "--include-unfinished", "--db", db]).exit_code == 0
