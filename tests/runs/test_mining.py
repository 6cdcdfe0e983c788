"""Model-mined hard negatives: the ranking and the margins by hand on a tiny corpus, then
`harness mine` end to end on the tiny model, its file recorded by digest by the run that reads it."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.data.train_data import Triplet, read_triplet_file
from harness.errors import HarnessError
from harness.runs.mining import Margins, mine_negatives
from tests.training_fixtures import write_triplets


def at(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


# unit vectors by angle: a cosine is the cosine of the angle between two texts
ANGLES = {"q1": 0, "p1": 10, "q2": 20, "p2": 60, "q3": 90, "p3": 200}
PAIRS = [("q1", "p1"), ("q2", "p2"), ("q3", "p3")]


def embed(texts):
    return np.array([at(ANGLES[t]) for t in texts]) * 3.0  # not normalised: the miner normalises


def negatives(mined):
    return {t.query: t.neg for t in mined.triplets}


def test_each_query_gets_the_most_similar_text_that_is_not_its_own_positive():
    # q1 (0 deg): q2 cos 20 = .940 beats p2 cos 60 = .500 (p1 is its positive)
    # q2 (20 deg): p1 cos 10 = .985 beats q1 cos 20 = .940: more similar than its positive (cos 40)
    # q3 (90 deg): p2 cos 30 = .866 beats q2 cos 70 = .342
    mined = mine_negatives(PAIRS, embed)
    assert negatives(mined) == {"q1": "q2", "q2": "p1", "q3": "p2"}
    assert [(t.query, t.pos) for t in mined.triplets] == PAIRS and mined.dropped == [] and mined.skipped == 0


def test_an_absolute_margin_skips_candidates_within_it_of_the_positive():
    # q1: positive cos 10 = .985, limit .785: q2 (.940) skipped, p2 (.500) kept
    # q2: positive cos 40 = .766, limit .566: p1 (.985), q1 (.940) skipped; q3 (cos 70 = .342) kept
    # q3: positive cos 110 = -.342, limit -.542: p2 .866, q2 .342, p1 .174, q1 .0 all skipped: dropped
    mined = mine_negatives(PAIRS, embed, Margins(absolute=0.2))
    assert negatives(mined) == {"q1": "p2", "q2": "q3"}
    assert mined.dropped == [("q3", "p3")] and mined.skipped == 1 + 2 + 4


def test_a_relative_margin_is_a_fraction_of_the_positive_scores_magnitude():
    # q1: limit .985 - .985 x .05 = .936: q2 (.940) skipped, p2 kept
    # q2: limit .766 x .95 = .728: p1, q1 skipped, q3 kept
    # q3: positive -.342: limit -.342 - .342 x .05 = -.359 (not -.342 x .95 = -.325): still none
    mined = mine_negatives(PAIRS, embed, Margins(relative=0.05))
    assert negatives(mined) == {"q1": "p2", "q2": "q3"} and mined.dropped == [("q3", "p3")]
    # the magnitude matters: to q3, x at cos 109.9 = -.340 lies between -.359 and -.325, so it is
    # skipped and y (cos 210 = -.866) is chosen; with -.342 x .95 as the limit x would be
    angles = {"q3": 90, "p3": 200, "x": 199.9, "y": 300}
    pairs = [("q3", "p3"), ("x", "y")]
    mined = mine_negatives(pairs, lambda ts: np.array([at(angles[t]) for t in ts]), Margins(relative=0.05))
    assert negatives(mined)["q3"] == "y"


def test_every_positive_of_a_query_is_excluded_and_the_best_one_sets_the_margin():
    # q1 has positives p1 (cos 10) and p2 (cos 60): neither is its negative, p1 sets the limit
    pairs = [("q1", "p1"), ("q1", "p2"), ("q3", "p3")]
    mined = mine_negatives(pairs, embed, Margins(absolute=0.5))  # q1's limit .485: q3 (cos 90 = 0) kept
    assert [(t.query, t.pos, t.neg) for t in mined.triplets][:2] == [("q1", "p1", "q3"), ("q1", "p2", "q3")]


def test_a_text_that_has_the_query_as_its_positive_is_excluded_but_does_not_set_the_margin():
    # r (cos 5 = .996 to q) pairs with q the other way: never q's negative, and q's limit comes from
    # p alone (cos 60 = .5, limit .4), so c (cos 30 = .866) is skipped and d (cos 80 = .174) chosen
    angles = {"q": 0, "p": 60, "r": 5, "c": 30, "d": 80}
    pairs = [("q", "p"), ("r", "q"), ("c", "d")]
    mined = mine_negatives(pairs, lambda ts: np.array([at(angles[t]) for t in ts]), Margins(absolute=0.1))
    assert negatives(mined)["q"] == "d"


def test_ties_go_to_the_text_that_comes_first():
    angles = {"q": 0, "p": 5, "a": 30, "b": -30, "c": 30}
    pairs = [("q", "p"), ("a", "b"), ("c", "b")]
    mined = mine_negatives(pairs, lambda ts: np.array([at(angles[t]) for t in ts]))
    assert negatives(mined)["q"] == "a"  # a and c tie at cos 30; a comes first


def test_no_negative_left_for_any_pair_is_refused():
    with pytest.raises(HarnessError, match="no pair kept a negative"):
        mine_negatives(PAIRS, embed, Margins(absolute=2.5))


runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def plain_mean_vectors(folder, texts):
    """Mean-pooled vectors of plain transformers, one text at a time (no harness code)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        return np.stack(
            [model(**tokenizer(t, return_tensors="pt")).last_hidden_state[0].mean(0).numpy() for t in texts]
        )


