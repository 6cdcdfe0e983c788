"""How an AutoRegEmbed IC stage's dev scores move as it trains: one recorded IC-only run that
follows its dev tasks (`--dev-tasks`, `method_args.eval_every`), printed as a curve.

    python benchmarks/ic_curve.py --train-data SOURCE --tasks FILE [--tasks FILE] [--every 100]
        [--set method_args.KEY=VALUE ...] [--seed 0] [--db harness.db] [--output-dir harness-runs] [--out curve.jsonl]

The run is `harness run --method autoregembed --set method_args.preset=small --set 'method_args.stages=["ic"]'` with the files as
both its dev tasks and its test tasks, and `method_args.eval_every=EVERY`; it is recorded in
`--db` like any run (checkpoints under `--output-dir`). The script then reads that run's (the newest) dev scores and prints one JSON line per
evaluated step (each file's main score x100), then the held-out IC diagnostics the stage measured
when it ended. Following the dev tasks leaves the training as it is without them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def curve(dev_scores: list[dict]) -> list[dict]:
    """One point per evaluated step: ``{"step": N, TASK: score x100, ...}`` in training order."""
    points: dict[int, dict] = {}
    for row in dev_scores:
        points.setdefault(row["step"], {"step": row["step"]})[row["task"]] = round(100 * row["score"], 2)
    return list(points.values())


def main() -> None:
    from leaderboard.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-data", required=True)
    parser.add_argument(
        "--tasks", action="append", required=True, help="task files (STS .tsv: sentence1, sentence2, score)"
    )
    parser.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE, as harness run --set")
    parser.add_argument("--every", type=int, default=100, help="evaluate the files every this many steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", default="harness.db", help="the leaderboard the run is recorded in")
    parser.add_argument("--output-dir", default="harness-runs", help="where the run keeps its checkpoints")
    parser.add_argument("--out", default="", help="also append each point as a JSON line here")
    args = parser.parse_args()

    files = [item for task in args.tasks for item in ("--tasks", task, "--dev-tasks", task)]
    sets = [
        item
        for value in [
            "method_args.preset=small",
            *args.sets,
            'method_args.stages=["ic"]',
            f"method_args.eval_every={args.every}",
        ]
        for item in ("--set", value)
    ]
    command = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--method",
        "autoregembed",
        "--train-data",
        args.train_data,
        "--seed",
        str(args.seed),
        "--db",
        args.db,
        "--output-dir",
        args.output_dir,
        "--no-baseline",
        *files,
        *sets,
    ]
    subprocess.run(command, check=True)
    store = open_store(args.db, create=False)
    run_id = store.runs(statuses=None, limit=1)[0]["run_id"]
    for point in curve(store.dev_scores(run_id)):
        print(json.dumps(point), flush=True)
        if args.out:
            with open(args.out, "a") as handle:
                handle.write(json.dumps(point) + "\n")
    diagnostics = {d["name"].removeprefix("heldout_loss_"): round(d["value"], 4) for d in store.diagnostics(run_id)}
    print(json.dumps({"run": run_id, "diagnostics at the stage's end": diagnostics}), flush=True)


if __name__ == "__main__":
    main()
