"""Summarization, mteb's one task type without a local file format here (SummEval needs the hub),
runs through the adapter: mteb's evaluator scores summaries by the adapter's similarity of two single
vectors (a 0-d number) and gets the same scores as by its own cosine, and asks for each summary's
vector once. (mteb's metric itself, the Spearman of each machine summary's best similarity, is
mteb's to test.)"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import WORDS


def test_a_summarization_task_scores_summaries_by_the_adapters_cosine(tiny_llama_dir):
    import mteb
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.text.summarization import AbsTaskSummarization

    from harness.encoder import EncodeSettings, PooledEncoder
    from harness.evaluation.local_tasks import About, task_metadata
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
    about = About("HarnessTestSummaries", "Summarization", "summaries", "0")
    metadata = task_metadata(about, AbsTaskSummarization, main_score="cosine_spearman")

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
    adapter = MtebEncoder(encoder, meta)
    result = mteb.evaluate(adapter, Summaries(), cache=None, show_progress_bar=False)
    (entry,) = result.task_results[0].scores["test"]

    # "spearman" and "pearson" rank by the adapter's similarity, "cosine_*" by mteb's own cosine
    assert entry["spearman"] == pytest.approx(entry["cosine_spearman"], abs=1e-6)
    assert entry["pearson"] == pytest.approx(entry["cosine_pearson"], abs=1e-6)
    assert entry["main_score"] == entry["cosine_spearman"] and not np.isnan(entry["main_score"])
    summaries = {text for row in rows for text in row["human_summaries"] + row["machine_summaries"]}
    assert adapter.computed == encoder.texts_encoded == len(summaries)