def test_harness_mine_writes_the_negatives_the_encoder_ranks_first_and_a_run_records_their_digest(
    tmp_path, tiny_llama_dir, small_sts_file
):
    source = write_triplets(tmp_path / "pairs.jsonl")
    out = tmp_path / "mined.jsonl"
    result = invoke("mine", source, "--miner", "untrained-mean", "--backbone", tiny_llama_dir, "-o", out)
    assert result.exit_code == 0, result.output
    triplets = read_triplet_file(out)
    pairs = [(t.query, t.pos) for t in read_triplet_file(source)]
    texts = list(dict.fromkeys(t for pair in pairs for t in pair))
    vectors = plain_mean_vectors(tiny_llama_dir, texts)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = []
    for query, positive in pairs:
        scores = unit @ unit[texts.index(query)]
        ranked = [texts[j] for j in np.argsort(-scores, kind="stable") if texts[j] not in (query, positive)]
        expected.append(Triplet(query, positive, ranked[0]))
    assert triplets == expected

    provenance = json.loads((tmp_path / "mined.jsonl.provenance.json").read_text())
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert provenance["sha256"] == digest and provenance["miner"] == "untrained-mean"
    assert provenance["source_files"] == [
        {"source": str(source), "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    ]
    assert (provenance["triplets"], provenance["dropped_pairs"], provenance["relative_margin"]) == (
        len(expected),
        0,
        None,
    )

    db = tmp_path / "h.db"
    result = invoke(
        "run",
        "--method",
        "infonce",
        "--backbone",
        tiny_llama_dir,
        "--train-data",
        out,
        "--tasks",
        small_sts_file,
        "--set",
        "method_args.steps=1",
        "--set",
        "method_args.mini_batch=4",
        "--db",
        db,
        "--output-dir",
        tmp_path / "runs",
    )
    assert result.exit_code == 0, result.output
    record = json.loads(invoke("show", "1", "--db", db, "--json").stdout)[0]
    assert record["config"]["train_data_resolved"] == [{"source": str(out), "sha256": digest}]
    assert record["config"]["method_args"]["mini_batch"] == 4

    # a second mine with a recorded run's encoder as the miner
    again = tmp_path / "by-run.jsonl"
    result = invoke("mine", source, "--miner", "run:1", "--relative-margin", "0.05", "-o", again, "--db", db)
    assert result.exit_code == 0, result.output
    provenance = json.loads((tmp_path / "by-run.jsonl.provenance.json").read_text())
    assert provenance["miner"] == "run:1" and provenance["config_hash"] == record["config_hash"]
    assert provenance["relative_margin"] == 0.05


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--miner", "infonce"], "this method trains before it encodes"),
        (["--miner", "run:three"], "give a recorded run as run:ID"),
        (["--miner", "no-such-method"], "no-such-method"),
    ],
)
def test_bad_miners_are_refused_with_exit_2(tmp_path, tiny_llama_dir, args, fragment):
    source = write_triplets(tmp_path / "pairs.jsonl")
    result = invoke("mine", source, "--backbone", tiny_llama_dir, "-o", tmp_path / "out.jsonl", *args)
    assert result.exit_code == 2 and fragment in result.output, result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_bad_sources_and_outputs_are_refused_with_exit_2(tmp_path, tiny_llama_dir):
    source = write_triplets(tmp_path / "pairs.jsonl")
    taken = tmp_path / "taken.jsonl"
    taken.write_text("kept\n")
    result = invoke("mine", source, "--backbone", tiny_llama_dir, "-o", taken)
    assert result.exit_code == 2 and "never replace a file" in result.output and taken.read_text() == "kept\n"
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"query": "a", "pos": "b", "neg": "c"}\n{"query": "a",\n')
    result = invoke("mine", broken, "--backbone", tiny_llama_dir, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 2 and "broken.jsonl" in result.output and "line 2" in result.output, result.output
    result = invoke("mine", f"random-negatives:{source}", "--backbone", tiny_llama_dir, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 2 and "not random-negatives" in result.output
    result = invoke("mine", source, "--relative-margin", "1.5", "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 2 and "--relative-margin" in result.output
    result = invoke("mine", source, "--absolute-margin", "inf", "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 2 and "--absolute-margin inf: give a finite number" in result.output, result.output
    result = invoke("mine", source, "--miner", "run:1", "--backbone", tiny_llama_dir, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 2 and "drop --backbone and --device" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_a_resume_refuses_a_training_file_that_changed(tmp_path, tiny_llama_dir, small_sts_file):
    from harness.config import RunConfig
    from harness.runs.plan import plan_run, refuse_changed_training_data

    data = write_triplets(tmp_path / "train.jsonl")
    config = RunConfig(
        method="infonce", backbone=str(tiny_llama_dir), train_data=str(data), tasks=[str(small_sts_file)]
    )
    record = {"run_id": 7, "config": plan_run(config).resolved()}
    refuse_changed_training_data(plan_run(config), record)  # unchanged: accepted
    data.write_text(data.read_text().replace("cat", "dog"))
    with pytest.raises(HarnessError, match=r"training file .*train.jsonl changed .* since run 7"):
        refuse_changed_training_data(plan_run(config), record)  # the resume's own plan reads the file again
