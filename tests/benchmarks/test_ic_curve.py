"""benchmarks/ic_curve.py is a recorded run that follows its dev tasks: its curve is the run's dev
scores, and following them leaves the training as it is without them (the same diagnostics and
the same final score as a plain `harness run`)."""

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


def test_the_curve_is_the_runs_dev_scores_and_its_training_a_plain_runs(tmp_path, tiny_llama_dir, small_sts_file):
    data = write_ic_triplets(tmp_path / "ic.jsonl")  # 30 distinct IC texts: 3 held out
    options = ["--set", "method_args.ic_steps=4", "--set", "method_args.batch_size=2", "--set", "method_args.lr=5e-3"]
    plain = tmp_path / "plain.db"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--method",
            "autoregembed",
            "--backbone",
            str(tiny_llama_dir),
            "--train-data",
            str(data),
            "--tasks",
            str(small_sts_file),
            "--db",
            str(plain),
            "--output-dir",
            str(tmp_path / "runs"),
            "--set",
            'method_args.stages=["ic"]',
            *options,
        ],
    )
    assert result.exit_code == 0, result.output
    (record,) = json.loads(CliRunner().invoke(app, ["show", "1", "--db", str(plain), "--json"]).stdout)
    recorded = {d["name"].removeprefix("heldout_loss_"): round(d["value"], 4) for d in record["diagnostics"]}

    curve, followed = tmp_path / "curve.jsonl", tmp_path / "followed.db"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--train-data",
            str(data),
            "--tasks",
            str(small_sts_file),
            "--every",
            "2",
            "--set",
            f"backbone={tiny_llama_dir}",
            *options,
            "--db",
            str(followed),
            "--output-dir",
            str(tmp_path / "curve-runs"),
            "--out",
            str(curve),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    points = [json.loads(line) for line in curve.read_text().splitlines()]
    assert [p["step"] for p in points] == [2, 4]
    (ours,) = json.loads(CliRunner().invoke(app, ["show", "1", "--db", str(followed), "--json"]).stdout)
    assert points == [{"step": r["step"], small_sts_file.stem: round(100 * r["score"], 2)} for r in ours["dev_scores"]]
    assert points[-1][small_sts_file.stem] == pytest.approx(100 * record["scores"][small_sts_file.stem], abs=0.01)
    assert ours["scores"] == pytest.approx(record["scores"], abs=1e-9)
    assert json.loads(done.stdout.splitlines()[-1])["diagnostics at the stage's end"] == recorded
