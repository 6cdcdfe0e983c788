"""Run under torchrun by tests/training/test_distributed.py: one rank's gradients for its half of a batch.

torchrun --nproc-per-node 2 tests/training/dist_grads.py OUT_DIR IN_BATCH(0|1)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.training import distributed  # noqa: E402
from tests.training_fixtures import TRIPLETS, lora_model, stage_for  # noqa: E402


def main() -> None:
    out, in_batch = Path(sys.argv[1]), sys.argv[2] == "1"
    info = distributed.init("cpu")
    model, tokenizer = lora_model()
    stage, config = stage_for(in_batch=in_batch, batch_size=len(TRIPLETS) // info.world_size)
    mine = TRIPLETS[info.rank * config.batch_size : (info.rank + 1) * config.batch_size]
    loss, _ = stage.loss(model, tokenizer, mine, config)
    loss.backward()
    params = [p for p in model.parameters() if p.requires_grad]
    distributed.average_gradients(params)
    if info.is_main:
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        torch.save({"grads": grads, "loss": distributed.mean_across_ranks(float(loss))}, out / "grads.pt")
    else:
        distributed.mean_across_ranks(float(loss))


if __name__ == "__main__":
    main()
    distributed.exit_process(0)
