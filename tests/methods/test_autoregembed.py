"""AutoRegEmbed against hand-computed expectations on a tiny random Llama."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from harness.encoder import EncodeSettings, pad_batch
from harness.model.backbones import Backbone, BackboneSpec
from harness.training.parameters import prepare_model
from methods.autoregembed import (
    AutoRegEmbed,
    AutoRegEmbedConfig,
    CDAExample,
    CDAStage,
    ICStage,
    cda_loss,
    cda_scores,
    compress,
    compress_padded,
    score_targets,
)
from tests.conftest import make_tiny_llama, make_tokenizer

INSTRUCTION = "means one word :"
TRIPLES = [
    CDAExample("the cat sat on the mat", "a cat sat on a mat", "the car drove down the road"),
    CDAExample("the dog ran", "a dog ran in a park", "the sky is blue"),
    CDAExample("the bird flew over the house and the sun shines", "a bird flew", "rain falls"),
]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_cda_loss_on_fixed_log_probabilities():
    a, self_lp, n, ra, rn = (
        torch.tensor([-10.0]),
        torch.tensor([-4.0]),
        torch.tensor([[-20.0]]),
        torch.tensor([-12.0]),
        torch.tensor([[-15.0]]),
    )
    s1, s2 = cda_scores(a, self_lp, n, ra, rn, beta=0.1, sign="paper")
    assert float(s1) == pytest.approx(sigmoid(0.1 * 6))  # |a - self| = 6
    assert float(s2) == pytest.approx(sigmoid(0.1 * ((-10 + 20) - (-12 + 15))))  # m = 10 - 3 = 7
    expected = math.log(1 + math.exp((sigmoid(0.6) - sigmoid(0.7)) / 0.1))
    assert float(cda_loss(s1, s2, tau=0.1)) == pytest.approx(expected, rel=1e-6)
    _, released = cda_scores(a, self_lp, n, ra, rn, beta=0.1, sign="released")
    assert float(released) == pytest.approx(sigmoid(0.1 * (10 + 3)))
    log_form, _ = cda_scores(a, self_lp, n, ra, rn, beta=0.1, sign="paper", s1_form="logsigmoid")
    assert float(log_form) == pytest.approx(math.log(1 + math.exp(0.6)))  # softplus: unbounded above


def test_several_negatives_joint_and_pairwise():
    s1, s2 = torch.tensor([0.6]), torch.tensor([[0.7, 0.4]])
    joint = -math.log(math.exp(-6) / (math.exp(-6) + math.exp(-7) + math.exp(-4)))
    pairwise = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(2))) / 2
    assert float(cda_loss(s1, s2, tau=0.1, negatives="joint")) == pytest.approx(joint, rel=1e-6)
    assert float(cda_loss(s1, s2, tau=0.1, negatives="pairwise")) == pytest.approx(pairwise, rel=1e-6)
    one = torch.tensor([[0.7]])
    assert float(cda_loss(s1, one, tau=0.1, negatives="joint")) == pytest.approx(
        float(cda_loss(s1, one, tau=0.1, negatives="pairwise"))
    )


def _method(finetune="lora", seed=0, **options):
    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), make_tiny_llama(seed), make_tokenizer())
    original = copy.deepcopy(backbone.model)
    options = {"lora_dropout": 0.0, **options}
    config = AutoRegEmbedConfig(
        instruction=INSTRUCTION, lora_r=4, lora_alpha=8, finetune=finetune, batch_size=3, max_length=32, **options
    )
    method = AutoRegEmbed(config)
    torch.manual_seed(seed)
    prepare_model(backbone, config)
    method.prepare(backbone)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():  # non-zero LoRA B, so the adapted model differs from the original
        for name, parameter in backbone.model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return method, backbone, original


def test_slot_positions_follow_each_rows_last_real_token():
    method, backbone, _ = _method()
    tok = backbone.tokenizer
    rows = [tok(t)["input_ids"] for t in ("the cat", "the dog ran in the park today", "sun")]
    ids, mask = pad_batch(rows, tok.pad_token_id, torch.device("cpu"))
    with torch.no_grad():
        batched = compress_padded(backbone.model, method.slots, ids, mask)
        packed = compress(backbone.model, method.slots, rows, pack=True)
        for i, row in enumerate(rows):
            alone = compress(backbone.model, method.slots, [row], pack=False)
            torch.testing.assert_close(batched[i], alone[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(packed[i], alone[0], atol=1e-5, rtol=1e-5)
    assert batched.shape == (3, 5, 32)
    width = max(len(r) for r in rows)  # the same batch padded on the left
    left_ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows])
    left_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.no_grad():
        torch.testing.assert_close(
            compress_padded(backbone.model, method.slots, left_ids, left_mask), batched, atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("pack", [True, False])
def test_log_probability_sums_exactly_the_target_and_eos_tokens(pack):
    method, backbone, original = _method()
    compressed = torch.randn(2, 5, 32)
    targets = [[5, 6, 2], [7, 2]]  # token ids + EOS (2)
    scored = score_targets(original, compressed, targets, pack=pack)
    assert scored.tokens.tolist() == [3, 2]
    for row, target in enumerate(targets):
        embeds = torch.cat([compressed[row], original.get_input_embeddings()(torch.tensor(target))]).unsqueeze(0)
        logits = original(inputs_embeds=embeds).logits[0].log_softmax(-1)
        # slot positions 0..3 predict nothing that is scored; position 4+t predicts target[t]
        manual = sum(logits[4 + t, token] for t, token in enumerate(target))
        assert float(scored.sums[row].detach()) == pytest.approx(float(manual.detach()), abs=1e-4)


def test_decoder_with_adapters_disabled_is_the_untouched_base_model():
    method, backbone, original = _method()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        with method.decoding(backbone.model) as decoder:
            frozen = decoder(input_ids=ids).logits
        adapted = backbone.model(input_ids=ids).logits
        untouched = original(input_ids=ids).logits
    torch.testing.assert_close(frozen, untouched, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(adapted, untouched, atol=1e-4)


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_gradients_reach_encoder_parameters_and_slots_but_not_the_frozen_decoder(finetune):
    method, backbone, _ = _method(finetune=finetune)
    stage = CDAStage(method)
    config = method.config
    batch = stage.begin(backbone.model, backbone.tokenizer, TRIPLES, config)
    loss, _ = stage.loss(backbone.model, backbone.tokenizer, batch, config)
    ic_loss, _ = ICStage(method).loss(backbone.model, backbone.tokenizer, [method_example() for _ in range(2)], config)
    (loss + ic_loss).backward()
    assert method.slots.grad is not None and method.slots.grad.abs().sum() > 0
    trainable = [(n, p) for n, p in backbone.model.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n, _ in trainable) == (finetune == "lora")
    assert all(p.grad is not None for n, p in trainable if "lm_head" not in n)  # the encoder uses no LM head
    frozen_params = [p for _, p in backbone.model.named_parameters() if not p.requires_grad]
    if finetune == "lora":
        assert frozen_params and all(p.grad is None for p in frozen_params)
    else:
        assert all(p.grad is None for p in method.frozen.parameters())


def method_example():
    from methods.autoregembed import ICExample

    return ICExample("the cat sat on the mat", "", "the cat sat on the mat")


def test_s2_is_one_half_when_cda_begins_with_the_paper_sign():
    method, backbone, _ = _method()
    stage = CDAStage(method)
    batch = stage.begin(backbone.model, backbone.tokenizer, TRIPLES, method.config)
    assert all(e.ref_pos != 0.0 and e.ref_neg != 0.0 for e in batch)
    with torch.no_grad():
        _, s2, _ = stage.scores(backbone.model, backbone.tokenizer, batch, method.config)
    torch.testing.assert_close(s2, torch.full_like(s2, 0.5), atol=1e-5, rtol=0)


def test_reusing_the_query_compression_equals_recomputing_it():
    method, backbone, _ = _method()
    stage = CDAStage(method)
    config = method.config
    batch = stage.begin(backbone.model, backbone.tokenizer, TRIPLES, config)
    model, tok = backbone.model, backbone.tokenizer

    loss, _ = stage.loss(model, tok, batch, config)
    loss.backward()
    reused = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()

    # the reference layout: E_q computed twice, each decoder pass on its own
    b = len(batch)
    e_q1 = stage.encode(model, tok, [e.query for e in batch], config)
    e_q2 = stage.encode(model, tok, [e.query for e in batch], config)
    e_pos = stage.encode(model, tok, [e.pos for e in batch], config)
    with method.decoding(model) as decoder:
        a = score_targets(decoder, e_q1, stage.targets(tok, [e.pos for e in batch], config), pack=config.pack).sums
        self_lp = score_targets(
            decoder, e_pos, stage.targets(tok, [e.pos for e in batch], config), pack=config.pack
        ).sums
        n = score_targets(decoder, e_q2, stage.targets(tok, [e.neg for e in batch], config), pack=config.pack).sums
    ra = torch.tensor([e.ref_pos for e in batch])
    rn = torch.tensor([[e.ref_neg] for e in batch])
    s1, s2 = cda_scores(a, self_lp, n.view(b, 1), ra, rn, beta=config.beta, sign="paper")
    recomputed = cda_loss(s1, s2, tau=config.tau)
    recomputed.backward()
    assert float(recomputed) == pytest.approx(float(loss), abs=1e-5)
    for name, grad in reused.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("form", ["kl", "js"])
def test_divergence_forms_are_zero_when_query_and_positive_coincide(form):
    method, backbone, _ = _method(positive_score=form)
    stage = CDAStage(method)
    same = [CDAExample("the cat sat", "the cat sat", "rain falls")]
    batch = stage.begin(backbone.model, backbone.tokenizer, same, method.config)
    with torch.no_grad():
        s1, _, _ = stage.scores(backbone.model, backbone.tokenizer, batch, method.config)
    assert float(s1) == pytest.approx(0.5, abs=1e-5)  # sigmoid(beta * 0)


def test_slot_encoder_gives_unit_vectors_of_the_mean_compression():
    method, backbone, _ = _method()
    encoder = method.build_encoder(backbone, EncodeSettings(batch_size=2))
    texts = ["the cat sat on the mat", "rain", "the dog ran in the park"]
    got = encoder.encode(texts)
    tok = backbone.tokenizer
    for i, text in enumerate(texts):
        row = encoder.tokenize([text])[0]
        assert row == tok(text + "\n" + INSTRUCTION + "\n")["input_ids"]
        with torch.no_grad():
            mean = compress(backbone.model, method.slots, [row], pack=False)[0].mean(0)
        torch.testing.assert_close(torch.from_numpy(got[i]), mean / mean.norm(), atol=1e-5, rtol=1e-5)


def test_stage_selection_and_presets():
    from harness.errors import HarnessError
    from harness.runs.plan import method_options

    assert [s.name for s in AutoRegEmbed(AutoRegEmbedConfig(stages=["ic"])).stages()] == ["ic"]
    with pytest.raises(HarnessError, match="choose from ic, cda"):
        AutoRegEmbed(AutoRegEmbedConfig(stages=["cdaa"]))
    quick = method_options(AutoRegEmbed, {}, "autoregembed")  # the default: both stages, a few steps
    assert (
        quick.preset == "quick"
        and quick.finetune == "lora"
        and (quick.ic_steps, quick.cda_steps, quick.batch_size) == (16, 8, 4)
    )
    assert AutoRegEmbed(quick).closing_notes() and [s.name for s in AutoRegEmbed(quick).stages()] == ["ic", "cda"]
    small = method_options(AutoRegEmbed, {"preset": "small"}, "autoregembed")
    assert small.finetune == "lora" and small.ic_steps == 40
    ic, cda = AutoRegEmbed(small).stages()
    assert "max_examples" not in ic.overrides and small.max_examples == 0  # IC reads every text
    assert cda.overrides["max_examples"] == 240 and "lr" not in cda.overrides  # CDA at the IC rate (measured)
    paper = method_options(AutoRegEmbed, {"preset": "paper", "cda_lr": 1e-6}, "autoregembed")
    assert paper.finetune == "full" and paper.ic_lr == 1e-5 and paper.cda_lr == 1e-6 and paper.cda_epochs == 4.0
    assert AutoRegEmbed(paper).closing_notes() == [] and AutoRegEmbed(small).closing_notes()
    with pytest.raises(HarnessError, match="Did you mean 'paper'"):
        method_options(AutoRegEmbed, {"preset": "papr"}, "autoregembed")


def test_ic_data_from_a_file_from_triplets_and_pwc_offline(tmp_path):
    from harness.errors import HarnessError
    from methods.autoregembed import ICExample, ic_examples

    path = tmp_path / "ic.tsv"
    path.write_text("context\tprompt\tanswer\nthe cat sat\twhat sat?\tthe cat\nrain falls\t\train\n")
    assert ic_examples(str(path), "offline", 0) == [
        ICExample("the cat sat", "what sat?", "the cat"),
        ICExample("rain falls", "", "rain"),
    ]
    triplets = tmp_path / "t.tsv"
    triplets.write_text("query\tpos\tneg\nq1\tp1\tn1\nq1\tp2\tn2\n")
    assert ic_examples("", str(triplets), 0) == [ICExample(t, "", t) for t in ("q1", "p1", "p2")]
    bad = tmp_path / "bad.tsv"
    bad.write_text("context\tprompt\nx\ty\n")
    with pytest.raises(HarnessError, match="missing column"):
        ic_examples(str(bad), "offline", 0)
    with pytest.raises(HarnessError, match="sggetao/PwC from the hub"):
        ic_examples("pwc", "offline", 0)


@pytest.mark.parametrize("stage_cls", [ICStage, CDAStage])
def test_gradient_checkpointing_leaves_autoregembed_gradients_unchanged(stage_cls):
    """The decoder runs with adapters disabled; a checkpointed layer recomputed in backward (when
    adapters are enabled again) would silently differ, so the decoder pass is never checkpointed."""
    results = []
    for checkpointing in (False, True):
        method, backbone, _ = _method(gradient_checkpointing=checkpointing)
        stage = stage_cls(method)
        if stage_cls is CDAStage:
            batch = stage.begin(backbone.model, backbone.tokenizer, TRIPLES, method.config)
        else:
            batch = [method_example(), method_example()]
        backbone.model.train()
        loss, _ = stage.loss(backbone.model, backbone.tokenizer, batch, method.config)
        loss.backward()
        results.append(
            (float(loss), {n: p.grad.clone() for n, p in backbone.model.named_parameters() if p.grad is not None})
        )
    (plain_loss, plain), (ckpt_loss, ckpt) = results
    assert ckpt_loss == pytest.approx(plain_loss, abs=1e-6)
    for name, grad in plain.items():
        torch.testing.assert_close(ckpt[name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_s2_is_one_half_at_the_first_cda_step_in_training_mode_despite_lora_dropout():
    """The loop trains in train() mode; with LoRA dropout left on, a - n differed from ra - rn at
    step 0 by dropout noise alone. The stage switches it off."""
    method, backbone, _ = _method(lora_dropout=0.5)
    stage = CDAStage(method)
    backbone.model.eval()
    batch = stage.begin(backbone.model, backbone.tokenizer, TRIPLES, method.config)
    backbone.model.train()
    with torch.no_grad():
        stage.loss(backbone.model, backbone.tokenizer, batch, method.config)
        _, s2, _ = stage.scores(backbone.model, backbone.tokenizer, batch, method.config)
    torch.testing.assert_close(s2, torch.full_like(s2, 0.5), atol=1e-5, rtol=0)
    dropouts = [
        m for n, m in backbone.model.named_modules() if "lora_dropout" in n and isinstance(m, torch.nn.Dropout)
    ]
    assert dropouts and all(m.p == 0.0 for m in dropouts)


def test_divergence_forms_are_per_token_means():
    """Two target tokens over a 2-word vocabulary, the second one padding in row 1."""
    from methods.autoregembed import Scored, token_divergence

    p = torch.tensor([[[0.5, 0.5], [0.9, 0.1]], [[0.2, 0.8], [0.5, 0.5]]])
    q = torch.tensor([[[0.25, 0.75], [0.5, 0.5]], [[0.6, 0.4], [0.3, 0.7]]])
    mask = torch.tensor([[1, 1], [1, 0]])
    kl = lambda a, b: sum(x * math.log(x / y) for x, y in zip(a, b))  # noqa: E731
    expected_kl = [(kl(p[0, 0], q[0, 0]) + kl(p[0, 1], q[0, 1])) / 2, kl(p[1, 0], q[1, 0])]
    as_scored = lambda probs: Scored(torch.zeros(2), mask.sum(1), probs.log(), mask)  # noqa: E731
    got = token_divergence(as_scored(p), as_scored(q), "kl")
    torch.testing.assert_close(got, torch.tensor(expected_kl), atol=1e-6, rtol=0)

    def js(a, b):
        m = [(x + y) / 2 for x, y in zip(a, b)]
        return (kl(a, m) + kl(b, m)) / 2

    expected_js = [(js(p[0, 0], q[0, 0]) + js(p[0, 1], q[0, 1])) / 2, js(p[1, 0], q[1, 0])]
    torch.testing.assert_close(
        token_divergence(as_scored(p), as_scored(q), "js"), torch.tensor(expected_js), atol=1e-6, rtol=0
    )


def test_slots_start_as_the_mean_token_embedding():
    method, backbone, _ = _method()
    mean = backbone.model.get_base_model().get_input_embeddings().weight.detach().mean(0)
    assert method.slots.shape[0] == method.config.slots
    for row in method.slots.detach():
        torch.testing.assert_close(row, mean)


def test_slots_start_as_the_mean_of_what_a_scaling_embedding_module_outputs():
    """Gemma's embedding module multiplies each row by sqrt(d): the slots must start at that
    scale, as the token embeddings they sit among, not at the weight's."""
    from tests.families import FAMILIES

    model = FAMILIES["gemma3"].model()
    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), model, FAMILIES["gemma3"].tokenizer())
    method = AutoRegEmbed(AutoRegEmbedConfig(finetune="frozen"))
    method.prepare(backbone)
    weight = model.get_input_embeddings().weight.detach()
    expected = weight.double().mean(0) * model.config.hidden_size**0.5
    assert expected.norm() > 2 * weight.double().mean(0).norm()  # the scale is not 1 (sqrt(32))
    for row in method.slots.detach():
        torch.testing.assert_close(row.double(), expected, atol=1e-6, rtol=1e-5)
    from methods.autoregembed.maths import mean_input_embedding

    chunked = mean_input_embedding(model.get_input_embeddings(), chunk=10)  # 64 rows: 7 chunks, the last of 4
    torch.testing.assert_close(chunked.double(), expected, atol=1e-6, rtol=1e-5)


