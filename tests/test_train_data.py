"""Training data: triplet files and aliases, NLI pairs to triplets, the offline default, errors."""

from __future__ import annotations

import json

import pytest

from harness.errors import HarnessError
from harness.train_data import Triplet, load_triplets, offline_triplets


@pytest.mark.parametrize(
    ("header", "name"),
    [("query\tpos\tneg", "t.tsv"), ("anchor\tpositive\tnegative", "a.tsv"), ("sent0\tsent1\thard_neg", "s.txt")],
)
def test_triplet_files_with_each_alias_set(tmp_path, header, name):
    path = tmp_path / name
    path.write_text(f"{header}\nq1\tp1\tn1\nq2\tp2\tn2\n")
    assert load_triplets(str(path)) == [Triplet("q1", "p1", "n1"), Triplet("q2", "p2", "n2")]


def test_triplet_csv_and_jsonl(tmp_path):
    (tmp_path / "t.csv").write_text('sent0,sent1,hard_neg\n"a, b",c,d\n')
    assert load_triplets(str(tmp_path / "t.csv")) == [Triplet("a, b", "c", "d")]
    (tmp_path / "t.jsonl").write_text(json.dumps({"query": "q", "pos": "p", "neg": "n"}) + "\n")
    assert load_triplets(str(tmp_path / "t.jsonl")) == [Triplet("q", "p", "n")]


def test_nli_pairs_become_triplets_with_symmetric_contradiction(tmp_path):
    path = tmp_path / "nli.tsv"
    path.write_text(
        "premise\thypothesis\tlabel\n"
        "A man sleeps\tA person sleeps\tentailment\n"
        "A man sleeps\tA man is awake\tcontradiction\n"
        "A man sleeps\tA man dreams\tneutral\n"
        "A dog runs\tAn animal runs\tENTAILMENT\n"
        "A cat sits\tA dog runs\tcontradiction\n"  # contradiction is symmetric: gives 'A dog runs' a negative
        "A bird sings\tA bird is silent\t2\n"  # SNLI's numeric labels; no entailment, so no triplet
    )
    assert load_triplets(str(path)) == [
        Triplet("A man sleeps", "A person sleeps", "A man is awake"),
        Triplet("A dog runs", "An animal runs", "A cat sits"),
    ]


def test_sick_file_is_read_as_nli(shared_data):
    triplets = load_triplets(str(shared_data / "sick" / "SICK_train.txt"))
    assert len(triplets) == 295
    assert all(t.query and t.pos and t.neg and t.pos != t.neg for t in triplets)


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("x.tsv", "query\tpositive\tbanana\nq\tp\tn\n", ["line 1", "expected triplet columns", "found: banana, positive, query"]),
        ("y.tsv", "query\tpos\tneg\nq\tp\n", ["line 2", "too few fields", "column neg"]),
        ("z.jsonl", '{"query": "q", "pos": "p", "neg": 3}\n', ["line 1", "column neg", "is not text"]),
        ("w.tsv", "premise\thypothesis\tlabel\na\tb\tneutral\n", ["no premise has both"]),
        ("v.tsv", "", ["the file is empty"]),
    ],
)
def test_bad_training_files_name_file_row_and_column(tmp_path, name, content, fragments):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(HarnessError) as info:
        load_triplets(str(path))
    assert f"training-data file {path}" in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_source_and_hub_sets_offline():
    with pytest.raises(HarnessError, match="not one of offline, all-nli, simcse-nli"):
        load_triplets("no-such-set")
    with pytest.raises(HarnessError, match="from the hub, which failed here"):
        load_triplets("all-nli")


def test_offline_default_pairs_neighbouring_sentences_of_one_article():
    from harness import offline_data

    triplets = offline_triplets(seed=0)
    assert len(triplets) > 1000
    assert offline_triplets(seed=0) == triplets and offline_triplets(seed=1) != triplets
    articles = (offline_data.test_data_dir() / "lee_background.cor").read_text(encoding="latin-1").splitlines()
    evaluation = (offline_data.test_data_dir() / "lee.cor").read_text(encoding="latin-1")
    for t in triplets[:200]:
        home = [a for a in articles if t.query in a]
        assert home and t.pos in home[0] and t.neg not in home[0]
        assert t.query not in evaluation
