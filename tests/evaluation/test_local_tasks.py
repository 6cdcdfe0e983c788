"""Task files beyond STS run through the CLI on the tiny model, and their recorded scores equal
metrics written here in numpy over the same model's vectors (not mteb's code): best-threshold
accuracy and AP for pair classification, MAP and MRR for reranking, nDCG@10 for retrieval,
accuracy for classification and V-measure for clustering (mteb's protocol of sampling and
fitting replayed here with scikit-learn's classifier and k-means)."""

from __future__ import annotations

import csv
import json
import math
import random
import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import WORDS, run_args

runner = CliRunner()


def _sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(3, 8))))


def _scores(db, tiny_llama_dir, task) -> dict:
    result = runner.invoke(app, run_args(db, tiny_llama_dir, task))
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        ((main, details, items),) = conn.execute("SELECT main_score, details, items FROM scores")
    return {"main": main, **json.loads(details)["test"][0], "items": json.loads(items)}


def _arrays(got) -> tuple[str, dict]:
    """The statistic and decoded arrays of a score's one subset of per-item results."""
    from leaderboard.intervals import unpack

    (entry,) = got["items"]["subsets"]
    return entry["statistic"], {name: unpack(text) for name, text in entry["arrays"].items()}


def _encoder(tiny_llama_dir):
    from harness.encoder import EncodeSettings, PooledEncoder
    from harness.model.backbones import backbone_spec, load_backbone

    backbone = load_backbone(backbone_spec(str(tiny_llama_dir)))
    return PooledEncoder(backbone.model, backbone.tokenizer, pooling="mean", settings=EncodeSettings())


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _average_precision(scores, relevant) -> float:
    """AP of a ranking by ``scores`` (highest first) of items where ``relevant`` is True."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = np.asarray(relevant)[order]
    precision_at_hits = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hits.mean()) if hits.any() else 0.0


def _best_accuracy(scores, labels) -> float:
    """Accuracy of the best threshold: pairs scoring above it are called 1. As mteb defines it, a
    threshold lies between two distinct scores, so each side keeps at least one pair."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    distinct = np.unique(scores)
    cuts = (distinct[:-1] + distinct[1:]) / 2
    return max(float(((scores > cut) == (labels == 1)).mean()) for cut in cuts)


def test_pair_classification_file_scores_ap_and_best_threshold_accuracy(tmp_path, tiny_llama_dir):
    rng = np.random.default_rng(0)
    rows = [(_sentence(rng), _sentence(rng), int(rng.integers(0, 2))) for _ in range(40)]
    task = tmp_path / "pairs.tsv"
    # MSRP's layout: a BOM, CRLF lines, its column names, a quote inside a tab-separated text
    lines = ["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"] + [
        f"{y}\t{i}\t{i}\t{a}\t{b}" for i, (a, b, y) in enumerate(rows)
    ]
    lines[1] = lines[1].replace(rows[0][0], rows[0][0] + ' "quoted')
    task.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    got = _scores(tmp_path / "h.db", tiny_llama_dir, task)
    encoder = _encoder(tiny_llama_dir)
    first = [rows[0][0] + ' "quoted'] + [a for a, _, _ in rows[1:]]
    a, b = encoder.encode(first), encoder.encode([b for _, b, _ in rows])
    labels = [y for _, _, y in rows]
    cosine = (_unit(a) * _unit(b)).sum(1)
    assert got["cosine_ap"] == pytest.approx(_average_precision(cosine, np.array(labels) == 1), abs=1e-5)
    statistic, arrays = _arrays(got)  # per pair: the label and each scoring function's value
    assert statistic == "max_ap" and np.array_equal(arrays["labels"], labels)
    assert any(np.allclose(arrays[name], cosine, atol=1e-5) for name in arrays if name != "labels")
    best = max(_average_precision(arrays[name], arrays["labels"] == 1) for name in arrays if name != "labels")
    assert best == pytest.approx(got["main"], abs=1e-5)
    assert got["cosine_accuracy"] == pytest.approx(_best_accuracy(cosine, labels), abs=1e-6)
    euclidean_ap = _average_precision(-np.linalg.norm(a - b, axis=1), np.array(labels) == 1)
    manhattan_ap = _average_precision(-np.abs(a - b).sum(1), np.array(labels) == 1)
    dot_ap = _average_precision((a * b).sum(1), np.array(labels) == 1)
    assert (
        got["main"]
        == got["max_ap"]
        == pytest.approx(
            max(_average_precision(cosine, np.array(labels) == 1), euclidean_ap, manhattan_ap, dot_ap), abs=1e-5
        )
    )


def _reranking_rows(rng):
    rows = []
    for _ in range(12):
        query = _sentence(rng)
        labels = [1] + [int(v) for v in rng.integers(0, 2, size=5)]
        rows += [(query, _sentence(rng), label) for label in labels]
    return rows


