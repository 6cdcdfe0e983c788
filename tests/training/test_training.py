"""The shared training loop and the InfoNCE loss: hand-computed values and equivalences."""

from __future__ import annotations

import pytest
import torch

from harness.errors import HarnessError
from harness.model.backbones import Backbone, BackboneSpec
from harness.training.checkpoints import latest_checkpoint
from harness.training.distributed import DistInfo
from harness.training.loop import NonFiniteLoss, TrainJob, run_stages
from harness.training.order import batch_indices, total_steps
from harness.training.parameters import prepare_model
from harness.training.train_config import Hooks
from methods.infonce import InfoNCEConfig
from tests.conftest import make_tiny_llama, make_tokenizer
from tests.training_fixtures import TRIPLETS, lora_model, stage_for


def test_batches_split_one_global_batch_the_same_way_for_any_layout():
    n, seed = 40, 3
    one = InfoNCEConfig(batch_size=8, grad_accum=1)
    accumulated = InfoNCEConfig(batch_size=2, grad_accum=2)
    for step in range(10):  # crosses epochs: 40 // 8 = 5 steps per epoch
        whole = batch_indices(n, seed=seed, step=step, micro=0, config=one, world=DistInfo())
        parts = [
            batch_indices(n, seed=seed, step=step, micro=m, config=accumulated, world=DistInfo(rank=r, world_size=2))
            for m in range(2)
            for r in range(2)
        ]
        assert [i for part in parts for i in part] == whole
    epoch = [i for s in range(5) for i in batch_indices(n, seed=seed, step=s, micro=0, config=one, world=DistInfo())]
    assert sorted(epoch) == list(range(n))
    assert total_steps(41, InfoNCEConfig(batch_size=8, epochs=2), 1) == 10


def test_too_little_data_for_one_step_is_a_clear_error():
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="fewer than one optimizer step"):
        total_steps(3, InfoNCEConfig(batch_size=2, grad_accum=2), 1)


def test_accumulating_two_micro_batches_equals_one_batch_of_twice_the_size():
    model, tokenizer = lora_model()
    stage, config = stage_for(in_batch=False, batch_size=4)
    loss, _ = stage.loss(model, tokenizer, TRIPLETS[:8], stage_for(in_batch=False, batch_size=8)[1])
    loss.backward()
    whole = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    model, tokenizer = lora_model()
    for part in (TRIPLETS[:4], TRIPLETS[4:8]):
        micro, _ = stage.loss(model, tokenizer, part, config)
        (micro / 2).backward()  # as the loop does with grad_accum = 2
    for name, grad in whole.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-6, rtol=1e-5)


class _Stage:
    """The contrastive stage over the fixed triplets."""

    def __init__(self, in_batch: bool = True):
        self.inner, _ = stage_for(in_batch=in_batch, batch_size=2)
        self.name = "contrastive"

    def examples(self, source, seed):
        return TRIPLETS

    def loss(self, model, tokenizer, batch, config):
        return self.inner.loss(model, tokenizer, batch, config)


class _Record(Hooks):
    def __init__(self, stop_after: int | None = None):
        self.logs, self.saved, self.notes = [], [], []
        self.stop_after = stop_after

    def steps(self, stage, logs):
        self.logs.extend(logs)

    def checkpoint(self, path):
        import json

        self.saved.append(json.loads((path / "state.json").read_text())["step"])

    def note(self, message):
        self.notes.append(message)

    def progress(self, stage, step, total, loss, lr, tps):
        if self.stop_after is not None and step == self.stop_after:
            raise KeyboardInterrupt


def _train(output_dir, hooks, steps=6, lr=5e-3, resume=False, **overrides):
    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), make_tiny_llama(0), make_tokenizer())
    config = InfoNCEConfig(
        steps=steps,
        batch_size=2,
        lr=lr,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.1,
        template="this sentence : {text}",
        **{"checkpoint_every": 2, **overrides},
    )
    torch.manual_seed(0)
    prepare_model(backbone, config)
    return run_stages(
        backbone, [_Stage()], config, TrainJob("unused", 0, output_dir, resume=resume), hooks, hooks.progress
    )


def test_training_lowers_the_loss_and_reports_throughput(tmp_path):
    hooks = _Record()
    (report,) = _train(tmp_path, hooks, steps=12)
    losses = [log.loss for log in hooks.logs]
    assert [log.step for log in hooks.logs] == list(range(1, 13))
    assert sum(losses[-3:]) < sum(losses[:3])
    assert report.samples == 12 * 2 and report.tokens > 0 and report.effective_batch == 2
    assert latest_checkpoint(tmp_path).name == "0-contrastive"