def test_prompted_ic_rows_read_context_and_prompt_without_the_sts_instruction():
    from methods.autoregembed import ICExample

    method, backbone, _ = _method()
    stage = ICStage(method)
    rows = [ICExample("the cat sat", "the dog ran", "a bird flew"), ICExample("the sun shines", "", "the sun shines")]
    texts, templates = stage.inputs(rows, method.config)
    assert texts == ["the cat sat\nthe dog ran", "the sun shines"]
    assert templates == ["{text}\n", method.config.template] and INSTRUCTION in method.config.template


def test_pwc_keeps_the_first_row_of_each_context():
    from methods.autoregembed import ICExample, unique_contexts

    rows = [
        ICExample("c1", "p1", "a1"),
        ICExample("c2", "p1", "a2"),
        ICExample("c1", "p2", "a3"),
        ICExample("c3", "p1", "a4"),
        ICExample("c2", "p9", "a5"),
    ]
    assert unique_contexts(rows) == [rows[0], rows[1], rows[3]]


def test_paper_preset_global_batches_are_32_for_ic_and_128_for_cda():
    from harness.runs.plan import method_options

    config = method_options(AutoRegEmbed, {"preset": "paper"}, "autoregembed")
    ic, cda = AutoRegEmbed(config).stages()
    assert config.batch_size * ic.overrides["grad_accum"] == 32
    assert config.batch_size * cda.overrides["grad_accum"] == 128
    assert ic.overrides["lr"] == 2 * cda.overrides["lr"]