def test_reranking_file_scores_map_and_mrr(tmp_path, tiny_llama_dir):
    rows = _reranking_rows(np.random.default_rng(1))
    task = tmp_path / "rerank.csv"
    with task.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("qtext", "label", "atext"), *((q, y, d) for q, d, y in rows)])
    got = _scores(tmp_path / "h.db", tiny_llama_dir, task)
    encoder = _encoder(tiny_llama_dir)
    aps, reciprocal = [], []
    for query in dict.fromkeys(q for q, _, _ in rows):
        candidates = [(d, y) for q, d, y in rows if q == query]
        q_vec = _unit(encoder.encode([query], prompt_type="query"))[0]
        d_vecs = _unit(encoder.encode([d for d, _ in candidates], prompt_type="document"))
        scores, relevant = d_vecs @ q_vec, np.array([y == 1 for _, y in candidates])
        aps.append(_average_precision(scores, relevant))
        first_hit = int(np.flatnonzero(relevant[np.argsort(-scores, kind="stable")])[0]) + 1
        reciprocal.append(1 / first_hit if first_hit <= 10 else 0.0)
    assert got["main"] == got["map_at_1000"] == pytest.approx(float(np.mean(aps)), abs=1e-4)
    statistic, arrays = _arrays(got)  # per query (ids sorted, here q0..q11 as written) its AP
    assert statistic == "mean" and np.allclose(np.sort(arrays["values"]), np.sort(aps), atol=1e-4)
    assert got["mrr_at_10"] == pytest.approx(float(np.mean(reciprocal)), abs=1e-4)


def _search(db) -> str | None:
    with sqlite3.connect(db) as conn:
        ((details,),) = conn.execute("SELECT details FROM timings WHERE phase LIKE 'evaluate:%'")
    return json.loads(details).get("search")


@pytest.mark.parametrize("backend", ["faiss", "exact"])
def test_beir_folder_scores_ndcg_at_10(tmp_path, tiny_llama_dir, backend, monkeypatch):
    """mteb's FAISS index where faiss is installed, else its exact search: the same nDCG, and the
    run records which searched."""
    import importlib.util

    if backend == "faiss" and importlib.util.find_spec("faiss") is None:
        pytest.fail("faiss-cpu is part of the set-up step (the faiss extra)")
    if backend == "exact":
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "faiss" else real(name, *a))
    rng = np.random.default_rng(2)
    corpus = {f"doc{i}": _sentence(rng) for i in range(30)}
    queries = {f"q{i}": _sentence(rng) for i in range(8)}
    qrels = {q: {f"doc{j}": 1 for j in rng.choice(30, size=int(rng.integers(1, 4)), replace=False)} for q in queries}
    folder = tmp_path / "mini-beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in corpus.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, ds in qrels.items() for d in ds)
    )
    got = _scores(tmp_path / "h.db", tiny_llama_dir, folder)
    encoder = _encoder(tiny_llama_dir)
    ids = list(corpus)
    d_vecs = _unit(encoder.encode([corpus[i] for i in ids], prompt_type="document"))
    ndcgs = []
    for q, text in queries.items():
        scores = d_vecs @ _unit(encoder.encode([text], prompt_type="query"))[0]
        ranked = [ids[i] for i in np.argsort(-scores, kind="stable")[:10]]
        dcg = sum(1 / math.log2(rank + 2) for rank, doc in enumerate(ranked) if doc in qrels[q])
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(10, len(qrels[q]))))
        ndcgs.append(dcg / ideal)
    assert got["main"] == got["ndcg_at_10"] == pytest.approx(float(np.mean(ndcgs)), abs=1e-4)
    statistic, arrays = _arrays(got)  # per query, in sorted id order, its nDCG@10
    assert statistic == "mean" and np.allclose(
        arrays["values"], [ndcgs[list(queries).index(q)] for q in sorted(queries)], atol=1e-4
    )
    assert _search(tmp_path / "h.db") == backend


def _labelled_rows(rng, n: int) -> list[tuple[str, str]]:
    """Texts drawn from one of three word groups each, labelled by the group (so learnable)."""
    groups = [WORDS[i * 10 : (i + 1) * 10] for i in range(3)]
    labels = rng.integers(0, 3, size=n)
    return [(" ".join(rng.choice(groups[y], size=5)), f"group {y}") for y in labels]


