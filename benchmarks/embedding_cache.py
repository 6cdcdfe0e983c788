"""Re-evaluating a run with a warm embedding cache against a cold one, side by side in one run.

    .venv/bin/python benchmarks/embedding_cache.py [--method untrained-mean] [--backbone smollm2-135m]

On LeeDocSimilarity and TREC QA dev as a reranking file (written from ``--from DATA`` by
benchmarks/dev_tasks.py into a temporary folder), through the real CLI, with an empty cache folder
and leaderboard of its own:

1. cold: ``harness run`` with the cache empty (it computes every vector and fills the cache);
2. warm: ``harness eval 1 --force`` on the same tasks (every vector from the cache);
3. without: ``harness eval 1 --force --no-cache`` (every vector computed again, nothing cached).

Prints each command's wall time, its evaluation seconds (the ``evaluate:`` phases, plus the
``cache:key`` phase that fingerprints the encoder), texts through the model, cache hits and scores,
and the cold/warm ratios. The scores must agree to 1e-6.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def harness(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"harness {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def evaluation(db: Path, since: int) -> tuple[float, float, int, int, dict[str, float]]:
    """(seconds of the evaluate phases, of the cache:key phase, texts encoded, cache hits, scores)
    of the timings recorded after row ``since``."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT phase, seconds, items, details FROM timings WHERE id > ?", (since,)).fetchall()
        scores = dict(conn.execute("SELECT task, main_score FROM scores WHERE run_id = 1"))
    evaluate = [(s, items, json.loads(d or "{}")) for phase, s, items, d in rows if phase.startswith("evaluate:")]
    key = sum(s for phase, s, _, _ in rows if phase == "cache:key")
    return (
        sum(s for s, _, _ in evaluate),
        key,
        sum(items for _, items, _ in evaluate),
        sum(d.get("cache_hits", 0) for _, _, d in evaluate),
        scores,
    )


def last_timing(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COALESCE(MAX(id), 0) FROM timings").fetchone()[0]


def main() -> None:
    from benchmarks.dev_tasks import write

    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="untrained-mean")
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument(
        "--from",
        dest="data",
        type=Path,
        default=os.environ.get("HARNESS_DATA") or None,
        required=not os.environ.get("HARNESS_DATA"),
        help="a folder of the released datasets (benchmarks/dev_tasks.py; default: $HARNESS_DATA)",
    )
    args = parser.parse_args()
    args.data = Path(args.data)
    work = Path(tempfile.mkdtemp(prefix="cache-bench-"))
    write(work / "dev-tasks", args.data)
    tasks = ["--tasks", "LeeDocSimilarity", "--tasks", str(work / "dev-tasks" / "trecqa-dev.csv")]
    db = work / "h.db"
    env = {**os.environ, "HARNESS_EMBEDDING_CACHE": str(work / "embeddings"), "HF_HUB_OFFLINE": "1"}
    common = ["--db", str(db)]
    steps = {}
    for name, command in (
        (
            "cold (run, empty cache)",
            ["run", "--method", args.method, "--backbone", args.backbone, *tasks, *common, "--no-baseline"],
        ),
        ("warm (eval --force)", ["eval", "1", "--force", *tasks, *common]),
        ("without (eval --force --no-cache)", ["eval", "1", "--force", "--no-cache", *tasks, *common]),
    ):
        since = last_timing(db) if db.exists() else 0
        wall = harness(*command, env=env)
        steps[name] = (wall, *evaluation(db, since))
    print(f"{args.method} on {args.backbone}; LeeDocSimilarity + trecqa-dev (reranking); work folder {work}")
    print(f"{'step':36} {'wall s':>8} {'eval s':>8} {'key s':>6} {'encoded':>8} {'cached':>7}")
    for name, (wall, seconds, key, encoded, hits, _) in steps.items():
        print(f"{name:36} {wall:8.1f} {seconds:8.2f} {key:6.2f} {encoded:8d} {hits:7d}")
    (cold, warm, without) = steps.values()
    print(
        f"cold / warm: evaluation {cold[1] / warm[1]:.1f}x (with the key's phase: {(cold[1] + cold[2]) / (warm[1] + warm[2]):.1f}x), "
        f"whole command {cold[0] / warm[0]:.1f}x"
    )
    print(f"without / warm: evaluation {without[1] / warm[1]:.1f}x")
    for task, score in cold[5].items():
        assert all(abs(step[5][task] - score) <= 1e-6 for step in (warm, without)), (
            task,
            [step[5][task] for step in steps.values()],
        )
    print("scores (equal to 1e-6 in all three):", {task: round(score, 6) for task, score in cold[5].items()})


if __name__ == "__main__":
    main()
