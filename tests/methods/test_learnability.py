"""Each trained method can learn on the tiny Llama: seconds of its own stage, run by the shared
loop (``run_stages``), must move a quantity the test measures with its own code far past what an
untrained model gives, and what a model whose gradient path is cut gives (cutting it makes each
test fail; the figures in the comments were measured so).

Each test also runs once with its gradient path cut where the method's training code builds it
(the slot states leaving ``compress``, the pooled InfoNCE embeddings, detached and made leaves
again, so the loop still steps and nothing learns), and must then fail its criterion.

IC: the decoder's loss on 4 texts with each text's own slots falls far below that with another
text's. CDA: on fixed triplets, log p(pos | E_q) - log p(neg | E_q) rises. InfoNCE: on a fixed
batch, cos(q, pos) - cos(q, neg) of the evaluation encoder's vectors rises.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.encoder import EncodeSettings
from harness.method import Method
from harness.model.backbones import Backbone, BackboneSpec
from harness.training.loop import TrainJob, run_stages
from harness.training.parameters import prepare_model
from harness.training.train_config import Hooks, TrainConfig
from methods.autoregembed import AutoRegEmbed, AutoRegEmbedConfig, compress, score_targets, slots_of
from methods.infonce import InfoNCE, InfoNCEConfig
from tests.conftest import make_tiny_llama, make_tokenizer
from tests.training_fixtures import TRIPLETS, write_triplets

TEXTS = ["the cat sat on the mat", "the dog ran in the park", "rain falls", "the woman drank water"]
OPTIONS = dict(lora_r=8, lora_alpha=16, lora_dropout=0.0, warmup_ratio=0.0, max_length=32, lr=1e-2)
# The tiny Llama's LM head (weights of std 0.02) gives logits under ~0.7 in size whatever it
# reads, so no prefix can steer its distribution far from uniform; ten times larger, it can.
HEAD_SCALE = 10.0


@pytest.fixture(params=[False, True], ids=["intact", "cut"])
def cut(request, monkeypatch) -> bool:
    """True: the training code's gradient path is cut (its measurements here are not touched)."""
    if request.param:
        import harness.model.packing as packing
        import methods.autoregembed.stages as stages

        def cut_off(function):
            return lambda *args, **kwargs: function(*args, **kwargs).detach().requires_grad_()

        monkeypatch.setattr(stages, "compress", cut_off(stages.compress))
        monkeypatch.setattr(packing, "pool_rows", cut_off(packing.pool_rows))
    return request.param


@pytest.fixture(autouse=True)
def no_peak_measurement(monkeypatch):
    """The loop's MFU ceiling (seconds of large matrix products) is not what these tests measure."""
    monkeypatch.setattr("harness.telemetry.phases.matmul_peak", lambda device, dtype: 1.0)


def tiny_backbone(config: TrainConfig) -> Backbone:
    """The tiny Llama, its LM head scaled by ``HEAD_SCALE``, with LoRA attached (seeded)."""
    model = make_tiny_llama(0)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(HEAD_SCALE)
    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), model, make_tokenizer())
    torch.manual_seed(0)
    prepare_model(backbone, config)
    return backbone


def train(backbone: Backbone, method: Method, data: Path) -> None:
    """The method's stages on ``data`` through the shared loop (seed 0, no checkpoints)."""
    run_stages(backbone, method.stages(), method.config, TrainJob(str(data), 0, None), Hooks())


def slot_method(**options) -> tuple[AutoRegEmbed, Backbone]:
    config = AutoRegEmbedConfig(instruction="means one word :", batch_size=4, **OPTIONS, **options)
    method = AutoRegEmbed(config)
    backbone = tiny_backbone(config)
    method.prepare(backbone)
    return method, backbone