def test_classification_file_scores_accuracy(tmp_path, tiny_llama_dir):
    from sklearn.linear_model import LogisticRegression

    rows = _labelled_rows(np.random.default_rng(3), 60)
    task = tmp_path / "groups.tsv"
    task.write_text(
        "text\tlabel\tsplit\n"
        + "".join(f"{t}\t{y}\t{'train' if i < 40 else 'test'}\n" for i, (t, y) in enumerate(rows))
    )
    got = _scores(tmp_path / "h.db", tiny_llama_dir, task)
    encoder = _encoder(tiny_llama_dir)
    train, test = rows[:40], rows[40:]
    x_train, x_test = encoder.encode([t for t, _ in train]), encoder.encode([t for t, _ in test])
    y_train, y_test = np.array([y for _, y in train]), np.array([y for _, y in test])
    order, accuracies = list(range(len(train))), []
    for _ in range(10):  # mteb's experiments: reshuffle, take the first 8 texts of each label, fit, score
        np.random.RandomState(42).shuffle(order)
        chosen, taken = [], dict.fromkeys(set(y_train), 0)
        for i in order:
            if taken[y_train[i]] < 8:
                chosen.append(i)
                taken[y_train[i]] += 1
        classifier = LogisticRegression(max_iter=100, random_state=42).fit(x_train[chosen], y_train[chosen])
        accuracies.append(float((classifier.predict(x_test) == y_test).mean()))
    assert got["main"] == got["accuracy"] == pytest.approx(float(np.mean(accuracies)), abs=1e-6)
    statistic, arrays = _arrays(got)  # per test item: the share of the 10 classifiers right about it
    assert statistic == "mean" and len(arrays["values"]) == len(test)
    assert arrays["values"].mean() == pytest.approx(float(np.mean(accuracies)), abs=1e-9)
    assert set(np.round(arrays["values"] * 10, 9)) <= set(range(11))


def _v_measure(labels, clusters) -> float:
    """Harmonic mean of homogeneity (I(Y;K)/H(Y)) and completeness (I(Y;K)/H(K))."""
    _, y = np.unique(labels, return_inverse=True)
    _, k = np.unique(clusters, return_inverse=True)
    joint = np.zeros((y.max() + 1, k.max() + 1))
    np.add.at(joint, (y, k), 1)
    joint /= joint.sum()
    py, pk = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mutual = float((joint[nz] * np.log(joint[nz] / np.outer(py, pk)[nz])).sum())
    h_y, h_k = (float(-(p[p > 0] * np.log(p[p > 0])).sum()) for p in (py, pk))
    homogeneity, completeness = (mutual / h if h else 1.0 for h in (h_y, h_k))
    return 2 * homogeneity * completeness / (homogeneity + completeness) if homogeneity + completeness else 0.0


def test_clustering_file_scores_v_measure(tmp_path, tiny_llama_dir):
    from sklearn.cluster import MiniBatchKMeans

    rows = _labelled_rows(np.random.default_rng(4), 45)
    task = tmp_path / "topics.csv"
    task.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    got = _scores(tmp_path / "h.db", tiny_llama_dir, task)
    vectors = _encoder(tiny_llama_dir).encode([t for t, _ in rows])
    labels = np.array([y for _, y in rows])
    draw, scores = random.Random(42), []
    for _ in range(10):  # mteb's bootstrap: as many texts as the set, drawn with replacement
        sample = draw.choices(range(len(rows)), k=len(rows))
        kmeans = MiniBatchKMeans(n_clusters=3, batch_size=512, init="k-means++", n_init=1, random_state=42)
        scores.append(_v_measure(labels[sample], kmeans.fit_predict(vectors[sample])))
    assert got["main"] == got["v_measure"] == pytest.approx(float(np.mean(scores)), abs=1e-6)
    statistic, arrays = _arrays(got)  # the unit is one of mteb's 10 clustering experiments
    assert statistic == "mean" and np.allclose(arrays["values"], scores, atol=1e-6)


