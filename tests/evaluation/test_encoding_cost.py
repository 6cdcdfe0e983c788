"""Each task's evaluation records what its encoding cost: texts asked for, memo hits, texts/s and
tokens/s, consistent with the phase's own counts and with the texts of the file."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import run_args


def test_an_sts_task_records_its_requests_memo_hits_and_rates(tmp_path, tiny_llama_dir):
    pairs = [
        ("the cat sat", "a dog ran"),
        ("the cat sat", "the sun shines"),
        ("a dog ran", "the cat sat"),
        ("rain falls", "sky is blue"),
    ]
    task = tmp_path / "repeats.tsv"
    task.write_text("sentence1\tsentence2\tscore\n" + "".join(f"{a}\t{b}\t{i}\n" for i, (a, b) in enumerate(pairs)))
    db = tmp_path / "h.db"
    result = CliRunner().invoke(app, run_args(db, tiny_llama_dir, task))
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        ((seconds, items, tokens, details),) = conn.execute(
            "SELECT seconds, items, tokens, details FROM timings WHERE phase = 'evaluate:repeats'"
        )
    cost = json.loads(details)
    distinct = {text for pair in pairs for text in pair}
    assert (items, cost["texts_requested"], cost["memo_hits"]) == (
        len(distinct),
        2 * len(pairs),
        2 * len(pairs) - len(distinct),
    )
    assert cost["texts_per_s"] == pytest.approx(items / seconds) and cost["tokens_per_s"] == pytest.approx(
        tokens / seconds
    )
