"""harness.evaluation.mteb_run scores a task as ``mteb.evaluate`` does (the same scores, to the last
digit, for each kind of task the harness builds, and on two subsets and two splits, bitext mining's
subsets together), and a fully warm command therefore never imports
sentence-transformers or transformers (checked in a fresh process)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import mteb
import numpy as np
import pytest

from harness.errors import HarnessError
from harness.evaluation.evaluate import search_model
from harness.evaluation.local_tasks import About, task_metadata
from harness.evaluation.mteb_adapter import MtebEncoder, model_meta
from harness.evaluation.mteb_run import score_task
from harness.evaluation.tasks import build_mteb_task, resolve_tasks
from tests.conftest import HARNESS, harness_env, write_sts_tsv


class HashedWords:
    """A deterministic encoder without a model: each word adds a vector drawn from its hash."""

    embed_dim = 16
    max_length = 64

    def encode(self, texts, *, prompt_type=None):
        rows = np.zeros((len(texts), self.embed_dim), dtype=np.float32)
        for row, text in zip(rows, texts):
            for word in text.lower().split():
                seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
                row += np.random.default_rng(seed).standard_normal(self.embed_dim).astype(np.float32)
        return rows


def _adapter():
    meta = model_meta(
        name=f"test/hashed-words-{os.getpid()}",
        revision="0",
        n_parameters=0,
        embed_dim=HashedWords.embed_dim,
        max_tokens=64,
        source=None,
        use_instructions=False,
    )
    return MtebEncoder(HashedWords(), meta)


def _task_files(folder):
    words = "the cat dog sat ran on a mat park man woman ate food sun rain sky blue car road".split()
    rng = np.random.default_rng(0)
    sentence = lambda: " ".join(rng.choice(words, size=int(rng.integers(3, 7))))  # noqa: E731
    pairs = [(sentence(), sentence(), float(rng.integers(0, 6))) for _ in range(30)]
    sts = write_sts_tsv(folder / "sts.tsv", pairs)
    classified = folder / "pairs.tsv"
    classified.write_text("sentence1\tsentence2\tlabel\n" + "".join(f"{a}\t{b}\t{int(s > 2)}\n" for a, b, s in pairs))
    reranking = folder / "rerank.jsonl"
    reranking.write_text(
        "".join(
            f'{{"query": "{a}", "positive": ["{b}"], "negative": ["{sentence()}", "{sentence()}"]}}\n'
            for a, b, _ in pairs[:12]
        )
    )
    return [str(sts), str(classified), str(reranking)]


@pytest.mark.parametrize(
    "item", ["LeeDocSimilarity", "PangLeePolarityClassification", "MiniNewsgroupsClustering", "sts", "pairs", "rerank"]
)
def test_a_task_scores_as_mteb_evaluate_scores_it(item, tmp_path):
    files = {path.rsplit("/", 1)[-1].split(".")[0]: path for path in _task_files(tmp_path)}
    (spec,) = resolve_tasks([files.get(item, item)])
    ours, theirs = build_mteb_task(spec), build_mteb_task(spec)
    model, _ = search_model(_adapter(), ours)
    got = score_task(model, ours, batch_size=8, prediction_folder=None)
    model, _ = search_model(_adapter(), theirs)
    expected = mteb.evaluate(model, theirs, cache=None, encode_kwargs={"batch_size": 8}, show_progress_bar=False)
    assert got.scores == expected.task_results[0].scores
    assert (got.task_name, got.dataset_revision, got.mteb_version) == (
        expected.task_results[0].task_name,
        expected.task_results[0].dataset_revision,
        expected.task_results[0].mteb_version,
    )
    assert [phase["name"] for phase in got.evaluation_phases] == [
        phase["name"] for phase in expected.task_results[0].evaluation_phases
    ]
    assert not ours.data_loaded  # what it loaded it unloaded, as mteb.evaluate does


ROWS = {
    "sentence1": ["a cat sat", "the sun", "a dog ran", "blue sky", "red car"],
    "sentence2": ["a dog sat", "rain falls", "a cat ran", "grey sky", "red bus"],
    "score": [3.0, 1.0, 2.5, 2.0, 4.0],
}


def _two_subset_sts():
    """Two subsets (the scores rotated in the second) on two splits."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.sts import AbsTaskSTS

    def load_data(self, **kwargs):
        self.dataset = {
            subset: DatasetDict(
                {
                    split: Dataset.from_dict({**ROWS, "score": ROWS["score"][shift:] + ROWS["score"][:shift]})
                    for split in ("dev", "test")
                }
            )
            for shift, subset in enumerate(("a", "b"))
        }
        self.data_loaded = True

    langs = {"a": ["eng-Latn"], "b": ["eng-Latn"]}
    about = About("TwoSubsetSTS", "STS", "built in the test", "1")
    metadata = task_metadata(about, AbsTaskSTS, eval_langs=langs, eval_splits=["dev", "test"])
    attributes = {"metadata": metadata, "min_score": 0, "max_score": 5, "load_data": load_data}
    return type("TwoSubsetSTS", (AbsTaskSTS,), attributes)


