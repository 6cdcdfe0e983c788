"""benchmarks/ic_memorise.py's parts on the tiny Llama: the texts it reads from a SICK file, and
its curve, measured at step 0 and at each of the loop's pauses."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.model.backbones import Backbone, BackboneSpec
from tests.conftest import make_tiny_llama, make_tokenizer

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ic_memorise.py"
SICK_ROWS = [
    ("1", "the cat sat on the mat", "a cat sat on a mat"),
    ("2", "the dog ran in the park", "the cat sat on the mat"),
    ("3", "rain falls", "the sun shines"),
]


def script():
    spec = importlib.util.spec_from_file_location("ic_memorise", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_sick(path: Path) -> Path:
    lines = ["pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment"]
    lines += [f"{i}\t{a}\t{b}\t4.0\tNEUTRAL" for i, a, b in SICK_ROWS]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_first_distinct_sentences_row_by_row(tmp_path):
    texts = script().first_sentences(write_sick(tmp_path / "SICK_train.txt"), 4)
    assert texts == ["the cat sat on the mat", "a cat sat on a mat", "the dog ran in the park", "rain falls"]


def test_the_curve_has_step_0_and_each_pause(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.telemetry.phases.matmul_peak", lambda device, dtype: 1.0)  # MFU is not measured here
    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), make_tiny_llama(0), make_tokenizer())
    texts = script().first_sentences(write_sick(tmp_path / "SICK_train.txt"), 4)
    options = {"lr": 1e-2, "ic_steps": 4, "eval_every": 2, "batch_size": 4, "max_length": 32}
    points = script().memorise(backbone, texts, options, seed=0, out=str(tmp_path / "points.jsonl"))
    assert [p["step"] for p in points] == [0, 2, 4]
    assert all(set(p) == {"step", "own", "shuffled", "empty", "seconds"} for p in points)
    assert points[0]["empty"] == points[-1]["empty"]  # the decoder is frozen: only the slots' losses move
    assert points[0]["own"] != points[-1]["own"]
    assert len((tmp_path / "points.jsonl").read_text().splitlines()) == 3
