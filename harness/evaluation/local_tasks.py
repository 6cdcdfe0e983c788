"""mteb tasks made from local data: the offline STS sets and the user's task files and folders.

Each becomes a task of mteb's own type (``AbsTaskSTS``, ``AbsTaskPairClassification``,
``AbsTaskRetrieval`` for retrieval and reranking, ``AbsTaskClassification``, ``AbsTaskClustering``),
so mteb's evaluators, metrics and main scores apply unchanged. The dataset revision is the data's
sha256 prefix: another file under the same
name is another version of the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

    from harness.data.beir import RetrievalData
    from harness.data.labelled_files import LabelledPairs, Rerankings
    from harness.data.labelled_texts import ClassifiedTexts, LabelledTexts
    from harness.data.local_data import LocalData
    from harness.data.task_files import StsPairs

REVISION_DIGITS = 12  # a local task's version: this many hex digits of its sha256
#: mteb's main score of each type, as its own tasks of that type use
MAIN_SCORES = {
    "STS": "cosine_spearman",
    "PairClassification": "max_ap",
    "Reranking": "map_at_1000",
    "Retrieval": "ndcg_at_10",
    "Classification": "accuracy",
    "Clustering": "v_measure",
}


@dataclass(frozen=True)
class About:
    """What a task's metadata says of it besides its data."""

    name: str
    kind: str
    description: str
    revision: str
    reference: str | None = None


def task_metadata(about: About, base: type, **fields: Any) -> Any:
    """The metadata of a task of type ``base``; its prompt is ``base``'s default instruction, so
    that ``--instructions`` never looks it up by name (a file may share an mteb task's name).
    ``fields`` replace the defaults (one English test split, the kind's main score)."""
    from mteb.abstasks.task_metadata import TaskMetadata

    values = {
        "name": about.name,
        "prompt": getattr(base, "abstask_prompt", None) or None,
        "description": about.description,
        "reference": about.reference,
        "dataset": {"path": f"harness-local/{about.name}", "revision": about.revision},
        "type": about.kind,
        "category": "t2t",
        "modalities": ["text"],
        "eval_splits": ["test"],
        "eval_langs": ["eng-Latn"],
        "date": None,
        "domains": None,
        "task_subtypes": None,
        "license": None,
        "annotations_creators": "human-annotated",
        "dialect": None,
        "sample_creation": "found",
        "bibtex_citation": "",
    }
    if "main_score" not in fields:
        values["main_score"] = MAIN_SCORES[about.kind]
    return TaskMetadata(**{**values, **fields})


