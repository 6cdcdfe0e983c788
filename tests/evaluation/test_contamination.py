"""Contamination: the share of a task's evaluated texts found in a trained run's training texts,
exactly (normalised) and by shared 13-grams, recorded with each score and shown by every listing."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.evaluation.contamination import Overlap, TrainingData, TrainingIndex, changed_file, training_index
from leaderboard.store import open_store
from tests.conftest import run_args, write_sts_tsv
from tests.training_fixtures import TRIPLETS

runner = CliRunner()


def _plain(text):
    """The normalisation, written again: NFKC, lower case, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _grams(text, n=13):
    words = re.findall(r"\w+", _plain(text))
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


LONG = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"  # 14 words: two 13-grams


def test_overlap_counts_match_a_count_written_here():
    training = ["The cat sat on the mat", f"prefix {LONG} suffix", "rain falls"]
    evaluated = [
        "the  CAT sat on the mat ",  # exact after normalisation
        "\ufb01ne words",  # NFKC folds the ligature: "fine words", not in training
        f"other {LONG.split(' ', 1)[1]} fifteen",  # shares "two .. fourteen" (13 words): a 13-gram hit
        "rain falls",  # exact
        "Rain   falls",  # the same text again after normalisation: counted once
        "short text with no match",
    ]
    found = Overlap(TrainingIndex.build(training, "k"))
    found.add(evaluated[:3])
    found.add(evaluated[3:])
    result = found.result()
    distinct = {_plain(t): t for t in evaluated}
    exact = {t for t in distinct if t in {_plain(x) for x in training}}
    train_grams = set().union(*(_grams(x) for x in training))
    gram = {t for t, raw in distinct.items() if _grams(raw) & train_grams}
    assert result["texts"] == len(distinct) == 5
    assert (
        (result["exact_texts"], result["ngram_texts"], result["any_texts"])
        == (len(exact), len(gram), len(exact | gram))
        == (2, 1, 3)
    )
    assert result["exact"] == pytest.approx(2 / 5) and result["any"] == pytest.approx(3 / 5) and result["n"] == 13
    assert Overlap(TrainingIndex.build(training, "k")).result() is None  # no text evaluated: nothing to say


def test_the_index_is_built_once_per_content_and_a_changed_or_damaged_file_is_not_trusted(tmp_path, monkeypatch):
    from harness.data.local_data import file_digest
    from harness.evaluation import contamination

    source = tmp_path / "train.txt"
    source.write_text("the cat sat on the mat\nrain falls\n")
    data = TrainingData(str(source), 0, ("texts",), ((str(source), file_digest(source)),))
    folder = tmp_path / "index"
    built = training_index(data, folder)
    assert len(built.exact) == 2 and changed_file(data) is None
    monkeypatch.setattr(contamination, "training_texts", lambda data: pytest.fail("read the texts again"))
    again = training_index(data, folder)  # read back from the kept index
    assert (again.exact == built.exact).all() and (again.ngrams == built.ngrams).all()
    kept = contamination.index_path(folder, data)
    kept.write_bytes(b"not an npz file")
    monkeypatch.setattr(contamination, "training_texts", lambda data: ["rain falls"])
    assert len(training_index(data, folder).exact) == 1  # a damaged index is built again, never read
    source.write_text("something else\n")
    assert "changed since the run recorded it" in changed_file(data)
    source.unlink()
    assert "is gone" in changed_file(data)


