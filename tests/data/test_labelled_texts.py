"""Labelled texts: a file with text and label is a clustering task, with a split column (or as a
folder of train and test files) a classification task; malformed input names file, line, column."""

from __future__ import annotations

import json

import pytest

from harness.data.task_files import read_task_file
from tests.conftest import refused_naming, run_args


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_text_and_label_make_a_clustering_task(tmp_path):
    data = read_task_file(
        _write(tmp_path / "topics.csv", 'text,label\n"space, the final",sci\ngod is,religion\nstars,sci\n')
    )
    assert (data.kind, data.name, data.texts, data.labels, data.size) == (
        "Clustering",
        "topics",
        ["space, the final", "god is", "stars"],
        ["sci", "religion", "sci"],
        3,
    )


def test_a_split_column_makes_a_classification_task(tmp_path):
    rows = [
        {"text": "good", "label": 1, "split": "train"},
        {"text": "bad", "label": 0, "split": "Train"},
        {"text": "fine", "label": 1, "split": "test"},
    ]
    data = read_task_file(_write(tmp_path / "polarity.jsonl", "".join(json.dumps(r) + "\n" for r in rows)))
    assert (data.kind, data.train_texts, data.train_labels, data.test_texts, data.test_labels) == (
        "Classification",
        ["good", "bad"],
        ["1", "0"],
        ["fine"],
        ["1"],
    )
    assert data.classes == ["0", "1"] and data.size == 1


def test_a_folder_of_train_and_test_files_is_a_classification_task(tmp_path):
    folder = tmp_path / "intents"
    folder.mkdir()
    _write(folder / "train.tsv", "text\tlabel\nbook a flight\ttravel\nplay a song\tmusic\n")
    _write(folder / "test.csv", "sentence,category\nfly me there,travel\n")
    data = read_task_file(folder)
    assert (data.kind, data.name, data.train_labels, data.test_texts) == (
        "Classification",
        "intents",
        ["travel", "music"],
        ["fly me there"],
    )
    _write(folder / "test.csv", "sentence,category\nfly me there,travel\nhum it,music\n")
    assert read_task_file(folder).digest != data.digest  # the folder's version follows its files


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        ("a.tsv", "text\tlabel\na\tx\nb\tx\n", ["all of one label", "two labels or more"]),
        ("b.tsv", "text\tlabel\na\tx\n\ty\n", ["line 3", "column text", "empty"]),
        ("c.tsv", "text\tlabel\na\tx\nb\t \n", ["line 3", "column label", "not a label"]),
        ("d.jsonl", '{"text": "a", "label": true}\n', ["line 1", "column label", "not a label"]),
        ("e.tsv", "text\tlabel\tsplit\na\tx\ttrain\nb\ty\tdev\n", ["line 3", "column split", "'dev' is not a split"]),
        ("f.tsv", "text\tlabel\tsplit\na\tx\ttrain\nb\tx\ttrain\nc\tx\ttest\n", ["1 label(s)", "two labels or more"]),
        ("g.tsv", "text\tlabel\tsplit\na\tx\ttrain\nb\ty\ttrain\n", ["no test texts"]),
        (
            "h.tsv",
            "text\tlabel\tsplit\na\tx\ttrain\nb\ty\ttrain\nc\tz\ttest\n",
            ["line 4", "'z' never occurs in training"],
        ),
        ("i.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', ["line 2", "missing key label"]),
        ("j.jsonl", '{"text": "a", "label": "x", "split": ["train"]}\n', ["line 1", "column split", "is not a split"]),
        (
            "k.jsonl",
            '{"text": "a", "label": "x"}\n{"text": "b", "label": "y", "split": "train"}\n',
            ["line 1", "missing key split"],
        ),
        ("l.tsv", "text\tlabel\n", ["a header and no rows"]),
        ("m.jsonl", '{"text": "a", "label": ' + "9" * 5000 + "}\n", ["line 1", "invalid JSON"]),
    ],
)
def test_bad_files_name_file_line_and_column(tmp_path, name, content, fragments):
    refused_naming(read_task_file, _write(tmp_path / name, content), fragments)


@pytest.mark.parametrize(
    "files, named, fragments",
    [
        ({"train.tsv": "text\tlabel\na\tx\nb\ty\n"}, "", ["no test file", "test.tsv, test.csv or test.jsonl"]),
        ({"test.tsv": "text\tlabel\na\tx\n"}, "", ["no train file"]),
        (
            {
                "train.tsv": "text\tlabel\na\tx\nb\ty\n",
                "test.tsv": "text\tlabel\na\tx\n",
                "test.csv": "text,label\na,x\n",
            },
            "",
            ["2 (test.tsv, test.csv) test file"],
        ),
        (
            {"train.tsv": "words\tlabel\na\tx\n", "test.tsv": "text\tlabel\na\tx\n"},
            "train.tsv",
            ["line 1", "needs a text column"],
        ),
        (
            {"train.tsv": "text\tlabel\na\tx\nb\ty\n", "test.tsv": "text\tlabel\nc\tx\nd\tw\n"},
            "test.tsv",
            ["line 3", "'w' never occurs in training"],
        ),
    ],
)
def test_bad_classification_folders_name_the_file(tmp_path, files, named, fragments):
    folder = tmp_path / "task"
    folder.mkdir()
    for name, content in files.items():
        _write(folder / name, content)
    refused_naming(read_task_file, folder, [str(folder / named) if named else str(folder), *fragments])


def test_a_test_part_with_two_of_three_classes_is_scored(tmp_path, tiny_llama_dir):
    """mteb scores AP where the test part holds two labels, and sklearn then needs them as 0 and 1:
    the test part's labels are numbered first."""
    import sqlite3

    from typer.testing import CliRunner

    from harness.cli import app

    rows = [(f"cat sat {i}", "p", "train") for i in range(3)] + [(f"dog ran {i}", "q", "train") for i in range(3)]
    rows += [(f"sun shines {i}", "r", "train") for i in range(3)] + [
        ("cat sat", "p", "test"),
        ("sun shines", "r", "test"),
    ]
    task = _write(tmp_path / "three.tsv", "text\tlabel\tsplit\n" + "".join("\t".join(row) + "\n" for row in rows))
    db = tmp_path / "h.db"
    result = CliRunner().invoke(app, run_args(db, tiny_llama_dir, task))
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        ((details,),) = conn.execute("SELECT details FROM scores")
    assert json.loads(details)["test"][0]["ap"] is not None


def test_an_offline_task_is_named_on_its_own(tmp_path):
    from harness.evaluation.tasks import resolve_tasks

    (spec,) = resolve_tasks(["PangLeePolarityClassification"])
    assert (spec.name, spec.kind) == ("PangLeePolarityClassification", "offline")
