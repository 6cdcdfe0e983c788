"""Multi-process equivalence on CPU (gloo, launched by torchrun): 2 processes x B == 1 x 2B."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training_fixtures import TRIPLETS, lora_model, stage_for

SCRIPT = Path(__file__).with_name("dist_grads.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(*args: str, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={nproc}",
        "--master-addr=127.0.0.1",
        f"--master-port={_free_port()}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.parametrize("in_batch", [True, False], ids=["in-batch", "hard-negative-only"])
def test_two_processes_give_the_gradients_of_one_process_with_the_whole_batch(tmp_path, in_batch):
    torchrun(str(SCRIPT), str(tmp_path), "1" if in_batch else "0")
    got = torch.load(tmp_path / "grads.pt", weights_only=False)

    model, tokenizer = lora_model()
    stage, config = stage_for(in_batch=in_batch, batch_size=len(TRIPLETS))
    loss, _ = stage.loss(model, tokenizer, TRIPLETS, config)
    loss.backward()
    expected = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}

    assert set(got["grads"]) == set(expected) and len(expected) > 0
    for name, grad in expected.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(got["grads"][name], grad, atol=1e-5, rtol=1e-4, msg=name)
    assert got["loss"] == pytest.approx(float(loss), abs=1e-5)
