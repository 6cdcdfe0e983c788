"""The options of `harness run` (harness/cli/run_options.py): --tasks as commas or repeats, and a
bad --device or --eval-batch-size refused with its value named (exit 2)."""

from __future__ import annotations

from typer.testing import CliRunner

from harness.cli import app
from harness.cli.app import split_items

runner = CliRunner()


def test_tasks_take_commas_or_repeats(tmp_path):
    assert split_items(["offline,a.tsv", "b.tsv"]) == ["offline", "a.tsv", "b.tsv"]
    kept = tmp_path / "with,comma.tsv"
    kept.write_text("x")
    assert split_items([str(kept)]) == [str(kept)]


def test_run_takes_device_and_eval_batch_size_flags(tmp_path):
    result = runner.invoke(
        app, ["run", "--method", "untrained-mean", "--device", "meta", "--db", str(tmp_path / "h.db")]
    )
    assert result.exit_code == 2 and "device='meta'" in result.output
    result = runner.invoke(
        app, ["run", "--method", "untrained-mean", "--eval-batch-size", "0", "--db", str(tmp_path / "h.db")]
    )
    assert result.exit_code == 2 and "eval_batch_size=0" in result.output