def test_held_out_ic_rows_are_a_seeded_tenth_kept_out_of_training():
    from methods.autoregembed import ICExample, split_held_out

    rows = [ICExample(f"text {i}", "", f"text {i}") for i in range(30)]
    held, kept = split_held_out(rows, seed=3)
    assert len(held) == 3 and len(kept) == 27 and set(held).isdisjoint(kept) and set(held) | set(kept) == set(rows)
    assert split_held_out(rows, seed=3) == (held, kept) and split_held_out(rows, seed=4)[0] != held
    assert split_held_out(rows[:19], seed=3)[0] == []  # too few rows: no diagnostics


def _plain_nll(model, prefix_embeds, target_ids) -> tuple[float, int]:
    """-log p(target + nothing else | prefix) with a plain forward of the untouched model."""
    embeds = torch.cat([prefix_embeds, model.get_input_embeddings()(torch.tensor([target_ids]))], dim=1)
    log_probs = torch.log_softmax(model(inputs_embeds=embeds).logits[0].float(), dim=-1)
    k = prefix_embeds.shape[1]
    return -sum(float(log_probs[k - 1 + t, token]) for t, token in enumerate(target_ids)), len(target_ids)


def test_ic_diagnostics_match_a_plain_computation_with_the_untouched_model():
    from methods.autoregembed import ICExample

    method, backbone, original = _method()
    stage = ICStage(method)
    texts = [
        "the cat sat on the mat",
        "rain falls",
        "the dog ran in the park",
        "a bird flew over a house",
        "the man read a book",
    ]
    stage.held_out = [ICExample(t, "", t) for t in texts]
    config = method.config
    backbone.model.eval()
    with torch.no_grad():
        values, _ = stage.diagnose(backbone.model, backbone.tokenizer, config)
        tok = backbone.tokenizer
        targets = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
        own_e = [stage.encode(backbone.model, tok, [t], config) for t in texts]  # one text at a time: no padding
        expected = {}
        for name, prefixes in (
            ("own", own_e),
            ("shuffled", [own_e[i - 1] for i in range(len(texts))]),
            (
                "empty",
                [original.get_input_embeddings()(torch.tensor([[tok.eos_token_id]]))] * len(texts),
            ),  # no BOS in this tokenizer
        ):
            pairs = [_plain_nll(original, p, t) for p, t in zip(prefixes, targets)]
            expected[name] = sum(n for n, _ in pairs) / sum(c for _, c in pairs)
    assert tok.bos_token_id is None
    for name, value in expected.items():
        assert values[f"heldout_loss_{name}"] == pytest.approx(value, abs=1e-4)
    assert values["heldout_texts"] == 5


