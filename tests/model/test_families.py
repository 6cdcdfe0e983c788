"""The family matrix: every built-in method on a tiny model of each architecture family
(tests/families.py): encoding, LoRA and full fine-tuning steps, AutoRegEmbed's frozen decoder,
checkpoint and resume, and the exported folder read back by sentence-transformers and peft."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.encoder import EncodeSettings, PooledEncoder
from harness.export.model import load_encoder
from harness.model.backbones import BackboneSpec, load_backbone
from harness.training.loop import TrainJob, run_stages
from harness.training.parameters import prepare_model
from harness.training.train_config import Hooks
from methods.autoregembed import AutoRegEmbed, AutoRegEmbedConfig
from methods.autoregembed.method import SlotEncoder
from methods.infonce import ContrastiveStage, InfoNCEConfig
from tests.conftest import run_args
from tests.export.test_model_export import _harness_vectors, _sentence_transformer_vectors, adapter_is_the_merged_model
from tests.families import FAMILIES
from tests.training_fixtures import write_ic_triplets, write_triplets

TEXTS = ["the cat sat on the mat", "dog", "the bird flew over the house and the car drove down the road", "rain falls"]
#: the linear layers peft's ``all-linear`` adapts, per family (every one of the blocks, never the LM head)
ADAPTED = {"phi3": {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}}
LLAMA_LIKE = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    return FAMILIES[request.param]


@pytest.fixture(scope="module")
def family_dir(family, tmp_path_factory):
    return family.save(tmp_path_factory.mktemp(f"tiny-{family.name}"))


def _backbone(folder):
    return load_backbone(BackboneSpec(folder.name, str(folder), "local"), device="cpu", dtype="float32")


def _alone(model, ids: list[int]) -> torch.Tensor:
    """Last-layer states of one row run on its own: no padding, no mask."""
    with torch.no_grad():
        return model.get_decoder()(input_ids=torch.tensor([ids])).last_hidden_state[0]


def test_the_tokenizer_keeps_the_familys_special_tokens_and_gets_a_pad(family, family_dir):
    tokenizer = _backbone(family_dir).tokenizer
    ids = tokenizer("the cat")["input_ids"]
    assert (ids[0] == tokenizer.bos_token_id) == family.adds_bos and len(ids) == 2 + family.adds_bos
    assert tokenizer.pad_token_id == (
        tokenizer.convert_tokens_to_ids(family.pad) if family.pad else tokenizer.eos_token_id
    )
    assert (tokenizer.chat_template is not None) == (family.chat_template is not None)  # the export must replace it


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_pooled_encoding_equals_one_unpadded_text_at_a_time(family, family_dir, pooling):
    backbone = _backbone(family_dir)
    encoder = PooledEncoder(backbone.model, backbone.tokenizer, pooling=pooling, settings=EncodeSettings(batch_size=4))
    got = encoder.encode(TEXTS)
    states = [_alone(backbone.model, backbone.tokenizer(t)["input_ids"]) for t in TEXTS]
    expected = np.stack([(s.mean(0) if pooling == "mean" else s[-1]).numpy() for s in states])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_truncation_cuts_the_text_and_keeps_the_template(family, family_dir):
    tokenizer = _backbone(family_dir).tokenizer
    template = "this sentence : {text} means one word"
    encoder = PooledEncoder(
        _backbone(family_dir).model,
        tokenizer,
        pooling="mean",
        settings=EncodeSettings(max_length=12),
        template=template,
    )
    (row,) = encoder.tokenize([" ".join(["the cat sat"] * 10)])
    text = tokenizer.decode(row, skip_special_tokens=True).strip()
    assert len(row) == 12 and (row[0] == tokenizer.bos_token_id) == family.adds_bos
    assert text.startswith("this sentence : the cat") and text.endswith(" means one word"), text


def test_slot_encoding_equals_one_unpadded_text_at_a_time(family, family_dir):
    """The slots are appended to the text's input embeddings as the embedding module gives them
    (Gemma 3 scales them inside the module); the vector is the mean of the k slot states."""
    backbone = _backbone(family_dir)
    slots = torch.randn(3, backbone.model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    encoder = SlotEncoder(backbone, slots, EncodeSettings(batch_size=4), "{text} : one word")
    got = encoder.encode(TEXTS)
    model = backbone.model
    expected = []
    for text in TEXTS:
        ids = backbone.tokenizer(f"{text} : one word")["input_ids"]
        embeds = torch.cat([model.get_input_embeddings()(torch.tensor(ids)), slots]).unsqueeze(0)
        with torch.no_grad():
            states = model.get_decoder()(inputs_embeds=embeds).last_hidden_state[0, -3:]
        expected.append(torch.nn.functional.normalize(states.mean(0), dim=0).numpy())
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-5)


class _Record(Hooks):
    def __init__(self, stop_at: tuple[str, int] | None = None) -> None:
        self.losses: list[tuple[str, int, float]] = []
        self.stop_at = stop_at
        self.measured: dict[str, dict[str, float]] = {}

    def diagnostics(self, stage, values) -> None:
        self.measured[stage] = values

    def steps(self, stage, logs) -> None:
        self.losses.extend((log.stage, log.step, log.loss) for log in logs)

    def progress(self, stage, step, total, loss, lr, tps) -> None:
        if (stage, step) == self.stop_at:
            raise KeyboardInterrupt


def _train(folder, output_dir, method: str, finetune: str, *, resume=False, stop_at=None):
    """Two steps per stage, a checkpoint after every step, on 15 triplets (AutoRegEmbed's IC holds
    3 of their texts out and measures its diagnostics on them); (losses, method, backbone)."""
    backbone = _backbone(folder)
    triplets = write_ic_triplets(output_dir.parent / "triplets.jsonl")
    common = dict(finetune=finetune, batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8, checkpoint_every=1, max_length=32)
    if method == "infonce":
        config = InfoNCEConfig(steps=2, in_batch=True, template="this sentence : {text}", **common)
        runner, stages = None, [ContrastiveStage()]
    else:
        config = AutoRegEmbedConfig(slots=2, ic_steps=2, cda_steps=2, instruction="means", **common)
        runner = AutoRegEmbed(config)
        stages = runner.stages()
    torch.manual_seed(0)
    prepare_model(backbone, config)
    if runner is not None:
        runner.prepare(backbone)
    hooks = _Record(stop_at)
    run_stages(backbone, stages, config, TrainJob(str(triplets), 0, output_dir, resume=resume), hooks, hooks.progress)
    return hooks, runner, backbone


def test_all_linear_lora_adapts_every_projection_of_the_family(family, family_dir):
    backbone = _backbone(family_dir)
    prepare_model(backbone, InfoNCEConfig())
    adapted = {name.rsplit(".", 1)[-1] for name, module in backbone.model.named_modules() if hasattr(module, "lora_A")}
    assert adapted == ADAPTED.get(family.name, LLAMA_LIKE)


@pytest.mark.parametrize("method", ["infonce", "autoregembed"])
@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_a_training_step_changes_the_encoder_and_autoregembed_decodes_with_the_untouched_base(
    family, family_dir, tmp_path, method, finetune
):
    original = _backbone(family_dir).model
    hooks, runner, backbone = _train(family_dir, tmp_path / "run", method, finetune)
    losses = hooks.losses
    assert len(losses) == (2 if method == "infonce" else 4) and all(np.isfinite(loss) for _, _, loss in losses)
    if runner is not None:  # IC's held-out diagnostics, the empty prefix being BOS or (Qwen, Phi-3) EOS
        ic = hooks.measured["ic"]
        assert ic["heldout_texts"] == 3 and all(
            np.isfinite(ic[f"heldout_loss_{n}"]) for n in ("own", "shuffled", "empty")
        )
    ids = torch.tensor([backbone.tokenizer("the cat sat on the mat")["input_ids"]])
    model = backbone.model.eval()
    with torch.no_grad():
        before, after = (
            original.get_decoder()(input_ids=ids).last_hidden_state,
            model.get_decoder()(input_ids=ids).last_hidden_state,
        )
        assert not torch.allclose(before, after, atol=1e-4)  # the encoder trained
        if runner is not None:
            with runner.decoding(model) as decoder:
                torch.testing.assert_close(
                    decoder(input_ids=ids).logits, original(input_ids=ids).logits, atol=1e-5, rtol=1e-5
                )


@pytest.mark.parametrize(
    "method,finetune,stop_at", [("autoregembed", "lora", ("cda", 1)), ("infonce", "full", ("contrastive", 2))]
)
def test_a_killed_run_resumes_from_its_checkpoint_on_the_same_trajectory(
    family, family_dir, tmp_path, method, finetune, stop_at
):
    """AutoRegEmbed with LoRA killed during CDA's first step (IC's last checkpoint survives), and
    InfoNCE fully fine-tuned killed during its second step."""
    straight = _train(family_dir, tmp_path / "straight", method, finetune)[0].losses
    with pytest.raises(KeyboardInterrupt):
        _train(family_dir, tmp_path / "resumed", method, finetune, stop_at=stop_at)
    resumed = _train(family_dir, tmp_path / "resumed", method, finetune, resume=True)[0].losses
    assert [(stage, step) for stage, step, _ in resumed] == [
        (stop_at[0], step) for step in range(stop_at[1], 3)
    ]  # 2 steps a stage
    expected = {(stage, step): loss for stage, step, loss in straight}
    for stage, step, loss in resumed:
        assert loss == pytest.approx(expected[stage, step], abs=1e-5)


@pytest.mark.parametrize("method", ["untrained-mean", "untrained-last", "prompteol", "infonce", "autoregembed"])
def test_the_exported_folder_gives_the_harness_vectors_in_sentence_transformers_and_peft(
    family, family_dir, tmp_path, small_sts_file, method
):
    triplets = write_triplets(tmp_path / "triplets.jsonl")
    trained = {
        "untrained-mean": [],
        "untrained-last": [],
        "prompteol": [],
        "infonce": [
            "--train-data",
            str(triplets),
            "--set",
            "method_args.batch_size=2",
            "--set",
            "method_args.steps=2",
            "--set",
            "method_args.template='this sentence : {text}'",
        ],
        "autoregembed": [
            "--train-data",
            str(triplets),
            "--set",
            "method_args.batch_size=2",
            "--set",
            "method_args.ic_steps=2",
            "--set",
            "method_args.cda_steps=2",
            "--set",
            "method_args.instruction=means",
            "--set",
            "method_args.max_length=64",
        ],
    }[method]
    db = tmp_path / "h.db"
    args = [
        "run",
        "--method",
        method,
        "--backbone",
        str(family_dir),
        "--tasks",
        str(small_sts_file),
        "--db",
        str(db),
        "--output-dir",
        str(tmp_path / "runs"),
        *trained,
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "do not cover" not in result.output  # the family note is for untested families only
    out = tmp_path / "encoder"
    result = CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output

    expected = _harness_vectors(db, TEXTS)
    np.testing.assert_allclose(load_encoder(out).encode(TEXTS), expected, atol=1e-5, rtol=1e-5)
    assert not np.allclose(expected[0], expected[3], atol=1e-3)
    if method != "autoregembed":  # sentence-transformers: the pooling methods
        np.testing.assert_allclose(_sentence_transformer_vectors(out, TEXTS), expected, atol=1e-5, rtol=1e-5)
    if method in ("infonce", "autoregembed"):  # the peft adapter on the family's own weights is the merged model
        from transformers import AutoTokenizer

        adapted = adapter_is_the_merged_model(family_dir, out)
        if method == "infonce":  # and the base + adapter, pooled as the export says, gives the run's vectors
            spec = json.loads((out / "harness-encoder.json").read_text())
            tokenizer = AutoTokenizer.from_pretrained(family_dir)
            tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
            encoder = PooledEncoder(
                adapted,
                tokenizer,
                pooling=spec["pooling"],
                settings=EncodeSettings(max_length=spec["max_length"]),
                template=spec["template"],
            )
            np.testing.assert_allclose(encoder.encode(TEXTS), expected, atol=1e-5, rtol=1e-5)


def test_a_lora_target_is_matched_as_peft_matches_it_and_one_matching_nothing_is_refused(tmp_path):
    """``v_proj`` ends Phi-3's ``qkv_proj`` as a string but is not a module name peft would adapt."""
    from harness.errors import HarnessError
    from harness.training.parameters import lora_targets

    backbone = _backbone(FAMILIES["phi3"].save(tmp_path))
    with pytest.raises(HarnessError) as info:
        lora_targets(backbone, InfoNCEConfig(lora_targets=["q_proj", "v_proj", "o_proj"]))
    message = str(info.value)
    assert (
        "q_proj, v_proj match no linear layer" in message
        and "down_proj, gate_up_proj, lm_head, o_proj, qkv_proj" in message
    )
    assert lora_targets(backbone, InfoNCEConfig(lora_targets=["qkv_proj", "layers.1.mlp.down_proj"])) == [
        "qkv_proj",
        "layers.1.mlp.down_proj",
    ]
    with pytest.raises(HarnessError, match="all-linear stands alone"):
        lora_targets(backbone, InfoNCEConfig(lora_targets=["all-linear", "o_proj"]))