def _two_subset_bitext():
    """Bitext mining over two language pairs (evaluated together, as mteb does)."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining

    def load_data(self, **kwargs):
        second = {"a-b": ROWS["sentence2"], "b-c": ROWS["sentence2"][::-1]}
        self.dataset = {
            subset: DatasetDict({"test": Dataset.from_dict({"sentence1": ROWS["sentence1"], "sentence2": side})})
            for subset, side in second.items()
        }
        self.data_loaded = True

    langs = {"a-b": ["eng-Latn", "fra-Latn"], "b-c": ["fra-Latn", "deu-Latn"]}
    about = About("TwoSubsetBitext", "BitextMining", "built in the test", "1")
    metadata = task_metadata(about, AbsTaskBitextMining, main_score="f1", eval_langs=langs)
    return type("TwoSubsetBitext", (AbsTaskBitextMining,), {"metadata": metadata, "load_data": load_data})


@pytest.mark.parametrize("build", [_two_subset_sts, _two_subset_bitext])
def test_subsets_and_splits_score_as_mteb_evaluate_scores_them(build):
    cls = build()
    got = score_task(_adapter(), cls(), batch_size=4, prediction_folder=None)
    expected = mteb.evaluate(_adapter(), cls(), cache=None, encode_kwargs={"batch_size": 4}, show_progress_bar=False)
    assert got.scores == expected.task_results[0].scores
    assert {split: [s["hf_subset"] for s in scores] for split, scores in got.scores.items()} == {
        split: sorted(cls.metadata.eval_langs) for split in cls.metadata.eval_splits
    }
    assert [p["name"] for p in got.evaluation_phases] == [
        p["name"] for p in expected.task_results[0].evaluation_phases
    ]


def test_a_task_with_inputs_other_than_text_is_refused_before_its_data_is_loaded():
    task = mteb.get_task("VisualSTS17Eng")  # images; its data is never fetched

    def no_data(*args, **kwargs):
        raise AssertionError("its data was loaded")

    task.load_data = no_data
    with pytest.raises(HarnessError, match="VisualSTS17Eng has image inputs"):
        score_task(_adapter(), task, batch_size=8, prediction_folder=None)


def test_a_fully_warm_command_imports_neither_sentence_transformers_nor_transformers(tmp_path, tiny_llama_dir):
    task = write_sts_tsv(tmp_path / "sts.tsv", [("a cat sat", "a dog sat", 3.0), ("the sun", "rain falls", 1.0)] * 4)
    args = ["run", "--method", "untrained-mean", "--backbone", str(tiny_llama_dir), "--tasks", str(task)]
    env = harness_env(HARNESS_EMBEDDING_CACHE=str(tmp_path / "cache"))
    db = ["--db", str(tmp_path / "h.db")]
    cold = subprocess.run([*HARNESS, *args, *db], env=env, capture_output=True, text=True)
    assert cold.returncode == 0, cold.stderr
    warm = subprocess.run(
        [sys.executable, "-X", "importtime", *HARNESS[1:], *args, *db], env=env, capture_output=True, text=True
    )
    assert warm.returncode == 0, warm.stderr
    imported = {line.split("|")[-1].strip() for line in warm.stderr.splitlines() if line.startswith("import time:")}
    assert "mteb" in imported and "torch" in imported  # the scores are mteb's; its evaluators need torch
    assert not {"sentence_transformers", "transformers"} & imported