def test_resume_after_an_interruption_continues_the_same_trajectory(tmp_path):
    straight = _Record()
    _train(tmp_path / "straight", straight)

    interrupted = _Record(stop_after=5)  # checkpoints at steps 2 and 4, killed during step 5
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "resumed", interrupted)
    resumed = _Record()
    _train(tmp_path / "resumed", resumed, resume=True)  # a fresh model and loop, as after a restart

    assert [log.step for log in interrupted.logs] == [1, 2, 3, 4, 5]  # step 5 recorded, though not checkpointed
    assert interrupted.saved == [2, 4] and resumed.notes == ["resuming stage contrastive at step 4"]
    assert [log.step for log in resumed.logs] == [5, 6]
    expected = {log.step: log.loss for log in straight.logs}
    for log in resumed.logs:
        assert log.loss == pytest.approx(expected[log.step], abs=1e-6)


def test_a_fresh_run_never_reads_a_checkpoint_it_did_not_write(tmp_path):
    _train(tmp_path, _Record(), steps=2)
    with pytest.raises(HarnessError, match="a fresh run never reads one"):
        _train(tmp_path, _Record(), steps=2)


@pytest.mark.parametrize("minutes, expected", [(0.0, [6]), (1e-9, [1, 2, 3, 4, 5, 6])])
def test_checkpoints_are_also_saved_by_time(tmp_path, minutes, expected):
    hooks = _Record()
    _train(tmp_path, hooks, checkpoint_every=0, checkpoint_minutes=minutes)
    assert hooks.saved == expected


class _PoisonedStage(_Stage):
    """Returns NaN from the third micro-batch on."""

    calls = 0

    def loss(self, model, tokenizer, batch, config):
        loss, tokens = super().loss(model, tokenizer, batch, config)
        self.calls += 1
        return (loss * float("nan") if self.calls >= 3 else loss), tokens


def test_a_non_finite_loss_stops_the_stage_and_keeps_the_last_checkpoint(tmp_path):
    import json

    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), make_tiny_llama(0), make_tokenizer())
    config = InfoNCEConfig(steps=6, batch_size=2, lora_r=4, checkpoint_every=2, template="this sentence : {text}")
    prepare_model(backbone, config)
    with pytest.raises(NonFiniteLoss, match="nan at step 3"):
        run_stages(backbone, [_PoisonedStage()], config, TrainJob("-", 0, tmp_path), _Record())
    state = json.loads((latest_checkpoint(tmp_path) / "state.json").read_text())
    assert state["step"] == 2


def _grads(**options):
    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), make_tiny_llama(0), make_tokenizer())
    stage, config = stage_for(in_batch=True, batch_size=4, **options)
    torch.manual_seed(1)
    prepare_model(backbone, config)
    loss, _ = stage.loss(backbone.model, backbone.tokenizer, TRIPLETS[:4], config)
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in backbone.model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_changes_memory_not_gradients():
    plain_loss, plain = _grads()
    ckpt_loss, ckpt = _grads(gradient_checkpointing=True)
    assert ckpt_loss == pytest.approx(plain_loss, abs=1e-6)
    for name, grad in plain.items():
        torch.testing.assert_close(ckpt[name], grad, atol=1e-6, rtol=1e-5)


def test_full_finetuning_trains_every_weight_and_checkpoints_them(tmp_path):
    _, grads = _grads(finetune="full")
    assert not any("lora_" in n for n in grads) and len(grads) > 10
    hooks = _Record()
    _train(tmp_path, hooks, steps=4, finetune="full", lr=1e-3)
    saved = torch.load(latest_checkpoint(tmp_path) / "trainable.pt", weights_only=True)
    assert any(n.endswith("embed_tokens.weight") for n in saved) and not any("lora_" in n for n in saved)


def test_bf16_autocast_step_runs_and_stays_close_to_fp32(tmp_path):
    fp32, bf16 = _Record(), _Record()
    _train(tmp_path / "a", fp32, steps=2)
    _train(tmp_path / "b", bf16, steps=2, bf16="on")
    assert bf16.logs[0].loss == pytest.approx(fp32.logs[0].loss, rel=0.05)
