"""Training data: triplet files and aliases, NLI pairs to triplets, the offline default, errors."""

from __future__ import annotations

import json

import pytest

from harness.data.train_data import Triplet, load_triplets, offline_triplets
from harness.errors import HarnessError


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
        (
            "x.tsv",
            "query\tpositive\tbanana\nq\tp\tn\n",
            ["line 1", "expected triplet columns", "found: banana, positive, query"],
        ),
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
    from harness.data import offline_data

    triplets = offline_triplets(seed=0)
    assert len(triplets) > 1000
    assert offline_triplets(seed=0) == triplets and offline_triplets(seed=1) != triplets
    articles = (offline_data.test_data_dir() / "lee_background.cor").read_text(encoding="latin-1").splitlines()
    evaluation = (offline_data.test_data_dir() / "lee.cor").read_text(encoding="latin-1")
    for t in triplets[:200]:
        home = [a for a in articles if t.query in a]
        assert home and t.pos in home[0] and t.neg not in home[0]
        assert t.query not in evaluation


def _pair_files(tmp_path):
    nli = tmp_path / "nli.tsv"
    nli.write_text(
        "premise\thypothesis\tlabel\n"
        "a man plays a guitar\ta person plays a guitar\tentailment\n"
        "a man plays a guitar\tnobody plays music\tcontradiction\n"
        "a dog runs in a field\tan animal runs outside\tentailment\n"
        "a cat sleeps\ta cat is awake\tneutral\n"
    )
    sts = tmp_path / "sts.tsv"
    sts.write_text(
        "sentence1\tsentence2\tscore\n"
        "a woman slices an onion\ta woman cuts an onion\t4.6\n"
        "a boy rides a bike\ta child rides a bicycle\t4.0\n"
        "a plane takes off\ta man plays a flute\t0.4\n"
        "a girl sings a song\ta girl is singing\t3.9\n"
    )
    return nli, sts


def test_positive_pairs_come_from_entailments_and_sts_pairs_scoring_four_or_more(tmp_path):
    from harness.data.train_data import read_pairs

    nli, sts = _pair_files(tmp_path)
    assert read_pairs(str(nli)) == [
        ("a man plays a guitar", "a person plays a guitar"),
        ("a dog runs in a field", "an animal runs outside"),
    ]
    assert read_pairs(str(sts)) == [
        ("a woman slices an onion", "a woman cuts an onion"),
        ("a boy rides a bike", "a child rides a bicycle"),
    ]


def test_random_negatives_are_other_pairs_texts_and_seeded(tmp_path):
    nli, sts = _pair_files(tmp_path)
    source = f"random-negatives:{nli}+{sts}"
    triplets = load_triplets(source, seed=1)
    assert [(t.query, t.pos) for t in triplets] == [
        ("a man plays a guitar", "a person plays a guitar"),
        ("a dog runs in a field", "an animal runs outside"),
        ("a woman slices an onion", "a woman cuts an onion"),
        ("a boy rides a bike", "a child rides a bicycle"),
    ]
    texts = {x for t in triplets for x in (t.query, t.pos)}
    assert all(t.neg in texts and t.neg not in (t.query, t.pos) for t in triplets)
    assert load_triplets(source, seed=1) == triplets
    assert any(load_triplets(source, seed=s) != triplets for s in range(2, 6))


def test_mined_negatives_share_the_most_words_with_the_query():
    from harness.data.train_data import with_new_negatives

    pairs = [
        ("red apples grow on old trees", "apples are red"),
        ("green apples grow on young trees", "apples are green"),
        ("the train leaves at noon", "a train departs midday"),
    ]
    mined = with_new_negatives(pairs, "mined", seed=0)
    # Jaccard: the two apple sentences share {apples, grow, on, trees} of 8 words
    assert mined[0].neg == "green apples grow on young trees"
    assert mined[1].neg == "red apples grow on old trees"
    assert mined[2].neg != "a train departs midday" and mined[2].neg != "the train leaves at noon"


def test_bad_negative_specs_are_clear_errors(tmp_path):
    nli, _ = _pair_files(tmp_path)
    with pytest.raises(HarnessError, match="unknown negatives 'hard'"):
        load_triplets(f"hard-negatives:{nli}")
    with pytest.raises(HarnessError, match="empty source"):
        load_triplets(f"random-negatives:{nli}+")
    one = tmp_path / "one.tsv"
    one.write_text("sentence1\tsentence2\tscore\na b\tc d\t5\ne f\tg h\t1\n")
    with pytest.raises(HarnessError, match="at least 2 distinct positive pairs"):
        load_triplets(f"random-negatives:{one}")


def test_labelled_sources_can_be_joined(tmp_path):
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("query\tpos\tneg\nq1\tp1\tn1\n")
    b.write_text("query\tpos\tneg\nq2\tp2\tn2\n")
    assert load_triplets(f"{a}+{b}") == [Triplet("q1", "p1", "n1"), Triplet("q2", "p2", "n2")]


def test_sick_and_stsb_positives_lose_the_negation_shortcut(shared_data, tmp_path):
    """SICK's labelled negatives carry a negation word far more often than its positives; rebuilt
    negatives are texts of other positive pairs and carry it about as often as positives."""
    import csv
    import re

    stsb = tmp_path / "stsb-train.tsv"
    with (shared_data / "stsb" / "sts-train.csv").open(encoding="utf-8") as src:
        rows = [r for r in csv.reader(src, delimiter="\t", quoting=csv.QUOTE_NONE)]
    stsb.write_text("sentence1\tsentence2\tscore\n" + "".join(f"{r[5]}\t{r[6]}\t{r[4]}\n" for r in rows))
    sick = shared_data / "sick" / "SICK_train.txt"
    negation = re.compile(r"\b(no|not|nobody|none|nothing|never|n't)\b", re.IGNORECASE)
    rate = lambda texts: sum(bool(negation.search(t)) for t in texts) / len(texts)  # noqa: E731
    labelled = load_triplets(str(sick))
    assert rate([t.neg for t in labelled]) > 0.5 and rate([t.pos for t in labelled]) < 0.05
    rebuilt = load_triplets(f"random-negatives:{sick}+{stsb}", seed=0)
    assert len(rebuilt) > 1000
    assert rate([t.neg for t in rebuilt]) < 0.05
