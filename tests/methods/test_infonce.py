"""InfoNCE: the loss by hand, and the stage reading every option from the config it is given."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.data.train_data import Triplet
from harness.encoder import EncodeSettings, PooledEncoder
from methods.infonce import ContrastiveStage, InfoNCEConfig, infonce_loss
from tests.conftest import make_tiny_llama, make_tokenizer


def test_infonce_loss_by_hand():
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    p = F.normalize(torch.tensor([[1.0, 1.0], [0.0, 1.0]]), dim=-1)
    n = F.normalize(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), dim=-1)
    tau = 0.5
    s = 1 / math.sqrt(2)
    # hard negative only: row 0 scores (s, -1), row 1 scores (1, 0)
    hard = (-math.log(math.exp(s / tau) / (math.exp(s / tau) + math.exp(-1 / tau)))
            - math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0)))) / 2
    assert float(infonce_loss(q, p, n, tau, in_batch=False)) == pytest.approx(hard, rel=1e-6)
    # in-batch: candidates p0, p1, n0, n1; row 0 scores (s, 0, -1, 1), row 1 scores (s, 1, 0, 0)
    row0 = -math.log(math.exp(s / tau) / sum(math.exp(v / tau) for v in (s, 0, -1, 1)))
    row1 = -math.log(math.exp(1 / tau) / sum(math.exp(v / tau) for v in (s, 1, 0, 0)))
    assert float(infonce_loss(q, p, n, tau, in_batch=True)) == pytest.approx((row0 + row1) / 2, rel=1e-6)


BATCH = [
    Triplet("a cat sat on the mat", "a cat is sitting", "the sun shines"),
    Triplet("dogs run in the park", "a dog runs", "rain fell all day"),
    Triplet("he reads a book", "a man is reading", "the house is red"),
]


@pytest.mark.parametrize(
    "pooling, in_batch, temperature, hard", [("last", False, 0.3, True), ("mean", True, 0.05, True), ("last", True, 0.1, False)],
)
def test_the_stage_reads_every_option_from_the_config_it_is_given(pooling, in_batch, temperature, hard):
    """The loss of a batch equals InfoNCE recomputed in numpy over the encoder's own vectors, with
    the given pooling, template, temperature and negatives: no option comes from anywhere else."""
    model, tokenizer = make_tiny_llama(0).eval(), make_tokenizer()
    config = InfoNCEConfig(
        pooling=pooling, in_batch=in_batch, temperature=temperature, hard_negatives=hard, template="q: {text} !", max_length=32,
    )
    with torch.no_grad():
        loss, tokens = ContrastiveStage().loss(model, tokenizer, BATCH, config)
    encoder = PooledEncoder(model, tokenizer, pooling=pooling, settings=EncodeSettings(max_length=32), template="q: {text} !")
    unit = [encoder.encode([getattr(t, side) for t in BATCH]) for side in ("query", "pos", "neg")]
    q, p, n = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in unit)
    candidates = (np.concatenate([p, n]) if hard else p) if in_batch else None
    expected = []
    for i in range(len(BATCH)):
        scores = q[i] @ candidates.T if in_batch else np.array([q[i] @ p[i], q[i] @ n[i]])
        scores = scores / temperature
        top = scores.max()
        expected.append(top + math.log(np.exp(scores - top).sum()) - scores[i if in_batch else 0])
    assert float(loss) == pytest.approx(float(np.mean(expected)), rel=1e-4, abs=1e-5)
    sides = ("query", "pos", "neg") if hard else ("query", "pos")
    assert tokens == sum(len(r) for r in encoder.tokenize([getattr(t, s) for s in sides for t in BATCH]))


def test_options_that_leave_no_negative_or_cannot_run_gradcache_are_refused():
    from harness.errors import HarnessError
    from harness.options import check_values
    from methods.infonce import InfoNCE

    with pytest.raises(HarnessError, match="hard_negatives=false leave a query no negative"):
        check_values(InfoNCEConfig(in_batch=False, hard_negatives=False), "method 'infonce'", prefix="method_args.")
    with pytest.raises(HarnessError, match="mini_batch .GradCache. re-runs the model inside backward.*fsdp"):
        InfoNCE(InfoNCEConfig(mini_batch=4, sharding="fsdp", finetune="full")).check_inputs("offline", 0)
    InfoNCE(InfoNCEConfig(mini_batch=4)).check_inputs("offline", 0)


@pytest.mark.parametrize("pack", [False, True])
def test_the_training_path_gives_the_encoders_vectors(pack):
    """InfoNCE embeds what it trains through the encoder's own function: the same vectors, padded
    or packed, for a template whose pooled span is the text alone."""
    model, tokenizer = make_tiny_llama(0).eval(), make_tokenizer()
    template = "q : {pool}{text}{/pool} !"
    config = InfoNCEConfig(template=template, max_length=32, pack=pack)
    texts = [t.query for t in BATCH] + [t.pos for t in BATCH]
    with torch.no_grad():
        trained = ContrastiveStage.embed(model, ContrastiveStage.rows(tokenizer, texts, config), config).numpy()
    encoded = PooledEncoder(model, tokenizer, pooling="mean", settings=EncodeSettings(max_length=32), template=template).encode(texts)
    np.testing.assert_allclose(trained, encoded / np.linalg.norm(encoded, axis=1, keepdims=True), atol=1e-5)
