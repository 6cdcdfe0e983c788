"""Run under torchrun by tests/training/test_sharding.py: a sharded full fine-tune of the tiny Llama.

    torchrun --nproc-per-node 2 tests/training/dist_sharded.py OUT_DIR ENGINE METHOD [--resume] [OPTION=JSON_VALUE ...]

Rank 0 saves the step losses and the final weights to OUT_DIR/result.pt.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.training import distributed  # noqa: E402
from tests.training_fixtures import sharded_run  # noqa: E402


def main() -> None:
    out, engine, method = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    resume = "--resume" in sys.argv[4:]
    options = {
        key: json.loads(value) for key, _, value in (arg.partition("=") for arg in sys.argv[4:] if arg != "--resume")
    }
    info = distributed.init("cpu")
    result = sharded_run(out, engine=engine, method=method, world_size=info.world_size, resume=resume, **options)
    if info.is_main:
        torch.save(result, out / "result.pt")


if __name__ == "__main__":
    main()
    distributed.exit_process(0)
