"""A fully warm command against a cold one, on two model sizes, side by side in one run.

    .venv/bin/python benchmarks/warm_eval.py [--pairs 400] [--big-pairs 100] [--big FOLDER]

On the first ``--pairs`` pairs of STS-B dev (written from ``--from DATA`` by benchmarks/dev_tasks.py
into a temporary folder), untrained-mean through the real CLI, each model with an empty cache
folder and leaderboard of its own:

1. cold: ``harness run`` (every vector computed, the cache and the model's load key filled);
2. warm run: the same ``harness run`` again (every vector in the cache: the model is not loaded);
3. warm eval: ``harness eval 1 --force``

(each warm step three times, its median reported)

for SmolLM2-135M, and on the first ``--big-pairs`` pairs (its cold run costs the most) for
SmolLM2-135M again and a larger local safetensors folder (``--big``; by default one is built:
SmolLM2's tokenizer and layout at twice the width and 36 layers, random weights, fp32, over 4x the
bytes): their warm times side by side say whether a warm command depends on the model's size. Then the parts of a warm command: the phases it records (data, load, cache:key,
evaluate) and, measured alone in fresh processes, what its imports cost (``import torch``,
``import mteb``, both, which a warm command needs, and ``import sentence_transformers``, which it
no longer pays for) and ``harness --help``. Prints wall times, the cold/warm ratio per model, the big/small
ratio of the warm times, and checks that the scores agree to 1e-6.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def phases(db: Path, since: int) -> dict[str, float]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT phase, seconds FROM timings WHERE id > ?", (since,)).fetchall()
    found: dict[str, float] = {}
    for phase, seconds in rows:
        name = "evaluate" if phase.startswith("evaluate:") else phase
        found[name] = found.get(name, 0.0) + seconds
    return found


def last_timing(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COALESCE(MAX(id), 0) FROM timings").fetchone()[0]


def scores(db: Path) -> list[float]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT main_score FROM scores ORDER BY id")]


def build_big(folder: Path) -> Path:
    """SmolLM2-135M's tokenizer and layout, twice as wide and 36 layers deep, random fp32 weights."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    from harness.model.backbones import ALIASES, gguf_folder

    small = gguf_folder(ALIASES["smollm2-135m"])
    config = AutoConfig.from_pretrained(small)
    config.hidden_size, config.intermediate_size, config.num_hidden_layers = (
        2 * config.hidden_size,
        2 * config.intermediate_size,
        36,
    )
    config.head_dim = config.hidden_size // config.num_attention_heads
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(folder)
    AutoTokenizer.from_pretrained(small).save_pretrained(folder)
    return folder


def weight_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*.safetensors"))


def median_wall(command: list[str], env: dict[str, str], repeats: int = 3) -> float:
    return statistics.median(timed(command, env) for _ in range(repeats))


def main() -> None:
    from benchmarks.dev_tasks import write
    from harness.model.backbones import ALIASES, gguf_folder

    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--big-pairs", type=int, default=100, help="pairs of the model-size comparison")
    parser.add_argument(
        "--big", type=Path, default=None, help="a larger local model folder (default: built in the work folder)"
    )
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
    work = Path(tempfile.mkdtemp(prefix="warm-bench-"))
    write(work / "dev-tasks", args.data)
    lines = (work / "dev-tasks" / "stsb-dev.tsv").read_text(encoding="utf-8").splitlines()
    tasks = {}
    for pairs in (args.pairs, args.big_pairs):
        tasks[pairs] = work / f"sts{pairs}.tsv"
        tasks[pairs].write_text("\n".join(lines[: pairs + 1]) + "\n", encoding="utf-8")
    big = args.big or build_big(work / "big-model")
    small = gguf_folder(ALIASES["smollm2-135m"])
    cases = {
        f"smollm2-135m/{args.pairs}": ("smollm2-135m", small, tasks[args.pairs]),
        f"smollm2-135m/{args.big_pairs}": ("smollm2-135m", small, tasks[args.big_pairs]),
        f"big/{args.big_pairs}": (str(big), big, tasks[args.big_pairs]),
    }
    harness = [sys.executable, "-m", "harness"]
    results: dict[str, dict[str, tuple[float, dict[str, float]]]] = {}
    for name, (backbone, folder, task) in cases.items():
        label = name.replace("/", "-")
        db = work / f"{label}.db"
        env = {**os.environ, "HARNESS_EMBEDDING_CACHE": str(work / f"cache-{label}"), "HF_HUB_OFFLINE": "1"}
        run = [
            *harness,
            "run",
            "--method",
            "untrained-mean",
            "--backbone",
            backbone,
            "--tasks",
            str(task),
            "--db",
            str(db),
        ]
        steps = {}
        for step, command, repeats in (
            ("cold run", run, 1),
            ("warm run", run, 3),
            ("warm eval --force", [*harness, "eval", "1", "--force", "--tasks", str(task), "--db", str(db)], 3),
        ):
            walls = []
            for _ in range(repeats):  # a warm step: the median of 3, its phases the last one's
                since = last_timing(db)
                walls.append(timed(command, env))
            steps[step] = (statistics.median(walls), phases(db, since))
        results[name] = steps
        values = scores(db)
        assert max(values) - min(values) <= 1e-6, (name, values)
        print(
            f"{name} ({weight_bytes(folder) / 2**20:,.0f} MiB of weights): Spearman {values[0]:.6f} in all {len(values)} scores"
        )
    print(
        f"\n{'model/pairs':18} {'step':18} {'wall s':>7} "
        + " ".join(f"{p:>9}" for p in ("data", "load", "cache:key", "evaluate"))
    )
    for name, steps in results.items():
        for step, (wall, found) in steps.items():
            print(
                f"{name:18} {step:18} {wall:7.2f} "
                + " ".join(f"{found.get(p, 0.0):9.2f}" for p in ("data", "load", "cache:key", "evaluate"))
            )
    for name, steps in results.items():
        cold = steps["cold run"][0]
        print(
            f"{name}: cold / warm run {cold / steps['warm run'][0]:.1f}x, cold / warm eval {cold / steps['warm eval --force'][0]:.1f}x"
        )
    small_warm, big_warm = (
        results[f"smollm2-135m/{args.big_pairs}"]["warm run"][0],
        results[f"big/{args.big_pairs}"]["warm run"][0],
    )
    print(
        f"warm run, big / small on {args.big_pairs} pairs: {big_warm / small_warm:.2f} (weights {weight_bytes(big) / weight_bytes(small):.1f}x)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    print("\nwhat a warm command's start-up is made of (fresh processes, median of 3):")
    for label, command in (
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("import torch", [sys.executable, "-c", "import torch"]),
        ("import mteb", [sys.executable, "-c", "import mteb"]),
        ("import mteb, torch", [sys.executable, "-c", "import mteb, torch"]),
        (
            "the same, with the CLI's collector settings",
            [sys.executable, "-c", "import gc; gc.set_threshold(10_000, 10, 10); import mteb, torch; gc.freeze()"],
        ),
        ("import sentence_transformers (not needed)", [sys.executable, "-c", "import sentence_transformers"]),
        ("harness --help", [*harness, "--help"]),
    ):
        print(f"  {label:42} {median_wall(command, env):6.2f} s")


if __name__ == "__main__":
    main()