def test_ic_warns_unless_its_own_slots_beat_both_baselines_clearly():
    from methods.autoregembed import ic_warnings

    def values(own: float, shuffled: float, empty: float) -> dict[str, float]:
        return {"heldout_loss_own": own, "heldout_loss_shuffled": shuffled, "heldout_loss_empty": empty}

    assert ic_warnings(values(6.01, 6.04, 5.70))  # losses once measured: worse than no prefix
    assert ic_warnings(values(5.00, 5.04, 6.00))  # below both, but not by the 0.05 margin
    assert ic_warnings(values(4.90, 5.00, 6.00)) == []


def test_frozen_finetune_trains_the_slots_alone_and_other_methods_refuse_it():
    from harness.errors import HarnessError
    from methods.infonce import InfoNCE, InfoNCEConfig

    method, backbone, original = _method(finetune="frozen")
    trainable = [n for n, p in backbone.model.named_parameters() if p.requires_grad]
    assert trainable == ["autoregembed_slots"]
    assert method.frozen is None  # no second copy: the model itself is the (unchanged) decoder
    loss, _ = ICStage(method).loss(
        backbone.model, backbone.tokenizer, [method_example() for _ in range(2)], method.config
    )
    loss.backward()
    assert method.slots.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in backbone.model.named_parameters() if n != "autoregembed_slots")
    before = dict(original.named_parameters())
    assert all(torch.equal(p, before[n]) for n, p in backbone.model.named_parameters() if n != "autoregembed_slots")
    from harness.training.parameters import check_trainable

    check_trainable(method.config, AutoRegEmbed.own_parameters)
    with pytest.raises(HarnessError, match="finetune=frozen"):
        check_trainable(InfoNCEConfig(finetune="frozen"), InfoNCE.own_parameters)


def test_the_slot_encoders_fingerprint_holds_its_slots():
    from harness.evaluation.fingerprint import fingerprint

    method, backbone, _ = _method()
    encoder = method.build_encoder(backbone, EncodeSettings(batch_size=2))
    before = fingerprint(encoder, method, "autoregembed")
    assert before is not None and before == fingerprint(
        method.build_encoder(backbone, EncodeSettings(batch_size=2)), method, "autoregembed"
    )
    with torch.no_grad():
        method.slots[0, 0] += 1e-3  # trained slots: another encoder
    assert fingerprint(encoder, method, "autoregembed") != before
