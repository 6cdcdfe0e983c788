"""The texts kind of training data: what each source gives, and malformed files refused with the
file and line (exit 2, nothing recorded)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.data.texts import check_data, load_texts
from harness.errors import HarnessError
from tests.conftest import run_args
from tests.training_fixtures import TRIPLETS, write_triplets


def test_a_plain_file_is_one_text_a_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("first text\n\n  second, with\ta tab  \r\nthird\n")
    assert load_texts(str(path)) == ["first text", "second, with\ta tab", "third"]


def test_a_text_column_and_a_triplet_source(tmp_path):
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"text": "one", "id": 1}\n{"text": "two"}\n')
    csv = tmp_path / "t.csv"
    csv.write_text('id,text\n1,"three, quoted"\n')
    triplets = write_triplets(tmp_path / "triplets.jsonl")
    expected = list(dict.fromkeys(x for t in TRIPLETS for x in (t.query, t.pos, t.neg)))
    assert load_texts(str(jsonl)) == ["one", "two"]
    assert load_texts(str(csv)) == ["three, quoted"]
    assert load_texts(str(triplets)) == expected
    assert load_texts(f"{jsonl}+{csv}") == ["one", "two", "three, quoted"]
    table = tmp_path / "triplets.txt"  # a .txt table with a known header is that table
    table.write_text("query\tpos\tneg\n" + "".join(f"{t.query}\t{t.pos}\t{t.neg}\n" for t in TRIPLETS))
    assert load_texts(str(table)) == expected


@pytest.mark.parametrize(
    "name, content, where",
    [
        ("empty.txt", b"", "the file is empty"),
        ("blank.txt", b"\n  \n\t\n", "the file is empty"),
        ("latin.txt", "ok\nna\u00efve\n".encode("latin-1"), "line 2: not UTF-8"),
        ("nul.txt", b"ok\nbad\x00line\n", "line 2: contains a NUL byte"),
        ("nokey.jsonl", b'{"text": "ok"}\n{"body": "x"}\n', "line 2: missing key text"),
        ("number.jsonl", b'{"text": "ok"}\n{"text": 3}\n', "line 2, column text: 3 is not text"),
        ("empty-text.csv", b'id,text\n1,ok\n2,"  "\n', "line 3, column text: the text is empty"),
        ("broken.jsonl", b'{"text": "ok"}\n{"text": \n', "line 2, column 10: invalid JSON"),
    ],
)
def test_malformed_text_files_name_the_file_and_line(tmp_path, name, content, where):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(HarnessError, match=f"{path}.*{where}" if "line" in where else where):
        check_data(str(path), 0, {"texts"})


def test_a_bad_text_file_is_refused_before_a_run_is_recorded(tmp_path, tiny_llama_dir, small_sts_file):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": ""}\n')
    db = tmp_path / "h.db"
    result = CliRunner().invoke(
        app,
        run_args(
            db,
            tiny_llama_dir,
            small_sts_file,
            "--train-data",
            str(path),
            "--output-dir",
            str(tmp_path / "runs"),
            method="llm2vec",
        ),
    )
    assert result.exit_code == 2, result.output
    assert "bad.jsonl, line 2" in " ".join(result.output.split())
    assert not db.exists() or "llm2vec" not in db.read_bytes().decode("latin-1")


def test_a_text_file_is_hashed_with_the_run(tmp_path, tiny_llama_dir, small_sts_file):
    import hashlib

    from leaderboard.store import open_store

    path = tmp_path / "texts.txt"
    path.write_text("the cat sat on the mat\nrain falls\nthe dog ran\n")
    db = tmp_path / "h.db"
    args = run_args(
        db,
        tiny_llama_dir,
        small_sts_file,
        "--train-data",
        str(path),
        "--output-dir",
        str(tmp_path / "runs"),
        "--set",
        "method_args.steps=1",
        "--set",
        "method_args.batch_size=2",
        "--set",
        'method_args.stages=["mntp"]',
        method="llm2vec",
    )
    assert CliRunner().invoke(app, args).exit_code == 0
    resolved = open_store(db).get_run(1)["config"]["train_data_resolved"]
    assert json.dumps(resolved).count(hashlib.sha256(path.read_bytes()).hexdigest()) == 1


def test_a_text_file_is_no_triplet_source(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("just a text\n")
    with pytest.raises(HarnessError, match=str(path)):
        check_data(str(path), 0, {"triplets"})
    with pytest.raises(HarnessError, match="data kind"):
        check_data(str(path), 0, {"images"})
