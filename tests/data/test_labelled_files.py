"""Task files beyond STS: the kind a file's columns say, the layouts of MSRP and TREC QA, BEIR
folders, and malformed input refused with the file, line and column (nothing recorded)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.data.task_files import read_task_file
from tests.conftest import refused_naming


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_the_columns_say_the_kind(tmp_path):
    pairs = read_task_file(_write(tmp_path / "p.tsv", "sentence1\tsentence2\tlabel\na\tb\t1\nc\td\t0\n"))
    assert (pairs.kind, pairs.labels, pairs.size) == ("PairClassification", [1, 0], 2)
    msrp = read_task_file(
        _write(
            tmp_path / "m.tsv",
            '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t1\t2\tHe said "no.\tHe said no.\r\n0\t3\t4\tx\ty\r\n',
        )
    )
    assert msrp.sentence1 == ['He said "no.', "x"] and msrp.labels == [1, 0]
    trec = read_task_file(
        _write(tmp_path / "t.csv", 'qtext,label,atext\nwho?,1,"he, of course"\nwho?,0,not him\nwhy?,0,no\n')
    )
    assert (trec.kind, trec.queries, trec.positives, trec.negatives) == (
        "Reranking",
        ["who?", "why?"],
        [["he, of course"], []],
        [["not him"], ["no"]],
    )
    listed = read_task_file(
        _write(tmp_path / "l.jsonl", json.dumps({"query": "q", "positive": ["a"], "negative": ["b", "c"]}) + "\n")
    )
    assert (listed.kind, listed.positives, listed.negatives) == ("Reranking", [["a"]], [["b", "c"]])
    sts = read_task_file(_write(tmp_path / "s.tsv", "sentence1\tsentence2\tscore\na\tb\t1\nc\td\t2\n"))
    assert sts.kind == "STS"


def _beir(folder, corpus=None, queries=None, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\n"):
    (folder / "qrels").mkdir(parents=True)
    rows = corpus if corpus is not None else [{"_id": "d1", "title": "T", "text": "one"}, {"_id": "d2", "text": "two"}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in (queries or [{"_id": "q1", "text": "which?"}]))
    )
    (folder / "qrels" / "test.tsv").write_text(qrels)
    return folder


def test_a_beir_folder(tmp_path):
    data = read_task_file(_beir(tmp_path / "mini"))
    assert (data.kind, data.name, data.corpus["d1"], data.corpus["d2"], data.qrels) == (
        "Retrieval",
        "mini",
        ("T", "one"),
        ("", "two"),
        {"q1": {"d1": 1}},
    )
    assert len(data.digest) == 64


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        ("a.tsv", "sentence1\tsentence2\tlabel\na\tb\t2\nc\td\t0\n", ["line 2", "column label", "'2' is not a label"]),
        ("b.tsv", "sentence1\tsentence2\tlabel\na\tb\t1\nc\td\t1\n", ["all labelled 1", "needs both labels"]),
        ("c.tsv", "sentence1\tsentence2\tlabel\na\t\t1\nc\td\t0\n", ["line 2", "column sentence2", "empty"]),
        ("d.csv", "query,document,label\nq,a,1\nq,b,yes\n", ["line 3", "column label", "'yes'"]),
        (
            "e.csv",
            "query,document,label\nq,a,0\nr,b,0\n",
            ["no query has both a relevant and an irrelevant candidate"],
        ),
        (
            "f.jsonl",
            '{"query": "q", "positive": "a", "negative": ["b"]}\n',
            ["line 1", "column positive", "list of non-empty texts"],
        ),
        (
            "g.tsv",
            "words\tlabel\na\t1\n",
            ["line 1", "make no task", "sentence1, sentence2, label", "clustering text, label"],
        ),
        ("h.csv", 'query,document,label\nq,"a,1\n', ["line 2", "too few fields"]),
    ],
)
def test_bad_files_name_file_line_and_column(tmp_path, name, content, fragments):
    refused_naming(read_task_file, _write(tmp_path / name, content), fragments)


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda f: (f / "queries.jsonl").unlink(), ["missing queries.jsonl"]),
        (
            lambda f: (f / "corpus.jsonl").write_text(
                '{"_id": "d1", "text": "one"}\n{"_id": "d1", "text": "again"}\n'
            ),
            ["corpus.jsonl, line 2, column _id", "more than once"],
        ),
        (lambda f: (f / "corpus.jsonl").write_text('{"_id": "d1"}\n'), ["corpus.jsonl, line 1", "missing key text"]),
        (
            lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td9\t1\n"),
            ["test.tsv, line 2, column corpus-id", "'d9' is not an id"],
        ),
        (
            lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n"),
            ["test.tsv, line 2, column score", "whole-number"],
        ),
        (
            lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t0\n"),
            ["no query has a relevant document"],
        ),
        (
            lambda f: (f / "qrels" / "test.tsv").write_text("query\tdoc\nq1\td1\n"),
            ["test.tsv, line 1", "missing column(s) query-id, corpus-id, score"],
        ),
    ],
)
def test_bad_beir_folders_name_the_file_line_and_column(tmp_path, change, fragments):
    folder = _beir(tmp_path / "mini")
    change(folder)
    refused_naming(read_task_file, folder, fragments)


def test_a_malformed_task_file_records_nothing(tmp_path, tiny_llama_dir):
    bad = _write(tmp_path / "pairs.tsv", "sentence1\tsentence2\tlabel\na\tb\tmaybe\nc\td\t0\n")
    db = tmp_path / "h.db"
    result = CliRunner().invoke(
        app,
        ["run", "--method", "untrained-mean", "--backbone", str(tiny_llama_dir), "--tasks", str(bad), "--db", str(db)],
    )
    assert result.exit_code == 2 and "line 2, column label" in result.output
    assert not db.exists()
