"""Paths that look usable but are not: a model folder without weights or a usable tokenizer, and
output folders that cannot be made (/proc). Each is one message naming it, exit 2, and nothing is
left behind: no database, no row, no folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import run_args, run_untrained

runner = CliRunner()
UNMAKEABLE = "/proc/harness-cannot-make-this"


def _partial(tiny_llama_dir: Path, tmp_path: Path, shape: str) -> Path:
    folder = tmp_path / shape
    shutil.copytree(tiny_llama_dir, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    if shape == "slow tokenizer only":  # transformers would convert it, and needs tiktoken to
        (folder / "tokenizer.json").unlink()
        (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
        (folder / "tokenizer.model").write_text("")
    return folder


@pytest.mark.parametrize("shape", ["no weights", "slow tokenizer only"])
def test_a_model_folder_without_weights_or_tokenizer_is_refused_by_name(
    tmp_path, tiny_llama_dir, small_sts_file, shape
):
    folder = _partial(tiny_llama_dir, tmp_path, shape)
    db = tmp_path / "h.db"
    result = runner.invoke(app, run_args(db, folder, small_sts_file))
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert str(folder) in said and "could not be loaded" in said and "model.safetensors" in said
    assert "Traceback" not in result.output and not db.exists()


def test_an_output_dir_that_cannot_be_made_is_refused_before_a_row(tmp_path, tiny_llama_dir, small_sts_file):
    triplets = tmp_path / "t.jsonl"
    triplets.write_text('{"query": "the cat", "pos": "a cat", "neg": "the dog"}\n' * 2)
    db = tmp_path / "h.db"
    result = runner.invoke(
        app,
        run_args(
            db,
            tiny_llama_dir,
            small_sts_file,
            "--train-data",
            str(triplets),
            "--output-dir",
            UNMAKEABLE,
            "--set",
            "method_args.steps=1",
            method="infonce",
        ),
    )
    assert result.exit_code == 2 and f"--output-dir {UNMAKEABLE}" in " ".join(result.output.split()), result.output
    assert not db.exists()


def test_a_writable_output_dir_is_left_as_it_was_by_the_check(tmp_path):
    from harness.paths import writable_folder

    target = tmp_path / "a" / "b"
    assert writable_folder(target, "--output-dir") == target
    assert list(tmp_path.iterdir()) == []  # what the probe made, it removed


@pytest.mark.parametrize("target", ["--mteb", "--model"])
def test_an_export_target_that_cannot_be_made_is_refused_by_name(tmp_path, tiny_llama_dir, small_sts_file, target):
    db = tmp_path / "h.db"
    run_untrained(db, tiny_llama_dir, small_sts_file)
    result = runner.invoke(app, ["export", "1", target, UNMAKEABLE, "--db", str(db)])
    assert result.exit_code == 2 and f"{target} {UNMAKEABLE}" in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
