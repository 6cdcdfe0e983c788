"""benchmarks/eval_parallel.py end to end on the tiny Llama: 1 process and 2 (torchrun) side by
side, the same score, and the ratio printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "eval_parallel.py"


def test_one_and_two_processes_side_by_side(tiny_llama_dir, small_sts_file):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--backbone", str(tiny_llama_dir), "--task", str(small_sts_file)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "1 process / 2 processes: evaluate " in done.stdout
    (gap,) = [line for line in done.stdout.splitlines() if line.startswith("max score difference: ")]
    assert float(gap.split(": ")[1]) <= 1e-6
