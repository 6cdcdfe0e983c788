"""Run under torchrun by tests/training/test_grad_cache.py: each rank's GradCache gradients for its
half of TRIPLETS, for every case of GRAD_CACHE_CASES and the IMPROVED_LOSS options, in one launch.

    torchrun --nproc-per-node 2 tests/training/dist_grad_cache.py OUT_DIR MINI_BATCH
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.training import distributed  # noqa: E402
from tests.training_fixtures import GRAD_CACHE_CASES, IMPROVED_LOSS, TRIPLETS, contrastive_grads  # noqa: E402


def main() -> None:
    out, mini_batch = Path(sys.argv[1]), int(sys.argv[2])
    info = distributed.init("cpu")
    half = len(TRIPLETS) // info.world_size
    mine = TRIPLETS[info.rank * half : (info.rank + 1) * half]
    results = {}
    for pooling, hard in GRAD_CACHE_CASES:
        loss, grads = contrastive_grads(mine, pooling=pooling, hard_negatives=hard, mini_batch=mini_batch)
        results[f"{pooling}-{hard}"] = {"loss": distributed.mean_across_ranks(loss), "grads": grads}
    loss, grads = contrastive_grads(mine, pooling="mean", hard_negatives=True, mini_batch=mini_batch, **IMPROVED_LOSS)
    results["improved"] = {"loss": distributed.mean_across_ranks(loss), "grads": grads}
    if info.is_main:
        torch.save(results, out / "grads.pt")


if __name__ == "__main__":
    main()
    distributed.exit_process(0)
