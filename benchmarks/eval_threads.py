"""Rank 0's evaluation after a multi-process CPU run: one thread (what torchrun leaves each
process) against every core (what the harness now takes once the other ranks have left).

    .venv/bin/python benchmarks/eval_threads.py [--texts 400] [--rounds 2]

Encodes STS-B dev sentences (the released file under --data, else the offline training texts) with untrained
mean pooling on SmolLM2-135M, the two settings in turn, ``--rounds`` times; prints the medians.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.released_data import STSB_DEV, add_option, released, use  # noqa: E402


def texts(count: int) -> list[str]:
    stsb = released(STSB_DEV)
    if stsb:
        with stsb.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        found = [cell for row in rows for cell in row[5:7]]
    else:
        from harness.data.train_data import load_triplets

        found = [t.query for t in load_triplets("offline", 0)]
    return found[:count]


def main() -> None:
    import torch

    from harness.encoder import EncodeSettings, PooledEncoder
    from harness.model.backbones import backbone_spec, load_backbone

    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    add_option(parser)
    args = parser.parse_args()
    use(args)
    backbone = load_backbone(backbone_spec("smollm2-135m"))
    encoder = PooledEncoder(backbone.model, backbone.tokenizer, pooling="mean", settings=EncodeSettings(batch_size=32))
    sample = texts(args.texts)
    cores = len(os.sched_getaffinity(0))
    encoder.encode(sample[:32])  # warm-up
    seconds: dict[int, list[float]] = {1: [], cores: []}
    for _ in range(args.rounds):
        for threads in seconds:
            torch.set_num_threads(threads)
            start = time.perf_counter()
            encoder.encode(sample)
            seconds[threads].append(time.perf_counter() - start)
    one, every = statistics.median(seconds[1]), statistics.median(seconds[cores])
    print(
        f"{len(sample)} texts, {args.rounds} rounds: 1 thread {one:.2f} s, {cores} threads {every:.2f} s, speed-up {one / every:.2f}x"
    )


if __name__ == "__main__":
    main()
