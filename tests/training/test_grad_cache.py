"""GradCache (method_args.mini_batch): the gradients of plain InfoNCE on the same global batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.training.grad_cache import cached_embeddings
from tests.training.test_distributed import torchrun
from tests.training_fixtures import GRAD_CACHE_CASES, IMPROVED_LOSS, TRIPLETS, contrastive_grads

SCRIPT = Path(__file__).with_name("dist_grad_cache.py")


def assert_same_grads(got: dict, expected: dict) -> None:
    assert set(got) == set(expected) and len(expected) > 0
    for name, grad in expected.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(got[name], grad, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("pooling, hard_negatives", GRAD_CACHE_CASES)
@pytest.mark.parametrize("mini_batch", [1, 5])
def test_one_process_gives_the_plain_gradients(pooling, hard_negatives, mini_batch):
    """Chunks of 1 and of 5 texts (the last one shorter) against one pass over all the texts."""
    loss, grads = contrastive_grads(TRIPLETS, pooling=pooling, hard_negatives=hard_negatives, mini_batch=mini_batch)
    plain_loss, plain = contrastive_grads(TRIPLETS, pooling=pooling, hard_negatives=hard_negatives)
    assert loss == pytest.approx(plain_loss, abs=1e-6)
    assert_same_grads(grads, plain)


@pytest.mark.parametrize("mini_batch", [1, 5])
def test_matryoshka_dims_and_the_improved_loss_under_gradcache_give_the_plain_gradients(mini_batch):
    """The loss wrappers act on the embeddings GradCache returns: one summed gradient per text,
    each chunk re-run once, the gradients of the uncached loss."""
    loss, grads = contrastive_grads(
        TRIPLETS, pooling="mean", hard_negatives=True, mini_batch=mini_batch, **IMPROVED_LOSS
    )
    plain_loss, plain = contrastive_grads(TRIPLETS, pooling="mean", hard_negatives=True, **IMPROVED_LOSS)
    bare_loss, _ = contrastive_grads(TRIPLETS, pooling="mean", hard_negatives=True)
    assert loss == pytest.approx(plain_loss, abs=1e-6) and abs(plain_loss - bare_loss) > 1e-3
    assert_same_grads(grads, plain)


def test_activation_checkpointing_inside_the_second_pass_gives_the_plain_gradients():
    loss, grads = contrastive_grads(TRIPLETS, pooling="last", hard_negatives=True, mini_batch=4, checkpointing=True)
    plain_loss, plain = contrastive_grads(TRIPLETS, pooling="last", hard_negatives=True)
    assert loss == pytest.approx(plain_loss, abs=1e-6)
    assert_same_grads(grads, plain)


def test_dropout_masks_are_replayed_in_the_second_pass(monkeypatch):
    """With LoRA dropout on, the re-run in backward must draw the masks of the first pass: GradCache
    equals the same chunks embedded once with their graph kept, and not that step with other masks."""
    import harness.training.grad_cache as grad_cache

    cached_loss, cached = contrastive_grads(TRIPLETS, pooling="mean", hard_negatives=True, mini_batch=5, dropout=0.3)

    def with_graph(embed, items, mini_batch, device):  # the same chunks and draws, activations kept
        return torch.cat([embed(items[i : i + mini_batch]) for i in range(0, len(items), mini_batch)])

    monkeypatch.setattr(grad_cache, "cached_embeddings", with_graph)
    kept_loss, kept = contrastive_grads(TRIPLETS, pooling="mean", hard_negatives=True, mini_batch=5, dropout=0.3)
    assert cached_loss == pytest.approx(kept_loss, abs=1e-6)
    assert_same_grads(cached, kept)
    _, other_masks = contrastive_grads(
        TRIPLETS, pooling="mean", hard_negatives=True, mini_batch=5, dropout=0.3, seed=1
    )
    assert any((other_masks[n] - g).abs().max() > 1e-4 for n, g in kept.items())


def _step(cached: bool, autocast: bool) -> tuple[dict, torch.Tensor]:
    """A dropout layer's step on 7 items in chunks of 3, with a random draw between forward and
    backward: (gradients, the draw after backward)."""
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Dropout(0.5), torch.nn.Tanh())
    items = list(torch.randn(7, 4))

    def embed(chunk):
        return layer(torch.stack(list(chunk)))

    with torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=autocast, cache_enabled=False
    ):  # per-chunk casts, as in the second pass
        if cached:
            out = cached_embeddings(embed, items, 3, torch.device("cpu"))
        else:
            out = torch.cat([embed(items[i : i + 3]) for i in range(0, 7, 3)])
    weights = torch.rand(out.shape)  # drawn after the first pass, before the second
    (out.float() * weights).sum().backward()
    return {n: p.grad for n, p in layer.named_parameters()}, torch.rand(3)


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_the_second_pass_replays_the_first_and_leaves_the_random_state_as_it_found_it(autocast):
    """Under the first pass's autocast, with its dropout masks; after backward the generator is
    where backward found it, so later draws (data order, the next step's masks) are unchanged."""
    (grads, after), (plain, plain_after) = _step(True, autocast), _step(False, autocast)
    assert_same_grads(grads, plain)
    assert torch.equal(after, plain_after)


def test_two_processes_give_the_gradients_of_one_process_with_the_whole_batch(tmp_path):
    torchrun(str(SCRIPT), str(tmp_path), "3")
    got = torch.load(tmp_path / "grads.pt", weights_only=False)
    for pooling, hard in GRAD_CACHE_CASES:
        loss, plain = contrastive_grads(TRIPLETS, pooling=pooling, hard_negatives=hard)
        assert got[f"{pooling}-{hard}"]["loss"] == pytest.approx(loss, abs=1e-5), (pooling, hard)
        assert_same_grads(got[f"{pooling}-{hard}"]["grads"], plain)
    loss, plain = contrastive_grads(TRIPLETS, pooling="mean", hard_negatives=True, **IMPROVED_LOSS)
    assert got["improved"]["loss"] == pytest.approx(loss, abs=1e-5)
    assert_same_grads(got["improved"]["grads"], plain)


def test_the_flop_meter_counts_a_cached_step_as_the_plain_one():
    """The first pass (no graph) is not model FLOPs; the re-runs are counted as the plain pass is."""
    from harness.telemetry import flops

    with flops.meter() as plain:
        contrastive_grads(TRIPLETS, pooling="mean", hard_negatives=True)
    with flops.meter() as cached:
        contrastive_grads(TRIPLETS, pooling="mean", hard_negatives=True, mini_batch=5)
    assert plain[0] > 0 and cached[0] == pytest.approx(plain[0], rel=1e-12)