def sts_task(
    about: About, pairs: tuple[list[str], list[str], list[float]], score_range: tuple[float, float]
) -> AbsTask:
    """An mteb STS task over ``pairs`` (sentence1, sentence2, scores within ``score_range``)."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.sts import AbsTaskSTS

    sentence1, sentence2, scores = pairs

    def load_data(self: AbsTaskSTS, num_proc: int | None = None, **kwargs: Any) -> None:
        data = {"sentence1": sentence1, "sentence2": sentence2, "score": scores}
        self.dataset = DatasetDict({"test": Dataset.from_dict(data)})
        self.data_loaded = True

    attributes = {
        "metadata": task_metadata(about, AbsTaskSTS),
        "min_score": score_range[0],
        "max_score": score_range[1],
        "load_data": load_data,
    }
    return type(f"HarnessSTS_{about.name}", (AbsTaskSTS,), attributes)()


def _pair_task(about: About, data: LabelledPairs) -> AbsTask:
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.pair_classification import AbsTaskPairClassification

    def load_data(self: AbsTaskPairClassification, num_proc: int | None = None, **kwargs: Any) -> None:
        rows = {"sentence1": data.sentence1, "sentence2": data.sentence2, "labels": data.labels}
        self.dataset = DatasetDict({"test": Dataset.from_dict(rows)})
        self.data_loaded = True

    attributes = {"metadata": task_metadata(about, AbsTaskPairClassification), "load_data": load_data}
    return type(f"HarnessPairs_{about.name}", (AbsTaskPairClassification,), attributes)()


def _classification_task(about: About, data: ClassifiedTexts) -> AbsTask:
    """mteb's classification protocol unchanged: 10 experiments, each fitting a logistic regression
    on 8 training texts a label (mteb's default sample), scored on the whole test part."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.classification import AbsTaskClassification

    # the test part's labels first: where it holds two, mteb scores AP, which needs them as 0 and 1
    test_classes = sorted(set(data.test_labels))
    number = {
        label: index
        for index, label in enumerate([*test_classes, *(c for c in data.classes if c not in test_classes)])
    }

    def load_data(self: AbsTaskClassification, num_proc: int | None = None, **kwargs: Any) -> None:
        self.dataset = DatasetDict(
            {
                split: Dataset.from_dict({"text": texts, "label": [number[y] for y in labels]})
                for split, texts, labels in (
                    ("train", data.train_texts, data.train_labels),
                    ("test", data.test_texts, data.test_labels),
                )
            }
        )
        self.data_loaded = True

    attributes = {"metadata": task_metadata(about, AbsTaskClassification), "load_data": load_data}
    return type(f"HarnessClassification_{about.name}", (AbsTaskClassification,), attributes)()


def _clustering_task(about: About, data: LabelledTexts) -> AbsTask:
    """mteb's clustering protocol over every text: 10 k-means fits (k = the labels), each on a
    bootstrap sample as large as the set, scored by V-measure against the labels."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.clustering import AbsTaskClustering

    number = {label: index for index, label in enumerate(sorted(set(data.labels)))}

    def load_data(self: AbsTaskClustering, num_proc: int | None = None, **kwargs: Any) -> None:
        rows = {"sentences": data.texts, "labels": [number[y] for y in data.labels]}
        self.dataset = DatasetDict({"test": Dataset.from_dict(rows)})
        self.data_loaded = True

    attributes = {
        "metadata": task_metadata(about, AbsTaskClustering),
        "load_data": load_data,
        "max_fraction_of_documents_to_embed": None,
        "max_documents_per_cluster": data.size,
    }
    return type(f"HarnessClustering_{about.name}", (AbsTaskClustering,), attributes)()


def _split(
    corpus: dict[str, tuple[str, str]],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    top_ranked: dict[str, list[str]] | None,
) -> dict[str, Any]:
    from datasets import Dataset

    return {
        "corpus": Dataset.from_dict(
            {"id": list(corpus), "title": [t for t, _ in corpus.values()], "text": [x for _, x in corpus.values()]}
        ),
        "queries": Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
        "relevant_docs": qrels,
        "top_ranked": top_ranked,
    }


def _retrieval_task(about: About, split: dict[str, Any]) -> AbsTask:
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    def load_data(self: AbsTaskRetrieval, num_proc: int | None = None, **kwargs: Any) -> None:
        self.dataset = {"default": {"test": split}}
        self.data_loaded = True

    attributes = {"metadata": task_metadata(about, AbsTaskRetrieval), "load_data": load_data}
    return type(f"HarnessRetrieval_{about.name}", (AbsTaskRetrieval,), attributes)()


def reranking_split(data: Rerankings) -> dict[str, Any]:
    """Each query ranks its own candidates (mteb's ``top_ranked``); a candidate text is one corpus
    document however many queries list it."""
    ids: dict[str, str] = {}
    queries, qrels, top_ranked = {}, {}, {}
    for index, (query, positives, negatives) in enumerate(zip(data.queries, data.positives, data.negatives)):
        qid = f"q{index}"
        queries[qid] = query
        candidates = [ids.setdefault(text, f"d{len(ids)}") for text in [*positives, *negatives]]
        top_ranked[qid] = list(dict.fromkeys(candidates))
        qrels[qid] = {ids[text]: 1 for text in positives} | {
            ids[text]: 0 for text in negatives if text not in positives
        }
    corpus = {ident: ("", text) for text, ident in ids.items()}
    return _split(corpus, queries, qrels, top_ranked)


def file_task(data: LocalData) -> AbsTask:
    """The mteb task that evaluates a user's task file or folder."""
    described = (
        f"User STS file {data.path} ({data.size} pairs)."
        if data.kind == "STS"
        else f"User {data.kind} data {data.path} ({data.size} items)."
    )
    return local_task(About(data.name, data.kind, described, data.digest[:REVISION_DIGITS]), data)


def local_task(about: About, data: LocalData) -> AbsTask:
    """The mteb task of ``data``'s kind over it, described by ``about``."""
    if data.kind == "STS":
        pairs: StsPairs = data  # type: ignore[assignment]
        return sts_task(
            about, (pairs.sentence1, pairs.sentence2, pairs.scores), (min(pairs.scores), max(pairs.scores))
        )
    if data.kind == "PairClassification":
        return _pair_task(about, data)  # type: ignore[arg-type]
    if data.kind == "Reranking":
        return _retrieval_task(about, reranking_split(data))  # type: ignore[arg-type]
    if data.kind == "Classification":
        return _classification_task(about, data)  # type: ignore[arg-type]
    if data.kind == "Clustering":
        return _clustering_task(about, data)  # type: ignore[arg-type]
    retrieval: RetrievalData = data  # type: ignore[assignment]
    return _retrieval_task(about, _split(retrieval.corpus, retrieval.queries, retrieval.qrels, None))
