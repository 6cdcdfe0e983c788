"""Summarization, mteb's one task type without a local file format here (SummEval needs the hub),
runs through the adapter: its score equals the metric recomputed in numpy from the same vectors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import WORDS


def _spearman(a, b) -> float:
    def ranks(x):
        x = np.asarray(x, dtype=float)
        order = np.argsort(x, kind="stable")
        out = np.empty(len(x))
        out[order] = np.arange(len(x))
        for value in np.unique(x):  # ties share their mean rank
            out[x == value] = out[x == value].mean()
        return out

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def test_a_summarization_task_scores_the_spearman_of_best_summary_similarity(tiny_llama_dir):
    import mteb
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.task_metadata import TaskMetadata
    from mteb.abstasks.text.summarization import AbsTaskSummarization

    from harness.encoder import EncodeSettings, PooledEncoder
    from harness.evaluation.mteb_adapter import MtebEncoder, model_meta
    from harness.model.backbones import backbone_spec, load_backbone

    rng = np.random.default_rng(5)
    say = lambda n: " ".join(rng.choice(WORDS, size=n))  # noqa: E731
    rows = [
        {
            "text": say(12),
            "human_summaries": [say(4), say(5)],
            "machine_summaries": [say(4) for _ in range(5)],
            "relevance": [float(v) for v in rng.integers(1, 6, size=5)],
        }
        for _ in range(4)
    ]
    metadata = TaskMetadata(
        name="HarnessTestSummaries",
        description="summaries",
        reference=None,
        dataset={"path": "local/summaries", "revision": "0"},
        type="Summarization",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score="cosine_spearman",
        date=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators="human-annotated",
        dialect=None,
        sample_creation="found",
        bibtex_citation="",
    )

    class Summaries(AbsTaskSummarization):
        min_score, max_score = 1, 5

        def load_data(self, num_proc=None, **kwargs):
            self.dataset = DatasetDict({"test": Dataset.from_list(rows)})
            self.data_loaded = True

    Summaries.metadata = metadata
    backbone = load_backbone(backbone_spec(str(tiny_llama_dir)))
    encoder = PooledEncoder(backbone.model, backbone.tokenizer, pooling="mean", settings=EncodeSettings())
    meta = model_meta(
        name="harness/test__tiny",
        revision="0" * 12,
        n_parameters=1,
        embed_dim=encoder.embed_dim,
        max_tokens=512,
        source="local",
    )
    result = mteb.evaluate(MtebEncoder(encoder, meta), Summaries(), cache=None, show_progress_bar=False)
    got = result.task_results[0].get_score()

    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    expected = []
    for row in rows:
        human, machine = unit(encoder.encode(row["human_summaries"])), unit(encoder.encode(row["machine_summaries"]))
        best = (machine @ human.T).max(axis=1)  # each machine summary: its closest human summary
        expected.append(_spearman(best, row["relevance"]))
    assert got == pytest.approx(float(np.mean(expected)), abs=1e-5)
