"""STS task files: formats, quirks that must parse, and errors naming file, line and column."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.data.task_files import read_sts_file
from harness.errors import HarnessError
from harness.evaluation.tasks import resolve_tasks, task_names
from tests.conftest import refused_naming


def _write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_tsv_with_extra_columns_and_ragged_trailing_fields(tmp_path):
    path = _write(
        tmp_path / "my-sts.tsv",
        'id\tscore\tsentence1\tsentence2\n1\t4.5\tA "quoted" cat.\tA cat.\n2\t0\tDog.\tCar.\textra\tfields\n',
    )
    pairs = read_sts_file(path)
    assert pairs.name == "my-sts"
    assert pairs.sentence1 == ['A "quoted" cat.', "Dog."]
    assert pairs.scores == [4.5, 0.0]
    assert len(pairs.digest) == 64


def test_csv_with_bom_crlf_and_quoted_comma_and_newline(tmp_path):
    text = '\ufeffsentence1,sentence2,score\r\n"a, b","line one\nline two",1\r\nc,d,2\r\n'
    pairs = read_sts_file(_write(tmp_path / "x.csv", text))
    assert pairs.sentence1 == ["a, b", "c"]
    assert pairs.sentence2 == ["line one\nline two", "d"]


def test_jsonl(tmp_path):
    rows = [{"sentence1": "a", "sentence2": "b", "score": 1}, {"sentence1": "c", "sentence2": "d", "score": "2.5"}]
    pairs = read_sts_file(_write(tmp_path / "j.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n"))
    assert pairs.scores == [1.0, 2.5]


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("e.tsv", "", ["the file is empty"]),
        ("m.tsv", "sentence1\tscore\na\t1\n", ["line 1", "missing column(s) sentence2"]),
        (
            "n.tsv",
            "sentence1\tsentence2\tscore\na\tb\t1\nc\td\thigh\n",
            ["line 3", "column score", "'high' is not a number"],
        ),
        ("f.csv", "sentence1,sentence2,score\na,b,1\nc,d\n", ["line 3", "too few fields", "column score"]),
        ("i.tsv", "sentence1\tsentence2\tscore\na\tb\tinf\nc\td\t1\n", ["line 2", "not a finite number"]),
        ("h.tsv", "sentence1\tsentence2\tscore\n", ["0 data row(s)"]),
        ("s.tsv", "sentence1\tsentence2\tscore\na\tb\t1\nc\td\t1\n", ["every score is equal"]),
        ("t.tsv", "sentence1\tsentence2\tscore\n \tb\t1\nc\td\t2\n", ["line 2", "column sentence1", "empty"]),
        (
            "j.jsonl",
            '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a",\n',
            ["line 2", "column", "invalid JSON"],
        ),
        (
            "k.jsonl",
            '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", "score": 2}\n',
            ["line 2", "missing key sentence2"],
        ),
        ("b.tsv", b"sentence1\tsentence2\tscore\n\xff\xfe\tb\t1\n", ["line 2", "not UTF-8"]),
        ("z.tsv", b"sentence1\tsentence2\tscore\na\x00\tb\t1\n", ["line 2", "NUL byte"]),
        ("x.txt", "sentence1\tsentence2\tscore\n", ["unsupported file type .txt"]),
        (
            "big.jsonl",
            '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "c", "sentence2": "d", "score": 1%s}\n'
            % ("0" * 400),
            ["line 2", "column score", "not a finite number"],
        ),
        (
            "wide.tsv",
            "sentence1\tsentence2\tscore\na\tb\t1e300\nc\td\t-1e300\n",
            ["line 2", "column score", "cannot be a score"],
        ),
        (
            "long.tsv",
            "sentence1\tsentence2\tscore\na\tb\t1\nc\td\t%s\n" % ("9" * 400),
            ["line 3", "not a finite number"],
        ),
        (
            "dup.tsv",
            "sentence1\tsentence2\tscore\tScore\na\tb\t1\t2\nc\td\t2\t1\n",
            ["line 1", "score more than once"],
        ),
        (
            "dup.jsonl",
            '{"sentence1": "a", "sentence2": "b", "score": 1, "score": 2}\n',
            ["line 1", "score appear more than once"],
        ),
    ],
)
def test_bad_files_name_file_line_and_column(tmp_path, name, content, fragments):
    refused_naming(read_sts_file, _write(tmp_path / name, content), fragments)


def test_missing_file(tmp_path):
    with pytest.raises(HarnessError, match="no such file"):
        resolve_tasks([str(tmp_path / "absent.tsv")])


def test_presets_and_files_mix_and_deduplicate(small_sts_file):
    specs = resolve_tasks(["offline", str(small_sts_file), "offline"])
    assert [s.name for s in specs] == [
        "LeeDocSimilarity",
        "WordSim353",
        "SimLex999",
        "PangLeePolarityClassification",
        "MiniNewsgroupsClustering",
        "tiny-sts",
    ]
    assert specs[-1].record()["pairs"] == 12
    assert task_names(["sts7"])[0] == "SICK-R" and len(task_names(["sts10"])) == 10


def test_two_files_with_one_stem_are_refused(tmp_path, small_sts_file):
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = other / small_sts_file.name
    twin.write_text(small_sts_file.read_text().replace("4.8", "1.0"))
    with pytest.raises(HarnessError, match="both named 'tiny-sts'"):
        resolve_tasks([str(small_sts_file), str(twin)])


def test_unknown_preset_suggests():
    with pytest.raises(HarnessError, match="Did you mean 'offline'"):
        resolve_tasks(["ofline"])


def test_offline_tasks_have_the_published_sizes():
    from harness.data import offline_data

    lee = offline_data.lee_pairs()
    assert len(lee[0]) == 1225 and min(lee[2]) >= 0 and max(lee[2]) <= 1
    assert len(offline_data.word_pairs("wordsim353.tsv")[0]) == 353
    assert len(offline_data.word_pairs("simlex999.txt")[0]) == 999
    polarity = offline_data.polarity_texts()
    assert (len(polarity.train_texts), len(polarity.test_texts)) == (100, 100)
    assert sorted(polarity.train_labels) == sorted(polarity.test_labels) == ["neg"] * 50 + ["pos"] * 50
    assert not set(polarity.train_texts) & set(polarity.test_texts)
    assert any("\u2014" in text for text in polarity.train_texts + polarity.test_texts)  # its dashes are cp1252
    news = offline_data.newsgroup_texts()
    assert (
        news.size == 200
        and sorted(set(news.labels)) == ["alt.atheism", "sci.space"]
        and news.labels.count("sci.space") == 100
    )
    assert news.texts[:2] == ["Re: Biblical Rape", "Space Calendar - 04/27/93"] and not any(
        "\n" in text for text in news.texts
    )


def test_the_newsgroups_pickle_builds_nothing_but_data(tmp_path, monkeypatch):
    """A pickle naming any other callable (here os.system) is refused, never run."""
    import pickle
    import zlib

    from harness.data import offline_data

    class Hostile:
        def __reduce__(self):
            return (__import__("os").system, ("touch " + str(tmp_path / "ran"),))

    (tmp_path / "mini_newsgroup").write_bytes(zlib.compress(pickle.dumps(Hostile(), protocol=0)))
    monkeypatch.setattr(offline_data, "test_data_dir", lambda: tmp_path)
    with pytest.raises(HarnessError, match="posix.system is not allowed|os.system is not allowed"):
        offline_data.newsgroup_texts()
    assert not (tmp_path / "ran").exists()
    (tmp_path / "mini_newsgroup").write_bytes(
        zlib.compress(b"c__builtin__\ndict\n)R}(S'a'\nI1\ndb.")
    )  # BUILD on a dict
    with pytest.raises(HarnessError, match="not gensim's mini_newsgroup file"):
        offline_data.newsgroup_texts()
    (tmp_path / "mini_newsgroup").write_bytes(b"not zlib")
    with pytest.raises(HarnessError, match="not gensim's mini_newsgroup file"):
        offline_data.newsgroup_texts()


def test_stsb_train_with_its_ragged_rows_parses_whole(tmp_path, shared_data):
    raw = (shared_data / "stsb" / "sts-train.csv").read_text(encoding="utf-8")
    ragged = sum(1 for line in raw.splitlines() if line.count("\t") > 6)
    path = tmp_path / "stsb-train.tsv"
    path.write_text("genre\tsource\tyear\tid\tscore\tsentence1\tsentence2\n" + raw, encoding="utf-8")
    pairs = read_sts_file(path)
    assert ragged > 100  # the ~200 rows with two extra trailing fields
    assert len(pairs.scores) == 5749 and min(pairs.scores) == 0 and max(pairs.scores) == 5


def test_a_field_of_200k_characters_is_read(tmp_path):
    long_text = "word " * 40_000
    path = _write(tmp_path / "long.tsv", f"sentence1\tsentence2\tscore\n{long_text}\tb\t1\nc\td\t2\n")
    assert read_sts_file(path).sentence1[0] == long_text


def _loop(tmp_path):
    (tmp_path / "a.tsv").symlink_to(tmp_path / "b.tsv")
    (tmp_path / "b.tsv").symlink_to(tmp_path / "a.tsv")
    return tmp_path / "a.tsv"


def _fifo(tmp_path):
    os.mkfifo(tmp_path / "pipe.tsv")
    return tmp_path / "pipe.tsv"


def _through_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    return tmp_path / "plain" / "t.tsv"


@pytest.mark.parametrize(
    "make,fragment",
    [
        (_loop, "loop of symbolic links"),
        (_fifo, "named pipe"),
        (_through_a_file, "a part of the path is a file"),
        (lambda tmp: tmp / ("n" * 300 + ".tsv"), "longer than the operating system allows"),
        (lambda tmp: Path("~no-such-user-here/t.tsv"), "there is no user 'no-such-user-here'"),
        (lambda tmp: (tmp / "folder.tsv").mkdir() or tmp / "folder.tsv", "is a folder"),
    ],
)
def test_unusable_paths_are_one_message(tmp_path, make, fragment):
    """Never a hang (a FIFO is refused before it is opened), never an OSError."""
    with pytest.raises(HarnessError, match=fragment):
        read_sts_file(make(tmp_path))
