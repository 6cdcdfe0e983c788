"""Wall time of `harness run` on an STS-B dev task file, and an independent check of its score.

    .venv/bin/python benchmarks/sts_file_run.py --data DIR [--pairs 1400] [--method untrained-mean]

Writes the first N pairs of STS-B dev (``stsb/sts-dev.csv`` under ``--data DIR``) as a task file, times the real CLI
(model load included) in a subprocess, then recomputes cosine-Spearman from embeddings made by a
plain transformers loop (one text at a time, no padding) and prints both.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.released_data import ENV, STSB_DEV, add_option, released, use  # noqa: E402


def write_task(path: Path, pairs: int) -> None:
    source = released(STSB_DEV)
    if source is None:
        sys.exit(f"STS-B dev ({STSB_DEV}) is not under --data / ${ENV}: give the folder of the released datasets")
    with source.open(encoding="utf-8") as src, path.open("w", encoding="utf-8") as dst:
        dst.write("sentence1\tsentence2\tscore\n")
        for i, row in enumerate(csv.reader(src, delimiter="\t", quoting=csv.QUOTE_NONE)):
            if i == pairs:
                break
            dst.write(f"{row[5]}\t{row[6]}\t{row[4]}\n")


def independent_score(task: Path) -> float:
    import numpy as np
    import torch
    from scipy.stats import spearmanr
    from transformers import AutoModel, AutoTokenizer

    from harness.data.task_files import read_sts_file
    from harness.model.backbones import _smollm2_folder

    folder = _smollm2_folder()
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    pairs = read_sts_file(task)
    cache: dict[str, np.ndarray] = {}

    def embed(text: str) -> np.ndarray:
        if text not in cache:
            with torch.no_grad():
                hidden = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
            cache[text] = hidden.mean(0).numpy()
        return cache[text]

    a = np.stack([embed(t) for t in pairs.sentence1])
    b = np.stack([embed(t) for t in pairs.sentence2])
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(spearmanr(cosine, pairs.scores)[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1400)
    add_option(parser)
    args = parser.parse_args()
    use(args)
    with tempfile.TemporaryDirectory() as tmp:
        task = Path(tmp) / "stsb-dev-head.tsv"
        db = Path(tmp) / "bench.db"
        write_task(task, args.pairs)
        harness = [sys.executable, "-m", "harness"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        subprocess.run(
            [
                *harness,
                "run",
                "--method",
                "untrained-mean",
                "--backbone",
                "smollm2-135m",
                "--tasks",
                str(task),
                "--db",
                str(db),
            ],
            check=True,
            env=env,
        )
        wall = time.perf_counter() - start
        record = json.loads(
            subprocess.run(
                [*harness, "show", "1", "--db", str(db), "--json"], check=True, capture_output=True, text=True, env=env
            ).stdout
        )[0]
        harness_score = record["scores"][task.stem]
        reference = independent_score(task)
    print(f"pairs={args.pairs} wall_s={wall:.1f} cpu_count={os.cpu_count()}")
    print(
        f"harness cosine_spearman={harness_score:.6f} independent={reference:.6f} |diff|={abs(harness_score - reference):.2e}"
    )
    for timing in record["timings"]:
        print(f"  {timing['phase']}: {timing['seconds']:.1f} s, {timing['items']} texts, {timing['tokens']} tokens")


if __name__ == "__main__":
    main()
