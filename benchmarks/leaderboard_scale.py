"""The leaderboard at scale: 10,000 runs x 10 tasks.

    .venv/bin/python benchmarks/leaderboard_scale.py [--runs 10000] [--tasks 10] [--repeats 5]

Seeds a fresh database in bulk (straight SQL, to keep seeding quick), then measures, as medians
over ``--repeats``: `harness compare` of 10 runs and `harness leaderboard`, both in-process (the
query and the table) and as the real CLI in a subprocess (Python start-up included); recording one
run with 10 task scores through the store API; and the file size per run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed(path: Path, runs: int, tasks: int) -> None:
    from leaderboard.store import open_store

    open_store(path).close()
    rng = random.Random(0)
    names = [f"Task{t}" for t in range(tasks)]
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO runs (id, status, method, backbone, task_spec, task_names, config, config_hash, seed, "
            "git_sha, git_dirty, versions, hardware, host, pid, started_at, heartbeat_at, ended_at) "
            "VALUES (?, 'finished', ?, ?, 'bench', ?, ?, ?, ?, 'abc', 0, '{}', '{}', 'bench', 1, ?, ?, ?)",
            [
                (
                    i,
                    f"method{i % 7}",
                    f"backbone{i % 3}",
                    json.dumps(names),
                    json.dumps({"i": i, "lr": 1e-4}),
                    f"{i:064x}",
                    i % 5,
                    1e9 + i,
                    1e9 + i,
                    1e9 + i + 60,
                )
                for i in range(1, runs + 1)
            ],
        )
        conn.executemany(
            "INSERT INTO scores (run_id, task, main_metric, main_score, details) VALUES (?, ?, 'cosine_spearman', ?, ?)",
            [
                (
                    i,
                    name,
                    rng.random(),
                    json.dumps({"test": [{"main_score": 0.5, "cosine_spearman": 0.5, "hf_subset": "default"}]}),
                )
                for i in range(1, runs + 1)
                for name in names
            ],
        )


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from rich.console import Console

    from leaderboard.queries import compare, rank
    from leaderboard.render import comparison_tables, leaderboard_table
    from leaderboard.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scale.db"
        start = time.perf_counter()
        seed(db, args.runs, args.tasks)
        seeded = time.perf_counter() - start
        store = open_store(db)
        console = Console(file=open(os.devnull, "w"))
        ids = list(range(args.runs - 9, args.runs + 1))
        names = [f"Task{t}" for t in range(args.tasks)]

        def do_compare() -> None:
            console.print(*comparison_tables(compare(store.runs(ids=ids))))

        def do_leaderboard() -> None:  # what `harness leaderboard` does: rank all, show the top 20
            console.print(leaderboard_table(rank(store.runs(), names)[:20], names))

        def do_record() -> None:
            run_id = store.start_run(
                method="m",
                backbone="b",
                task_spec="t",
                task_names=names,
                config={},
                config_hash="h",
                seed=0,
                environment={},
            )
            for name in names:
                store.record_score(
                    run_id, task=name, main_metric="cosine_spearman", main_score=0.5, details={"test": []}
                )
            store.finish_run(run_id)

        cli = [sys.executable, "-m", "harness"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}

        def cli_compare() -> None:
            subprocess.run(
                [*cli, "compare", *map(str, ids), "--db", str(db)], env=env, check=True, capture_output=True
            )

        def cli_leaderboard() -> None:
            subprocess.run([*cli, "leaderboard", "--db", str(db)], env=env, check=True, capture_output=True)

        def cli_leaderboard_json() -> None:
            subprocess.run([*cli, "leaderboard", "--json", "--db", str(db)], env=env, check=True, capture_output=True)

        figures = {
            "compare 10 runs, in-process": median_time(do_compare, args.repeats),
            "leaderboard, in-process": median_time(do_leaderboard, args.repeats),
            "compare 10 runs, CLI": median_time(cli_compare, args.repeats),
            "leaderboard, CLI": median_time(cli_leaderboard, args.repeats),
            "leaderboard --json (all runs), CLI": median_time(cli_leaderboard_json, args.repeats),
            "record one run with 10 scores": median_time(do_record, args.repeats),
        }
        size = db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob("scale.db-*"))
    print(f"runs={args.runs} tasks={args.tasks} repeats={args.repeats} (seeded in {seeded:.1f} s)")
    for name, seconds in figures.items():
        print(f"  {name:36} {seconds * 1000:8.1f} ms")
    print(f"  database size per run               {size / (args.runs + args.repeats) / 1024:8.2f} KiB")


if __name__ == "__main__":
    main()
