"""benchmarks/ic_curve.py measures the training a real run does: its last point equals what
`harness run` records for the same options (held-out diagnostics and the task's score)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.training_fixtures import write_ic_triplets

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "ic_curve.py"


def test_the_last_point_of_the_curve_is_the_recorded_run(tmp_path, tiny_llama_dir, small_sts_file):
    data = write_ic_triplets(tmp_path / "ic.jsonl")  # 30 distinct IC texts: 3 held out
    options = ["--set", "method_args.ic_steps=4", "--set", "method_args.batch_size=2", "--set", "method_args.lr=5e-3"]
    db = tmp_path / "h.db"
    result = CliRunner().invoke(app, [
        "run", "--method", "autoregembed", "--backbone", str(tiny_llama_dir), "--train-data", str(data),
        "--tasks", str(small_sts_file), "--db", str(db), "--output-dir", str(tmp_path / "runs"),
        "--set", 'method_args.stages=["ic"]', *options,
    ])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(CliRunner().invoke(app, ["show", "1", "--db", str(db), "--json"]).stdout)
    recorded = {d["name"].removeprefix("heldout_loss_"): d["value"] for d in record["diagnostics"]}

    curve = tmp_path / "curve.jsonl"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--train-data", str(data), "--tasks", str(small_sts_file), "--every", "2",
         "--set", f"backbone={tiny_llama_dir}", *options, "--out", str(curve)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    points = [json.loads(line) for line in curve.read_text().splitlines()]
    assert [p["step"] for p in points] == [0, 2, 4]
    last, first = points[-1], points[0]
    for name in ("own", "shuffled", "empty"):
        assert last[name] == pytest.approx(recorded[name], abs=1e-4)
    assert first["empty"] == last["empty"]  # the decoder itself never trains
    assert first["own"] != last["own"]  # the encoder did
    figures = last[small_sts_file.stem]
    assert figures["spearman"] == pytest.approx(100 * record["scores"][small_sts_file.stem], abs=0.01)
    assert -1 <= figures["unrelated_cos"] <= 1 and -100 <= figures["spearman_centred"] <= 100
