"""One task's evaluation by 1 process against 2 processes (torchrun, data-parallel), side by side.

    .venv/bin/python benchmarks/eval_parallel.py [--pairs 400] [--backbone smollm2-135m] [--rounds 1]

Writes the first N pairs of STS-B dev (``stsb/sts-dev.csv`` under ``--data DIR``) as an STS task file (``--task FILE``
evaluates that file instead), then runs the real CLI, ``harness run --method untrained-mean``, in
turn as one process (every core) and under ``torchrun --nproc-per-node 2`` (each process on its
share of the cores, each encoding half the texts), ``--rounds`` times, each into a leaderboard of
its own. Prints, per setting, the median recorded time of the task's evaluation (the run's
``evaluate:TASK`` phase: encoding and scoring, no start-up), the median wall time of the whole
command, the ratios 1 process / 2 processes, and the scores, which must agree.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.released_data import add_option, use  # noqa: E402
from benchmarks.sts_file_run import write_task  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_once(processes: int, task: Path, backbone: str, db: Path) -> dict[str, float]:
    """One ``harness run`` of the task: its wall time, recorded evaluation time, score and counts."""
    harness = [
        "-m",
        "harness",
        "run",
        "--method",
        "untrained-mean",
        "--backbone",
        backbone,
        "--tasks",
        str(task),
        "--db",
        str(db),
        "--no-cache",
    ]
    launcher = (
        []
        if processes == 1
        else [
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={processes}",
            "--master-addr=127.0.0.1",
            f"--master-port={_free_port()}",
        ]
    )
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, *launcher, *harness],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wall = time.perf_counter() - began
    with sqlite3.connect(db) as conn:
        ((seconds, items),) = conn.execute("SELECT seconds, items FROM timings WHERE phase LIKE 'evaluate:%'")
        ((score,),) = conn.execute("SELECT main_score FROM scores")
    return {"wall": wall, "evaluate": seconds, "texts": items, "score": score}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=400, help="STS-B dev pairs in the task file")
    parser.add_argument("--task", type=Path, help="evaluate this task file instead")
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--rounds", type=int, default=1)
    add_option(parser)
    args = parser.parse_args()
    use(args)
    out = Path(tempfile.mkdtemp())
    task = args.task
    if task is None:
        task = out / "stsb-dev-part.tsv"
        write_task(task, args.pairs)
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for round_ in range(args.rounds):
        for processes in results:  # in turn, so both settings see the same machine load
            results[processes].append(run_once(processes, task, args.backbone, out / f"p{processes}-r{round_}.db"))
    median = {
        p: {k: statistics.median(r[k] for r in runs) for k in ("wall", "evaluate")} for p, runs in results.items()
    }
    one, two = median[1], median[2]
    cores = len(os.sched_getaffinity(0))
    print(
        f"{task.name}: {results[1][0]['texts']:.0f} texts, {args.backbone}, untrained-mean, {cores} cores, medians of {args.rounds}"
    )
    print(f"{'processes':<10} {'evaluate s':>11} {'wall s':>8}  score")
    for processes, runs in results.items():
        print(
            f"{processes:<10} {median[processes]['evaluate']:>11.2f} {median[processes]['wall']:>8.2f}  {runs[0]['score']:.6f}"
        )
    print(
        f"1 process / 2 processes: evaluate {one['evaluate'] / two['evaluate']:.2f}x, wall {one['wall'] / two['wall']:.2f}x"
    )
    gap = max(abs(a["score"] - b["score"]) for a, b in zip(results[1], results[2]))
    print(f"max score difference: {gap:.1e}")


if __name__ == "__main__":
    main()