def decoder_log_probs(
    method: AutoRegEmbed, backbone: Backbone, inputs: list[str], targets: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(summed log p(target + EOS | E(input)), token count) per pair: E from the slots after the
    evaluation encoder's tokens of each input, the frozen decoder scoring each target."""
    tok = backbone.tokenizer
    rows = method.build_encoder(backbone, EncodeSettings(max_length=32)).tokenize(inputs)
    ids = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in targets]
    with torch.no_grad():
        e = compress(backbone.model, slots_of(backbone.model), rows, pack=False)
        with method.decoding(backbone.model) as decoder:
            scored = score_targets(decoder, e, ids, pack=False)
    return scored.sums.numpy(), scored.tokens.numpy()


def ic_losses(method: AutoRegEmbed, backbone: Backbone) -> tuple[float, float]:
    """(own, shuffled): nats per token of the texts after their own E, and after the next text's."""
    own = decoder_log_probs(method, backbone, TEXTS, TEXTS)
    shuffled = decoder_log_probs(method, backbone, TEXTS[1:] + TEXTS[:1], TEXTS)
    own_loss, shuffled_loss = (float(-sums.sum() / tokens.sum()) for sums, tokens in (own, shuffled))
    return own_loss, shuffled_loss


def test_ic_makes_each_texts_own_slots_carry_it(tmp_path, cut):
    data = tmp_path / "ic.jsonl"
    data.write_text("".join(json.dumps({"context": t, "answer": t}) + "\n" for t in TEXTS))
    method, backbone = slot_method(stages=["ic"], ic_data=str(data), ic_steps=60)
    own, shuffled = ic_losses(method, backbone)
    assert abs(own - shuffled) < 0.05, (own, shuffled)  # measured 5.562 / 5.554
    train(backbone, method, data)
    trained_own, trained_shuffled = ic_losses(method, backbone)
    # measured 3.33 / 4.63; untrained or cut: 5.56 / 5.55
    learned = trained_own < trained_shuffled - 0.8 and trained_own < 0.75 * own
    assert learned != cut, (own, trained_own, trained_shuffled)


def cda_margins(method: AutoRegEmbed, backbone: Backbone) -> np.ndarray:
    """Per triplet: log p(pos | E_q) - log p(neg | E_q), each summed over its tokens and EOS."""
    queries = [t.query for t in TRIPLETS]
    pos, _ = decoder_log_probs(method, backbone, queries, [t.pos for t in TRIPLETS])
    neg, _ = decoder_log_probs(method, backbone, queries, [t.neg for t in TRIPLETS])
    return pos - neg


def test_cda_raises_the_positives_margin_over_the_negatives(tmp_path, cut):
    method, backbone = slot_method(stages=["cda"], cda_steps=30)
    before = cda_margins(method, backbone)  # measured mean -9.32
    train(backbone, method, write_triplets(tmp_path / "triplets.jsonl"))
    rise = cda_margins(method, backbone) - before
    # measured: mean 13.3 nats, each triplet 11.4 to 15.3; untrained or cut: 0
    assert (rise.mean() > 5.0 and (rise > 2.0).all()) != cut, rise


def cosine_gaps(method: InfoNCE, backbone: Backbone) -> np.ndarray:
    """Per triplet: cos(q, pos) - cos(q, neg) of the method's evaluation encoder's vectors."""
    encoder = method.build_encoder(backbone, EncodeSettings(max_length=32))
    q, p, n = (encoder.encode([getattr(t, side) for t in TRIPLETS]) for side in ("query", "pos", "neg"))
    q, p, n = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (q, p, n))
    return (q * p).sum(1) - (q * n).sum(1)


def test_infonce_raises_the_cosine_gap_between_positives_and_negatives(tmp_path, cut):
    config = InfoNCEConfig(template="{text} means one word :", temperature=0.1, batch_size=8, steps=20, **OPTIONS)
    method = InfoNCE(config)
    backbone = tiny_backbone(config)
    before = cosine_gaps(method, backbone)  # measured mean -0.17
    train(backbone, method, write_triplets(tmp_path / "triplets.jsonl"))
    rise = cosine_gaps(method, backbone) - before
    # measured: mean 1.18, each triplet 0.55 to 1.67; untrained or cut: 0
    assert (rise.mean() > 0.5 and (rise > 0.2).all()) != cut, rise
