"""benchmarks/gpu_check.py: its CPU dry-run path end to end on the tiny Llama (the GPU path is the
same code with bf16 on)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def test_dry_run_reports_every_stage(tmp_path, tiny_llama_dir):
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--dry-run",
            "--backbone",
            str(tiny_llama_dir),
            "--steps",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["bf16"] is False and report["steps"] == 2 and report["device"] == "cpu"
    rows = {(r["method"], r["stage"]): r for r in report["stages"]}
    assert set(rows) == {("infonce", "contrastive"), ("autoregembed", "ic"), ("autoregembed", "cda")}
    for row in rows.values():
        assert row["tokens_per_s"] > 0 and 0 < row["mfu"] < 1 and row["peak_memory_gib"] > 0
    assert report["shared_vs_copy_peak_memory"] > 0
    assert "shared-decoder / frozen-copy peak memory" in done.stdout


def test_without_a_gpu_it_asks_for_the_dry_run():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the real check would run")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode != 0 and "--dry-run" in done.stderr
