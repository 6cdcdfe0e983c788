"""InfoNCE: the loss by hand, and the stage reading every option from the config it is given."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.data.train_data import Triplet
from harness.encoder import EncodeSettings, PooledEncoder
from methods.infonce import ContrastiveStage, InfoNCEConfig, LossOptions, infonce_loss
from tests.conftest import make_tiny_llama, make_tokenizer


def test_infonce_loss_by_hand():
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    p = F.normalize(torch.tensor([[1.0, 1.0], [0.0, 1.0]]), dim=-1)
    n = F.normalize(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), dim=-1)
    tau = 0.5
    s = 1 / math.sqrt(2)
    # hard negative only: row 0 scores (s, -1), row 1 scores (1, 0)
    hard = (
        -math.log(math.exp(s / tau) / (math.exp(s / tau) + math.exp(-1 / tau)))
        - math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0)))
    ) / 2
    assert float(infonce_loss(q, p, n, LossOptions(tau, in_batch=False))) == pytest.approx(hard, rel=1e-6)
    # in-batch: candidates p0, p1, n0, n1; row 0 scores (s, 0, -1, 1), row 1 scores (s, 1, 0, 0)
    row0 = -math.log(math.exp(s / tau) / sum(math.exp(v / tau) for v in (s, 0, -1, 1)))
    row1 = -math.log(math.exp(1 / tau) / sum(math.exp(v / tau) for v in (s, 1, 0, 0)))
    assert float(infonce_loss(q, p, n, LossOptions(tau, in_batch=True))) == pytest.approx((row0 + row1) / 2, rel=1e-6)


BATCH = [
    Triplet("a cat sat on the mat", "a cat is sitting", "the sun shines"),
    Triplet("dogs run in the park", "a dog runs", "rain fell all day"),
    Triplet("he reads a book", "a man is reading", "the house is red"),
]


@pytest.mark.parametrize(
    "pooling, in_batch, temperature, hard",
    [("last", False, 0.3, True), ("mean", True, 0.05, True), ("last", True, 0.1, False)],
)
def test_the_stage_reads_every_option_from_the_config_it_is_given(pooling, in_batch, temperature, hard):
    """The loss of a batch equals InfoNCE recomputed in numpy over the encoder's own vectors, with
    the given pooling, template, temperature and negatives: no option comes from anywhere else."""
    model, tokenizer = make_tiny_llama(0).eval(), make_tokenizer()
    config = InfoNCEConfig(
        pooling=pooling,
        in_batch=in_batch,
        temperature=temperature,
        hard_negatives=hard,
        template="q: {text} !",
        max_length=32,
    )
    with torch.no_grad():
        loss, tokens = ContrastiveStage().loss(model, tokenizer, BATCH, config)
    encoder = PooledEncoder(
        model, tokenizer, pooling=pooling, settings=EncodeSettings(max_length=32), template="q: {text} !"
    )
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
    encoded = PooledEncoder(
        model, tokenizer, pooling="mean", settings=EncodeSettings(max_length=32), template=template
    ).encode(texts)
    np.testing.assert_allclose(trained, encoded / np.linalg.norm(encoded, axis=1, keepdims=True), atol=1e-5)


def reference_loss(
    q, p, n, tau, *, in_batch=True, query_negatives=False, document_negatives=False, margin=None, symmetric=False
):
    """The improved contrastive loss written from GTE's and Qwen3-Embedding's formulas, one query at
    a time: -log e^{s+/tau} / (e^{s+/tau} + sum of e^{s-/tau} over the kept negatives)."""
    docs = (np.concatenate([p, n]) if n is not None else p) if in_batch else None

    def term(positive, negatives):
        kept = [s for s in negatives if margin is None or s <= positive + margin]
        logits = np.array([positive, *kept]) / tau
        return np.log(np.exp(logits).sum()) - logits[0]

    forward = []
    for i in range(len(q)):
        if not in_batch:
            forward.append(term(q[i] @ p[i], [q[i] @ n[i]]))
            continue
        negatives = [q[i] @ d for j, d in enumerate(docs) if j != i]
        if query_negatives:
            negatives += [q[i] @ q[j] for j in range(len(q)) if j != i]
        if document_negatives:
            negatives += [p[i] @ d for j, d in enumerate(docs) if j != i]
        forward.append(term(q[i] @ p[i], negatives))
    loss = np.mean(forward)
    if symmetric:
        backward = [term(p[i] @ q[i], [p[i] @ q[j] for j in range(len(q)) if j != i]) for i in range(len(q))]
        loss = (loss + np.mean(backward)) / 2
    return loss


def unit(rng, rows, dim=6):
    v = rng.standard_normal((rows, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


IMPROVED = [
    {"query_negatives": True},
    {"document_negatives": True},
    {"symmetric": True},
    {"false_negative_margin": 0.1},
    {"query_negatives": True, "document_negatives": True, "symmetric": True, "false_negative_margin": 0.0},
]


@pytest.mark.parametrize("hard", [True, False], ids=["hard-negatives", "positives-only"])
@pytest.mark.parametrize("options", IMPROVED, ids=lambda o: "+".join(o))
def test_the_improved_loss_equals_numpy(options, hard):
    from methods.infonce import LossOptions

    rng = np.random.default_rng(3)
    q, p, n = unit(rng, 5), unit(rng, 5), unit(rng, 5) if hard else None
    got = infonce_loss(*(torch.tensor(v) if v is not None else None for v in (q, p, n)), LossOptions(0.2, **options))
    margin = options.get("false_negative_margin")
    expected = reference_loss(
        q,
        p,
        n,
        0.2,
        query_negatives=options.get("query_negatives", False),
        document_negatives=options.get("document_negatives", False),
        margin=margin,
        symmetric=options.get("symmetric", False),
    )
    assert float(got) == pytest.approx(expected, rel=1e-6)
    if margin is not None:  # the margin left something out here, so the mask was tested
        docs = np.concatenate([p, n]) if hard else p
        assert any(q[i] @ d > q[i] @ p[i] + margin for i in range(5) for j, d in enumerate(docs) if j != i)
        assert float(got) != pytest.approx(
            float(
                infonce_loss(
                    torch.tensor(q),
                    torch.tensor(p),
                    None if n is None else torch.tensor(n),
                    LossOptions(0.2, **{**options, "false_negative_margin": None}),
                )
            )
        )


def test_the_margin_also_masks_a_hard_negative_without_in_batch_negatives():
    from methods.infonce import LossOptions

    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.array([[0.6, 0.8], [0.0, 1.0]])
    n = np.array([[1.0, 0.0], [1.0, 0.0]])  # row 0: the negative (1.0) beats the positive (0.6) by 0.4
    got = infonce_loss(
        torch.tensor(q), torch.tensor(p), torch.tensor(n), LossOptions(0.5, in_batch=False, false_negative_margin=0.1)
    )
    expected = reference_loss(q, p, n, 0.5, in_batch=False, margin=0.1)
    assert float(got) == pytest.approx(expected, rel=1e-6) and expected == pytest.approx(np.log(1 + np.exp(-2.0)) / 2)


def test_matryoshka_sums_the_loss_over_prefixes_renormalised():
    """sum_k w_k * loss(prefix_k), each prefix re-normalised, against numpy."""
    rng = np.random.default_rng(4)
    q, p, n = (rng.standard_normal((4, 8)) for _ in range(3))
    config = InfoNCEConfig(
        temperature=0.1, matryoshka_dims=[2, 4, 8], matryoshka_weights=[1.0, 0.5, 2.0], symmetric=True
    )
    normed = [torch.nn.functional.normalize(torch.tensor(v), dim=-1) for v in (q, p, n)]
    got = ContrastiveStage().objective(*normed, config)

    def cut(v, d):
        return v[:, :d] / np.linalg.norm(v[:, :d], axis=1, keepdims=True)

    expected = sum(
        w * reference_loss(cut(q, d), cut(p, d), cut(n, d), 0.1, symmetric=True)
        for d, w in ((2, 1.0), (4, 0.5), (8, 2.0))
    )
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_loss_options_that_cannot_work_together_are_refused():
    from harness.errors import HarnessError
    from harness.options import check_values

    for options, message in [
        ({"in_batch": False, "query_negatives": True}, "query_negatives=true scores the batch's other texts"),
        ({"in_batch": False, "symmetric": True}, "symmetric=true"),
        ({"matryoshka_dims": [8, 4], "matryoshka_weights": [1.0]}, "one weight per"),
        ({"matryoshka_dims": [8, 8]}, "must not repeat a dim"),
        ({"matryoshka_dims": [0]}, "must be >= 1"),
        ({"false_negative_margin": -0.1}, "must be >= 0"),
    ]:
        with pytest.raises(HarnessError, match=message):
            check_values(InfoNCEConfig(**options), "method 'infonce'", prefix="method_args.")


def test_matryoshka_dims_wider_than_the_backbone_are_refused_before_the_run_is_recorded():
    from harness.config import RunConfig
    from harness.errors import HarnessError
    from harness.model.backbones import Backbone, BackboneSpec
    from harness.runs.backbone_checks import check_against_backbone

    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), make_tiny_llama(0), make_tokenizer())
    check_against_backbone(backbone, RunConfig(), InfoNCEConfig(matryoshka_dims=[8, 32]))
    with pytest.raises(HarnessError, match=r"matryoshka_dims 16,64: tiny's embeddings have 32 dims"):
        check_against_backbone(backbone, RunConfig(), InfoNCEConfig(matryoshka_dims=[16, 64]))