def test_each_side_of_a_retrieval_task_reads_its_own_template(tiny_llama_dir):
    """mteb says which side it encodes (``prompt_type``); queries read ``template`` and documents
    ``document_template``, and the memo keeps the two apart."""
    import mteb

    from harness.data.beir import RetrievalData
    from harness.encoder import EncodeSettings, PooledEncoder
    from harness.evaluation.local_tasks import file_task
    from harness.evaluation.mteb_adapter import MtebEncoder, model_meta
    from harness.model.backbones import backbone_spec, load_backbone

    backbone = load_backbone(backbone_spec(str(tiny_llama_dir)))
    seen: list[tuple[str | None, list[int]]] = []

    class Recording(PooledEncoder):
        def embed_rows(self, rows):
            seen.extend((self.side, list(row)) for row in rows)
            return super().embed_rows(rows)

        def encode(self, texts, *, prompt_type=None):
            self.side = prompt_type
            return super().encode(texts, prompt_type=prompt_type)

    encoder = Recording(
        backbone.model,
        backbone.tokenizer,
        pooling="mean",
        settings=EncodeSettings(),
        template="this sentence : {text}",
        document_template="read book : {text}",
    )
    shared = "the cat sat"
    data = RetrievalData(
        "sides",
        tiny_llama_dir,
        "0" * 64,
        {"d0": ("", shared), "d1": ("", "a dog ran")},
        {"q0": shared},
        {"q0": {"d0": 1}},
    )
    meta = model_meta(
        name="harness/test__tiny",
        revision="0" * 12,
        n_parameters=1,
        embed_dim=encoder.embed_dim,
        max_tokens=512,
        source="local",
    )
    adapter = MtebEncoder(encoder, meta)
    mteb.evaluate(adapter, file_task(data), cache=None, show_progress_bar=False)
    tokenize = backbone.tokenizer
    as_query = tokenize("this sentence : " + shared)["input_ids"]
    as_document = tokenize("read book : " + shared)["input_ids"]
    assert 1 not in as_query + as_document  # every word is in the tiny vocabulary: no [UNK]
    assert ("query", as_query) in seen and ("document", as_document) in seen
    assert ("document", tokenize("read book : a dog ran")["input_ids"]) in seen
    assert ("query", as_document) not in seen and ("document", as_query) not in seen
    assert adapter.computed == 3  # the same text on both sides is two entries of the memo


def test_instructions_go_before_queries_and_symmetric_texts_never_documents(tiny_llama_dir):
    """``--instructions``: the e5 format with the task's own instruction (a local task: its task
    type's default) on queries and symmetric texts; documents bare; off by default."""
    import mteb
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.sts import AbsTaskSTS

    from harness.data.beir import RetrievalData
    from harness.data.task_files import StsPairs
    from harness.encoder import EncodeSettings, PooledEncoder
    from harness.evaluation.local_tasks import file_task
    from harness.evaluation.mteb_adapter import MtebEncoder, model_meta
    from harness.model.backbones import backbone_spec, load_backbone

    backbone = load_backbone(backbone_spec(str(tiny_llama_dir)))
    seen: list[tuple[str | None, str]] = []

    class Recording(PooledEncoder):
        def encode(self, texts, *, prompt_type=None):
            seen.extend((prompt_type, text) for text in texts)
            return super().encode(texts, prompt_type=prompt_type)

    encoder = Recording(backbone.model, backbone.tokenizer, pooling="mean", settings=EncodeSettings())
    retrieval = RetrievalData(
        "instructed",
        tiny_llama_dir,
        "0" * 64,
        {"d0": ("", "the cat sat"), "d1": ("", "a dog ran")},
        {"q0": "who sat"},
        {"q0": {"d0": 1}},
    )
    sts = StsPairs("instructed-sts", tiny_llama_dir, "1" * 64, ["a cat", "a dog"], ["the cat", "the sun"], [1.0, 0.0])
    for instructions in (True, False):
        seen.clear()
        meta = model_meta(
            name="harness/test__tiny",
            revision="0" * 12,
            n_parameters=1,
            embed_dim=encoder.embed_dim,
            max_tokens=512,
            source="local",
            use_instructions=instructions,
        )
        adapter = MtebEncoder(encoder, meta, instructions=instructions)
        for data in (retrieval, sts):
            mteb.evaluate(adapter, file_task(data), cache=None, show_progress_bar=False)
        query = f"Instruct: {AbsTaskRetrieval.abstask_prompt}\nQuery: who sat" if instructions else "who sat"
        pair = f"Instruct: {AbsTaskSTS.abstask_prompt}\nQuery: a cat" if instructions else "a cat"
        assert ("query", query) in seen and ("document", "the cat sat") in seen and (None, pair) in seen
        assert meta.use_instructions is instructions


def test_progress_totals_count_a_retrieval_corpus_and_its_queries(tiny_llama_dir):
    from harness.data.beir import RetrievalData
    from harness.data.labelled_texts import ClassifiedTexts, LabelledTexts
    from harness.evaluation.local_tasks import file_task
    from harness.evaluation.quick_check import texts_to_encode

    corpus = {f"d{i}": ("", f"text {i}") for i in range(7)}
    retrieval = file_task(
        RetrievalData("total", tiny_llama_dir, "0" * 64, corpus, {"q0": "a", "q1": "b"}, {"q0": {"d0": 1}})
    )
    clusters = file_task(LabelledTexts("total-c", tiny_llama_dir, "1" * 64, ["a", "b", "c"], ["x", "y", "x"]))
    classes = file_task(ClassifiedTexts("total-k", tiny_llama_dir, "2" * 64, ["a", "b"], ["x", "y"], ["c"], ["x"]))
    for task in (retrieval, clusters, classes):
        task.load_data()
    assert (texts_to_encode(retrieval), texts_to_encode(clusters), texts_to_encode(classes)) == (9, 3, None)