def test_the_families_the_harness_calls_tested_are_the_families_of_this_matrix():
    from harness.model.aliases import TESTED_FAMILIES

    assert set(TESTED_FAMILIES) == {family.config.model_type for family in FAMILIES.values()}


def _cached_config(cache, repo: str, config: dict) -> None:
    """``config`` as the hub cache holds a downloaded ``repo``'s config.json."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    (folder / "snapshots" / "abc123").mkdir(parents=True)
    (folder / "snapshots" / "abc123" / "config.json").write_text(json.dumps(config))


def test_backbones_checks_an_aliass_facts_against_a_config_read_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    qwen = {
        "model_type": "qwen2",
        "num_hidden_layers": 24,
        "hidden_size": 896,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    }
    _cached_config(tmp_path, "Qwen/Qwen2.5-0.5B", qwen)
    _cached_config(
        tmp_path,
        "Qwen/Qwen2.5-7B",
        {**qwen, "num_hidden_layers": 27, "tie_word_embeddings": False, "vocab_size": 152064, "hidden_size": 3584},
    )
    result = CliRunner().invoke(app, ["backbones", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["alias"]: row for row in json.loads(result.stdout)}
    assert rows["qwen2.5-0.5b"]["facts_check"] == "checked"
    assert rows["qwen2.5-7b"]["facts_check"] == "differs: layers: 28 here vs 27 in the config"
    assert rows["qwen3-8b"]["facts_check"] == "unchecked" and rows["qwen3-8b"]["family"] == "qwen3"
    assert all(row["family_tested"] for row in rows.values())  # every alias's family is in the matrix
    assert {"llama3.1-8b", "qwen2.5-1.5b", "qwen3-0.6b", "mistral-7b", "gemma3-270m", "gemma3-1b"} <= set(rows)


def test_a_run_on_a_family_the_tests_do_not_cover_says_so(tmp_path, small_sts_file):
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.conftest import make_tokenizer

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=2, n_positions=64)).save_pretrained(
        tmp_path / "gpt2"
    )
    make_tokenizer().save_pretrained(tmp_path / "gpt2")
    args = run_args(tmp_path / "h.db", tmp_path / "gpt2", small_sts_file)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "a 'gpt2' model, a family the harness's tests do not cover" in " ".join(result.output.split())