@pytest.fixture
def trained_on_sts(tmp_path, tiny_llama_dir):
    """An InfoNCE run trained on TRIPLETS and evaluated on a task file of which a known share of
    texts are training texts, and an untrained run on the same file."""
    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text(
        "\n".join(json.dumps({"anchor": t.query, "positive": t.pos, "negative": t.neg}) for t in TRIPLETS) + "\n"
    )
    rows = [
        ("the cat sat on the mat", "a cat sat on a mat", 4.8),  # both in training
        ("The  Dog ran in the park", "the dog ran", 3.0),  # the first in training (case, spaces)
        ("the man ate food", "the woman ate food", 2.0),  # the first in training
        ("the sky is blue", "rain falls", 1.0),  # both in training
        ("quick brown fox jumps", "lazy dog sat", 0.5),
        ("the bird sat", "the grass is green", 1.5),  # both in training
    ]
    task = write_sts_tsv(tmp_path / "seen-sts.tsv", rows)
    db = tmp_path / "h.db"
    common = ["--backbone", str(tiny_llama_dir), "--tasks", str(task), "--db", str(db)]
    trained = runner.invoke(
        app,
        [
            "run",
            "--method",
            "infonce",
            *common,
            "--train-data",
            str(triplets),
            "--set",
            "method_args.steps=1",
            "--set",
            "method_args.batch_size=2",
            "--output-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert trained.exit_code == 0, trained.output
    untrained = runner.invoke(app, ["run", "--method", "untrained-mean", *common])
    assert untrained.exit_code == 0, untrained.output
    training = {_plain(x) for t in TRIPLETS for x in (t.query, t.pos, t.neg)}
    evaluated = {_plain(x) for a, b, _ in rows for x in (a, b)}
    return db, task, len(evaluated & training), len(evaluated), trained.output


def test_a_trained_run_records_and_shows_its_overlap(trained_on_sts):
    db, task, hits, total, output = trained_on_sts
    assert (hits, total) == (8, 12)  # the file was built for this count
    record = open_store(db).get_run(1)
    measured = record["score_details"][0]["contamination"]
    assert (measured["texts"], measured["exact_texts"], measured["ngram_texts"]) == (
        total,
        hits,
        0,
    )  # short texts: no 13-gram
    assert measured["exact"] == pytest.approx(hits / total)
    assert f"{100 * hits / total:.1f}% of its texts are in the training texts" in " ".join(output.split())
    assert open_store(db).get_run(2)["score_details"][0]["contamination"] is None  # untrained: not measured
    shown = runner.invoke(app, ["show", "1", "--db", str(db)])
    assert (
        shown.exit_code == 0 and "Seen in" in shown.output and f"{100 * hits / total:.1f}% of {total}" in shown.output
    )
    shown_json = json.loads(runner.invoke(app, ["show", "1", "--json", "--db", str(db)]).stdout)
    assert shown_json[0]["contamination"] == {task.stem: measured}


def test_compare_leaderboard_and_the_mteb_export_mark_what_was_measured(trained_on_sts):
    from harness.export.mteb import training_datasets

    db, task, _, _, _ = trained_on_sts
    compared = runner.invoke(app, ["compare", "2", "1", "--db", str(db)], terminal_width=200)
    assert compared.exit_code == 0 and "\u2020" in compared.output and "training texts" in compared.output
    as_json = json.loads(runner.invoke(app, ["compare", "2", "1", "--json", "--db", str(db)]).stdout)
    assert [bool(row["contamination"]) for row in as_json] == [False, True]
    board = runner.invoke(app, ["leaderboard", "--db", str(db)], terminal_width=200)
    assert board.exit_code == 0 and "\u2020" in board.output
    store = open_store(db)
    assert training_datasets(store.get_run(1)) == {task.stem}  # from the measured overlap, not the file's name
    assert training_datasets(store.get_run(2)) is None  # untrained


def test_a_run_trained_on_sick_train_shows_its_overlap_with_sick_trial(tmp_path, tiny_llama_dir, shared_data):
    """Real data: triplets made in the test from SICK train's pairs, a task file from SICK trial's
    first 200 pairs; the overlap `harness show` gives equals the count made here."""
    import csv

    def rows(name):
        with (shared_data / "sick" / name).open(encoding="utf-8") as handle:
            return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))

    train = rows("SICK_train.txt")
    triplets = tmp_path / "sick-triplets.jsonl"
    triplets.write_text(
        "".join(
            json.dumps({"query": r["sentence_A"], "pos": r["sentence_B"], "neg": train[i - 1]["sentence_B"]}) + "\n"
            for i, r in enumerate(train)
        )
    )
    trial = rows("SICK_trial.txt")[:200]
    task = write_sts_tsv(
        tmp_path / "sick-trial-200.tsv", [(r["sentence_A"], r["sentence_B"], r["relatedness_score"]) for r in trial]
    )
    db = tmp_path / "h.db"
    result = runner.invoke(
        app,
        run_args(
            db,
            tiny_llama_dir,
            task,
            "--train-data",
            str(triplets),
            "--set",
            "method_args.steps=1",
            "--set",
            "method_args.batch_size=2",
            "--output-dir",
            str(tmp_path / "runs"),
            method="infonce",
        ),
    )
    assert result.exit_code == 0, result.output
    seen = {_plain(r[k]) for r in train for k in ("sentence_A", "sentence_B")}
    evaluated = {_plain(r[k]) for r in trial for k in ("sentence_A", "sentence_B")}
    expected = len(evaluated & seen)
    assert 0 < expected < len(evaluated)  # SICK's splits share sentences: the count can be wrong both ways
    shown = json.loads(runner.invoke(app, ["show", "1", "--json", "--db", str(db)]).stdout)[0]["contamination"][
        "sick-trial-200"
    ]
    assert (shown["texts"], shown["exact_texts"]) == (len(evaluated), expected)
    text = runner.invoke(app, ["show", "1", "--db", str(db)]).output
    assert f"{100 * shown['any']:.1f}%" in text  # the share, in the "Seen in training" column
